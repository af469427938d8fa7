/** Baseline merges of a base model and its experts: linear, task arithmetic, TIES, DARE. */
export { checkMergeable, type MergeInputs, openMergeInputs } from "./inputs.ts";
export {
  type MergedTensorsOptions,
  type MergeModelsOptions,
  type MergeSummary,
  mergedTensors,
  mergeModels,
  outputDtype,
} from "./merge.ts";
export {
  combineTaskVectors,
  dare,
  dareTies,
  linear,
  MERGE_METHODS,
  type MergeMethod,
  type MergeMethodName,
  type MergeParams,
  mergeMethod,
  type ParamName,
  type TensorTask,
  taskArithmetic,
  ties,
} from "./methods.ts";
export {
  DEFAULT_DENSITY,
  DEFAULT_DROP,
  DEFAULT_LAMBDA,
  type MergeParamsInput,
  resolveParams,
} from "./params.ts";
export { dropAndRescale, dropRng, keptByDensity, trimToDensity } from "./sparsify.ts";
