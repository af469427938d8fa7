/**
 * Running CycleQD: the validated run config, input checks, the SQLite run store, the
 * evaluators (in process or a pool of worker processes), the run loop with resume, and
 * the status report.
 */
export {
  ConfigError,
  defaultConfig,
  loadConfig,
  parseConfig,
  type RunConfig,
  SKILL_NAMES,
  starterConfig,
  validateConfig,
} from "./config.ts";
export {
  createEvaluator,
  createInProcessEvaluator,
  createPoolEvaluator,
  type EvalOutcome,
  type Evaluator,
  type PoolOptions,
} from "./evaluator.ts";
export { formatEvent, formatStatus } from "./format.ts";
export { checkInputs, type InputModel, type Inputs, prepareInputs } from "./inputs.ts";
export {
  type EvalJob,
  type EvalResult,
  type EvalTarget,
  type EvaluatorSetup,
  ModelEvaluator,
} from "./model-evaluator.ts";
export {
  type ArchiveSummary,
  type RunEvent,
  type RunOptions,
  type RunResult,
  resume,
  run,
  searchConfig,
} from "./runner.ts";
export { factorCacheDir } from "./seed-factors.ts";
export {
  type ArchiveStatus,
  OVERHEAD_KEYS,
  type RunStatusReport,
  runStatus,
  summariseTimings,
  type TimingSummary,
} from "./status.ts";
export {
  type ChildRecord,
  DB_FILE,
  type EliteRow,
  type FinalRecord,
  type LockInfo,
  RunLockedError,
  type RunStatus,
  RunStore,
  type Scores,
  type SeedRecord,
  type SkillScore,
  TIMING_KEYS,
  type Timings,
} from "./store.ts";
