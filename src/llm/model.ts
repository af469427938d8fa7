/**
 * The tiny LLaMA: parameters keyed by their GGUF names, seeded initialisation, and the forward
 * pass exactly as llama.cpp's `llama` arch computes it (RMSNorm, adjacent-pair RoPE, causal
 * grouped-query attention, SwiGLU, residuals, final norm, output projection).
 */
import type { Gemm } from "../linalg/gemm.ts";
import type { Rng } from "../util/rng.ts";
import { type AttentionCache, attentionForward } from "./attention.ts";
import { kvDim, type LlamaConfig, validateConfig } from "./config.ts";
import { rmsnormForward, swigluForward } from "./kernels.ts";
import { Workspace } from "./workspace.ts";

/** Model weights by GGUF tensor name; shapes in PyTorch order [out, in], row-major. */
export type Params = Map<string, Float32Array>;

export interface ParamSpec {
  name: string;
  shape: number[];
}

/** Every tensor of a model with this config, in GGUF order. */
export function paramSpecs(config: LlamaConfig): ParamSpec[] {
  const c = validateConfig(config);
  const kv = kvDim(c);
  const specs: ParamSpec[] = [{ name: "token_embd.weight", shape: [c.vocabSize, c.dim] }];
  for (let l = 0; l < c.nLayers; l++) {
    const p = `blk.${l}.`;
    specs.push(
      { name: `${p}attn_norm.weight`, shape: [c.dim] },
      { name: `${p}attn_q.weight`, shape: [c.dim, c.dim] },
      { name: `${p}attn_k.weight`, shape: [kv, c.dim] },
      { name: `${p}attn_v.weight`, shape: [kv, c.dim] },
      { name: `${p}attn_output.weight`, shape: [c.dim, c.dim] },
      { name: `${p}ffn_norm.weight`, shape: [c.dim] },
      { name: `${p}ffn_gate.weight`, shape: [c.ffnDim, c.dim] },
      { name: `${p}ffn_up.weight`, shape: [c.ffnDim, c.dim] },
      { name: `${p}ffn_down.weight`, shape: [c.dim, c.ffnDim] },
    );
  }
  specs.push(
    { name: "output_norm.weight", shape: [c.dim] },
    { name: "output.weight", shape: [c.vocabSize, c.dim] },
  );
  return specs;
}

export interface InitOptions {
  /** Standard deviation of the weight matrices (default 0.02). */
  std?: number;
}

/**
 * Fresh weights: norms 1, matrices N(0, std²), and the two projections that write into the
 * residual stream (attn_output, ffn_down) scaled by 1/sqrt(2·nLayers) so that the stream's
 * variance does not grow with depth.
 */
export function initParams(config: LlamaConfig, rng: Rng, opts: InitOptions = {}): Params {
  const c = validateConfig(config);
  const std = opts.std ?? 0.02;
  if (!(Number.isFinite(std) && std > 0)) throw new Error(`init std must be > 0, got ${std}`);
  const params: Params = new Map();
  for (const { name, shape } of paramSpecs(c)) {
    const size = shape.reduce((a, b) => a * b, 1);
    const w = new Float32Array(size);
    if (shape.length === 1) {
      w.fill(1);
    } else {
      const residual = name.endsWith("attn_output.weight") || name.endsWith("ffn_down.weight");
      const s = residual ? std / Math.sqrt(2 * c.nLayers) : std;
      for (let i = 0; i < size; i++) w[i] = rng.normal(0, s);
    }
    params.set(name, w);
  }
  return params;
}

/** Throws unless `params` holds every tensor of `config` at the right size. */
export function validateParams(params: Params, config: LlamaConfig): void {
  if (!(params instanceof Map)) throw new Error("params must be a Map<string, Float32Array>");
  for (const { name, shape } of paramSpecs(config)) {
    const w = params.get(name);
    const size = shape.reduce((a, b) => a * b, 1);
    if (!(w instanceof Float32Array)) throw new Error(`params lacks tensor "${name}"`);
    if (w.length !== size) {
      throw new Error(`tensor "${name}" has ${w.length} values, expected [${shape}] = ${size}`);
    }
  }
}

/** Deep copy. */
export function cloneParams(params: Params): Params {
  return new Map([...params].map(([k, v]) => [k, v.slice()]));
}

/** Per-layer activations the backward pass needs. */
export interface LayerCache {
  x: Float32Array;
  invRms1: Float32Array;
  h1: Float32Array;
  /** attn_q | attn_k | attn_v rows stacked, as used by the fused GEMM. */
  wqkv: Float32Array;
  attn: AttentionCache;
  o: Float32Array;
  x2: Float32Array;
  invRms2: Float32Array;
  h2: Float32Array;
  /** ffn_gate | ffn_up rows stacked. */
  wgu: Float32Array;
  gu: Float32Array;
  sig: Float32Array;
  a: Float32Array;
}

export interface ForwardCache {
  layers: LayerCache[];
  xFinal: Float32Array;
  invRmsFinal: Float32Array;
  hFinal: Float32Array;
}

