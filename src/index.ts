/**
 * cycleqd as a library. The surface, by what a user does with it:
 * - search: the ask/tell CycleQD object over K archives, with exact compact genomes;
 * - runs: configs, run / resume / status, the final aggregate and exported elites, each run
 *   kept in a SQLite store that survives kill -9;
 * - models: materialising any genome from base + seed factors, and baseline merges;
 * - inference: the llama.cpp engine;
 * - skills: the miniature skills, loaders of MBPP and AgentBench files, the sandbox;
 * - tensor files: GGUF and safetensors readers and writers.
 * Every export documents its contract (units, what it throws) where it is declared;
 * docs/ALGORITHM.md describes the method and docs/ARCHITECTURE.md where each part lives.
 */

// Inference
export {
  createLlamaCppEngine,
  type Engine,
  type EngineModel,
  type GenerateRequest,
  type GenerateResult,
  type LlamaCppEngineOptions,
  type ScoreRequest,
  type ScoreResult,
} from "./engine/index.ts";
// Models: genomes to weights, baseline merges
export {
  loadOrComputeFactors,
  materialiseGguf,
  type SeedFactors,
} from "./materialise/index.ts";
export { type MergeModelsOptions, type MergeSummary, mergeModels } from "./merge/merge.ts";
// Search (docs/ALGORITHM.md)
export type { Aggregation } from "./qd/aggregate.ts";
export {
  Archive,
  type BinRange,
  type Elite,
  type OfferOutcome,
  type OfferResult,
} from "./qd/archive.ts";
export { type Ask, CycleQD, type CycleQDConfig, type Tell } from "./qd/cycleqd.ts";
export {
  decodeGenome,
  encodeGenome,
  type Genome,
  GenomeLayout,
  seedGenome,
} from "./qd/genome.ts";
export type { ArchiveMetrics, ChildMetrics } from "./qd/metrics.ts";
export type { CrossoverOptions, MutationOptions } from "./qd/operators.ts";
export type { SamplingOptions } from "./qd/sampling.ts";
// Runs
export {
  ConfigError,
  defaultConfig,
  loadConfig,
  parseConfig,
  type RunConfig,
  validateConfig,
} from "./run/config.ts";
export { aggregateRun, exportElite, type WrittenModel } from "./run/export.ts";
export {
  type RunEvent,
  type RunOptions,
  type RunResult,
  resume,
  run,
} from "./run/runner.ts";
export { type RunStatusReport, runStatus } from "./run/status.ts";
export { RunLockedError } from "./run/store.ts";
export {
  checkSandbox,
  runSandboxed,
  SandboxError,
  type SandboxOptions,
  type SandboxResult,
} from "./sandbox/index.ts";
// Skills, their loaders and the sandbox
export {
  createMiniSkills,
  DataError,
  evaluateSkills,
  loadDbBenchSkill,
  loadMbppSkill,
  loadOsInteractionSkill,
  type Skill,
} from "./skills/index.ts";

// Tensor files
export { openGguf, writeGguf } from "./tensors/gguf.ts";
export { openTensorFile } from "./tensors/open.ts";
export { openSafetensors, writeSafetensors } from "./tensors/safetensors.ts";
export type { TensorReader, TensorToWrite } from "./tensors/types.ts";
