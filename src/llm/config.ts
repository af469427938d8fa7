/** Shape of a LLaMA-architecture model, as llama.cpp's `llama` arch reads it from GGUF. */
import { VOCAB_SIZE } from "./tokenizer.ts";

export interface LlamaConfig {
  vocabSize: number;
  /** Embedding width (`llama.embedding_length`). */
  dim: number;
  nLayers: number;
  nHeads: number;
  /** Key/value heads; fewer than nHeads means grouped-query attention. */
  nKvHeads: number;
  /** Hidden width of the SwiGLU feed-forward block. */
  ffnDim: number;
  /** Longest sequence the model is built for. */
  contextLength: number;
  ropeTheta: number;
  normEps: number;
}

/** The zoo's default: ~0.89M parameters over the 355-token byte/character vocabulary. */
export const TINY_CONFIG: Readonly<LlamaConfig> = Object.freeze({
  vocabSize: VOCAB_SIZE,
  dim: 128,
  nLayers: 4,
  nHeads: 4,
  nKvHeads: 4,
  ffnDim: 352,
  contextLength: 256,
  ropeTheta: 10000,
  normEps: 1e-5,
});

export function headDim(c: LlamaConfig): number {
  return c.dim / c.nHeads;
}

export function kvDim(c: LlamaConfig): number {
  return headDim(c) * c.nKvHeads;
}

/** Checks a config and returns a clean copy; throws a message naming the bad field. */
export function validateConfig(c: LlamaConfig): LlamaConfig {
  if (c === null || typeof c !== "object") throw new Error("LlamaConfig must be an object");
  const ints = ["vocabSize", "dim", "nLayers", "nHeads", "nKvHeads", "ffnDim", "contextLength"];
  for (const key of ints) {
    const v = (c as unknown as Record<string, unknown>)[key];
    if (!(typeof v === "number" && Number.isInteger(v) && v > 0)) {
      throw new Error(`LlamaConfig.${key} must be a positive integer, got ${String(v)}`);
    }
  }
  for (const key of ["ropeTheta", "normEps"]) {
    const v = (c as unknown as Record<string, unknown>)[key];
    if (!(typeof v === "number" && Number.isFinite(v) && v > 0)) {
      throw new Error(`LlamaConfig.${key} must be a positive finite number, got ${String(v)}`);
    }
  }
  if (c.dim % c.nHeads !== 0) {
    throw new Error(`LlamaConfig.dim (${c.dim}) must be divisible by nHeads (${c.nHeads})`);
  }
  if ((c.dim / c.nHeads) % 2 !== 0) {
    throw new Error(`the head dimension dim/nHeads (${c.dim / c.nHeads}) must be even for RoPE`);
  }
  if (c.nHeads % c.nKvHeads !== 0) {
    throw new Error(
      `LlamaConfig.nHeads (${c.nHeads}) must be a multiple of nKvHeads (${c.nKvHeads})`,
    );
  }
  return {
    vocabSize: c.vocabSize,
    dim: c.dim,
    nLayers: c.nLayers,
    nHeads: c.nHeads,
    nKvHeads: c.nKvHeads,
    ffnDim: c.ffnDim,
    contextLength: c.contextLength,
    ropeTheta: c.ropeTheta,
    normEps: c.normEps,
  };
}

/** Total number of parameters. */
export function parameterCount(c: LlamaConfig): number {
  const kv = kvDim(c);
  const layer = 2 * c.dim + 2 * c.dim * c.dim + 2 * kv * c.dim + 3 * c.ffnDim * c.dim;
  return 2 * c.vocabSize * c.dim + c.dim + c.nLayers * layer;
}
