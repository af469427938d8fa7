/** Inference engines: the interface every engine implements, and the llama.cpp one. */
export { createLlamaCppEngine, defaultThreads, type LlamaCppEngineOptions } from "./llama-cpp.ts";
export { findStop } from "./requests.ts";
export type {
  Engine,
  EngineBackend,
  EngineBase,
  EngineInfo,
  EngineModel,
  FinishReason,
  GenerateOptions,
  GenerateRequest,
  GenerateResult,
  LoadModelOptions,
  ScoreRequest,
  ScoreResult,
} from "./types.ts";
