/** The tiny LLaMA: tokenizer, model, gradients, trainer and model files. */
export { type Batch, evaluateLoss, type LossAndGradients, lossAndGradients } from "./backward.ts";
export {
  type Example,
  sampleExampleBatch,
  sampleStreamBatch,
  type TrainData,
} from "./batches.ts";
export { loadCheckpoint, saveCheckpoint, type TrainCheckpoint } from "./checkpoint.ts";
export {
  headDim,
  kvDim,
  type LlamaConfig,
  parameterCount,
  TINY_CONFIG,
  validateConfig,
} from "./config.ts";
export {
  type ExportGgufOptions,
  exportGguf,
  exportHfSafetensors,
  hfConfig,
  loadGguf,
  loadHfSafetensors,
} from "./export.ts";
export {
  cloneParams,
  forward,
  type InitOptions,
  initParams,
  type ParamSpec,
  type Params,
  paramSpecs,
  validateParams,
} from "./model.ts";
export {
  type AdamState,
  type AdamWOptions,
  adamWUpdate,
  clipGradients,
  DEFAULT_ADAMW,
  type LrSchedule,
  learningRate,
  newAdamState,
} from "./optim.ts";
export {
  BOS_ID,
  decode,
  decodeBytes,
  type EncodeOptions,
  EOS_ID,
  encode,
  TokenType,
  UNK_ID,
  VOCAB_SIZE,
  type Vocabulary,
  vocabulary,
} from "./tokenizer.ts";
export { type StepInfo, type TrainOptions, type TrainResult, train } from "./train.ts";
export { Workspace } from "./workspace.ts";
