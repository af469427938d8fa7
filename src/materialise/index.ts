/**
 * Genomes to weights: the seed factors (the SVD of each expert's task vector, computed once
 * and cached on disk by the inputs' hash) and materialisation, which rebuilds any genome's
 * model from base + factors and streams it into a GGUF file.
 */
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
export { type LoraAdapterOptions, lowRankFactors, writeLoraAdapter } from "./lora.ts";
export { addLowRank, type LowRankOptions, type LowRankTerm } from "./lowrank.ts";
export {
  type MaterialiseGgufOptions,
  type MaterialiseOptions,
  materialiseGguf,
  materialiseTensors,
  taskVector,
} from "./materialise.ts";