export function checkTokens(
  tokens: Int32Array,
  config: LlamaConfig,
  B: number,
  T: number,
  what = "tokens",
): void {
  if (!(Number.isInteger(B) && B > 0 && Number.isInteger(T) && T > 0)) {
    throw new Error(`batch shape must be positive integers, got B=${B}, T=${T}`);
  }
  if (T > config.contextLength) {
    throw new Error(`sequence length ${T} exceeds the context length ${config.contextLength}`);
  }
  if (!(tokens instanceof Int32Array) || tokens.length !== B * T) {
    throw new Error(`${what} must be an Int32Array of B·T = ${B * T} ids`);
  }
  for (let i = 0; i < tokens.length; i++) {
    if (tokens[i] < 0 || tokens[i] >= config.vocabSize) {
      throw new Error(
        `${what}[${i}] = ${tokens[i]} is outside the vocabulary 0..${config.vocabSize - 1}`,
      );
    }
  }
}

/** Rows of several [rows_i, cols] matrices stacked into `out`, for one fused GEMM. */
function stackInto(out: Float32Array, parts: Float32Array[]): Float32Array {
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * Forward pass keeping what the backward pass needs. Every linear layer is one GEMM over all
 * B·T rows (q|k|v and gate|up fused). Inputs are assumed valid.
 */
export async function forwardWithCache(
  params: Params,
  c: LlamaConfig,
  tokens: Int32Array,
  B: number,
  T: number,
  gemm: Gemm,
  ws: Workspace = new Workspace(),
): Promise<{ logits: Float32Array; cache: ForwardCache }> {
  const N = B * T;
  const { dim: D, ffnDim: F, normEps: eps } = c;
  const C = D + 2 * kvDim(c);
  const get = (name: string) => params.get(name) as Float32Array;

  let x = ws.f32("x0", N * D);
  const embd = get("token_embd.weight");
  for (let n = 0; n < N; n++) {
    const src = tokens[n] * D;
    const dst = n * D;
    for (let j = 0; j < D; j++) x[dst + j] = embd[src + j];
  }

  const layers: LayerCache[] = [];
  for (let l = 0; l < c.nLayers; l++) {
    const p = `blk.${l}.`;
    const invRms1 = ws.f32(`${p}invRms1`, N);
    const h1 = ws.f32(`${p}h1`, N * D);
    rmsnormForward(x, get(`${p}attn_norm.weight`), N, D, eps, h1, invRms1);
    const wqkv = stackInto(ws.f32(`${p}wqkv`, C * D), [
      get(`${p}attn_q.weight`),
      get(`${p}attn_k.weight`),
      get(`${p}attn_v.weight`),
    ]);
    const qkv = await gemm.matmul(h1, wqkv, N, D, C, { transB: true });
    const { out: o, cache: attn } = await attentionForward(qkv, c, B, T, gemm, ws, p);
    const proj = await gemm.matmul(o, get(`${p}attn_output.weight`), N, D, D, { transB: true });
    const x2 = ws.f32(`${p}x2`, N * D);
    for (let i = 0; i < x2.length; i++) x2[i] = x[i] + proj[i];

    const invRms2 = ws.f32(`${p}invRms2`, N);
    const h2 = ws.f32(`${p}h2`, N * D);
    rmsnormForward(x2, get(`${p}ffn_norm.weight`), N, D, eps, h2, invRms2);
    const wgu = stackInto(ws.f32(`${p}wgu`, 2 * F * D), [
      get(`${p}ffn_gate.weight`),
      get(`${p}ffn_up.weight`),
    ]);
    const gu = await gemm.matmul(h2, wgu, N, D, 2 * F, { transB: true });
    const sig = ws.f32(`${p}sig`, N * F);
    const a = ws.f32(`${p}a`, N * F);
    swigluForward(gu, N, F, a, sig);
    const down = await gemm.matmul(a, get(`${p}ffn_down.weight`), N, F, D, { transB: true });
    const x3 = ws.f32(`blk.${l + 1}.x`, N * D);
    for (let i = 0; i < x3.length; i++) x3[i] = x2[i] + down[i];

    layers.push({ x, invRms1, h1, wqkv, attn, o, x2, invRms2, h2, wgu, gu, sig, a });
    x = x3;
  }

  const invRmsFinal = ws.f32("invRmsFinal", N);
  const hFinal = ws.f32("hFinal", N * D);
  rmsnormForward(x, get("output_norm.weight"), N, D, eps, hFinal, invRmsFinal);
  const logits = await gemm.matmul(hFinal, get("output.weight"), N, D, c.vocabSize, {
    transB: true,
  });
  return { logits, cache: { layers, xFinal: x, invRmsFinal, hFinal } };
}

/**
 * Logits [B·T, vocabSize] for a batch of B sequences of T token ids (row-major [B, T]),
 * each sequence starting at position 0.
 */
export async function forward(
  params: Params,
  config: LlamaConfig,
  tokens: Int32Array,
  B: number,
  T: number,
  gemm: Gemm,
): Promise<Float32Array> {
  const c = validateConfig(config);
  validateParams(params, c);
  checkTokens(tokens, c, B, T);
  return (await forwardWithCache(params, c, tokens, B, T, gemm)).logits;
}
