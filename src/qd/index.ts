/**
 * Quality-diversity search of CycleQD, pure (no I/O; a test checks the imports): archives,
 * the task cycle, parent selection, exact compact genomes, variation operators, aggregation,
 * metrics and the ask/tell search object. Turning genomes into weights is src/materialise.
 */
export { type Aggregation, aggregate, softmax } from "./aggregate.ts";
export {
  Archive,
  type ArchiveConfig,
  type BinRange,
  betterElite,
  binIndex,
  checkRanges,
  type Elite,
  type Individual,
  type OfferOutcome,
  type OfferResult,
  type PaperRangeOptions,
  paperBinRanges,
} from "./archive.ts";
export { childRng } from "./child-rng.ts";
export { activeTask, activeTaskName } from "./cycle.ts";
export {
  type Ask,
  CycleQD,
  type CycleQDConfig,
  type Tell,
} from "./cycleqd.ts";
export {
  checkGenome,
  cloneGenome,
  combineGenomes,
  decodeGenome,
  encodeGenome,
  type Genome,
  GenomeLayout,
  genomeByteSize,
  type LayoutMatrix,
  layoutForShapes,
  matrixCoefficients,
  matrixRank,
  type NoiseTerm,
  seedGenome,
  zeroGenome,
} from "./genome.ts";
export { type ArchiveMetrics, archiveMetrics, type ChildMetrics, childMetrics } from "./metrics.ts";
export { noiseField } from "./noise.ts";
export {
  type CrossoverDraws,
  type CrossoverOptions,
  crossover,
  gaussianMutation,
  type MutationDraws,
  type MutationKind,
  type MutationOptions,
  mutate,
  svdMutation,
  type ValueSummary,
} from "./operators.ts";
export {
  drawIndex,
  drawPair,
  eliteWeights,
  type ParentSelection,
  type SamplingMethod,
  type SamplingOptions,
  type SelectionFallback,
  selectParents,
} from "./sampling.ts";
