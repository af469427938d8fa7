/**
 * Quality-diversity search of CycleQD: archives, the task cycle, parent selection, exact
 * compact genomes, seed factors, variation operators, materialisation, aggregation, metrics
 * and the ask/tell search object.
 */
export { type Aggregation, aggregate, softmax } from "./aggregate.ts";
export {
  Archive,
  type ArchiveConfig,
  type ArchiveJson,
  type BinRange,
  binIndex,
  checkRanges,
  type Elite,
  type Individual,
  type OfferOutcome,
  type OfferResult,
  type PaperRangeOptions,
  paperBinRanges,
} from "./archive.ts";
export { activeTask, activeTaskName } from "./cycle.ts";
export {
  type Ask,
  CycleQD,
  type CycleQDConfig,
  type CycleQDState,
  type Tell,
} from "./cycleqd.ts";
export {
  type FactorOptions,
  type FactorTensorInfo,
  factorsCacheKey,
  hashPath,
  loadOrComputeFactors,
  type MatrixFactors,
  openFactors,
  planFactors,
  type SeedFactors,
  type TensorFactors,
  type VectorFactors,
  writeFactors,
} from "./factors.ts";
export {
  checkGenome,
  cloneGenome,
  combineGenomes,
  decodeGenome,
  encodeGenome,
  type Genome,
  type GenomeJson,
  GenomeLayout,
  genomeByteSize,
  genomeFromJSON,
  genomeToJSON,
  type LayoutMatrix,
  layoutForShapes,
  matrixCoefficients,
  matrixRank,
  type NoiseTerm,
  seedGenome,
  zeroGenome,
} from "./genome.ts";
export { addLowRank, type LowRankOptions, type LowRankTerm } from "./lowrank.ts";
export {
  type MaterialiseGgufOptions,
  type MaterialiseOptions,
  materialiseGguf,
  materialiseTensors,
  taskVector,
} from "./materialise.ts";
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
