/** The embedded zoo: a tiny base and one expert per miniature skill, trained here. */
export {
  type BaselineOptions,
  judgeZoo,
  type MergeResult,
  mergeBaselines,
  TASK_ARITHMETIC_LAMBDAS,
  type ZooVerdict,
} from "./baselines.ts";
export {
  type BuildZooOptions,
  type BuildZooResult,
  buildZoo,
  chooseStage2,
  expertExamples,
  formatSeconds,
  weakButNonZero,
  type ZooProgress,
} from "./build.ts";
export {
  BASE_NAME,
  CARD_FILE,
  CARD_FORMAT,
  modelPath,
  readCard,
  SHIPPED_ZOO_DIR,
  type SplitScores,
  type StageRecord,
  scoreRows,
  sha256File,
  type ZooCard,
  type ZooModelEntry,
} from "./card.ts";
export {
  type Corpus,
  type CorpusStats,
  copyProbes,
  DOC_KINDS,
  type Doc,
  type DocKind,
  generalDoc,
  inventedWord,
  STAGE1_MIX,
  skillPretrainDocs,
  stage1Corpus,
  stage2Corpus,
} from "./corpus.ts";
export { copyAccuracy, scoresOf, skillScores, withModel } from "./measure.ts";
export {
  MIXED_SEED_OFFSET,
  type MixedBudget,
  type MixedFinetuneOptions,
  mixedBudget,
  mixedExamples,
  mixedFinetune,
} from "./mixed.ts";
export {
  CURVE_LAMBDAS,
  type CurvePoint,
  formatLambda,
  formatProbe,
  GRID_LAMBDAS,
  type GridPoint,
  judgeProbe,
  type KeepCheck,
  type PairGrid,
  type PairVerdict,
  PROBE_THRESHOLDS,
  type ProbeChecks,
  type ProbeMeasurements,
  type ProbeOptions,
  type ProbeProgress,
  type ProbeResult,
  probeZoo,
  type Scores,
  type SkillMargin,
  standardError,
  TASK_ARITHMETIC_PROBE_LAMBDAS,
} from "./probe.ts";
export {
  DEFAULT_RECIPE,
  type ExpertStage,
  type PretrainStage,
  type RecipeOverrides,
  resolveRecipe,
  type SkillStage,
  type ZooRecipe,
} from "./recipe.ts";
export { mergeTaskVectors, type TaskVectorStats, taskVectorStats } from "./taskvectors.ts";
