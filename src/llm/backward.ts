/**
 * Exact gradients of the masked next-token cross-entropy with respect to every parameter.
 * Weight gradients are dW = dYᵀ·X and input gradients dX = dY·W, each one GEMM over all rows.
 */
import type { Gemm } from "../linalg/gemm.ts";
import { attentionBackward } from "./attention.ts";
import { kvDim, type LlamaConfig, validateConfig } from "./config.ts";
import { crossEntropy, rmsnormBackward, swigluBackward } from "./kernels.ts";
import { checkTokens, forwardWithCache, type Params, validateParams } from "./model.ts";
import { Workspace } from "./workspace.ts";

/** B sequences of T positions: inputs[i] should predict targets[i] where mask[i] > 0. */
export interface Batch {
  B: number;
  T: number;
  inputs: Int32Array;
  targets: Int32Array;
  /** Per-position loss weight (default 1 everywhere). */
  mask?: Float32Array;
}

export interface LossAndGradients {
  /** Mean cross-entropy over the masked positions. */
  loss: number;
  /** Sum of the mask: how many positions the loss averages. */
  weight: number;
  grads: Params;
}

function checkBatch(batch: Batch, c: LlamaConfig): Float32Array {
  const { B, T } = batch;
  checkTokens(batch.inputs, c, B, T, "inputs");
  checkTokens(batch.targets, c, B, T, "targets");
  if (batch.mask === undefined) return new Float32Array(B * T).fill(1);
  if (!(batch.mask instanceof Float32Array) || batch.mask.length !== B * T) {
    throw new Error(`mask must be a Float32Array of B·T = ${B * T} weights`);
  }
  for (const m of batch.mask) {
    if (!(Number.isFinite(m) && m >= 0)) throw new Error(`mask weights must be ≥ 0, got ${m}`);
  }
  return batch.mask;
}

/** Masked mean cross-entropy of one batch, without gradients. */
export async function evaluateLoss(
  params: Params,
  config: LlamaConfig,
  batch: Batch,
  gemm: Gemm,
  ws: Workspace = new Workspace(),
): Promise<{ loss: number; weight: number }> {
  const c = validateConfig(config);
  validateParams(params, c);
  const mask = checkBatch(batch, c);
  const { logits } = await forwardWithCache(params, c, batch.inputs, batch.B, batch.T, gemm, ws);
  return crossEntropy(logits, batch.targets, mask, batch.B * batch.T, c.vocabSize, false);
}

/**
 * Loss and the gradient of every parameter (same names and shapes as `params`, freshly
 * allocated). Pass the same `ws` to repeated calls to reuse the activation buffers.
 */
export async function lossAndGradients(
  params: Params,
  config: LlamaConfig,
  batch: Batch,
  gemm: Gemm,
  ws: Workspace = new Workspace(),
): Promise<LossAndGradients> {
  const c = validateConfig(config);
  validateParams(params, c);
  const mask = checkBatch(batch, c);
  const { B, T } = batch;
  const N = B * T;
  const { dim: D, ffnDim: F, vocabSize: V } = c;
  const C = D + 2 * kvDim(c);
  const get = (name: string) => params.get(name) as Float32Array;
  const grads: Params = new Map();
  for (const [name, w] of params) grads.set(name, new Float32Array(w.length));
  const grad = (name: string) => grads.get(name) as Float32Array;

  const { logits, cache } = await forwardWithCache(params, c, batch.inputs, B, T, gemm, ws);
  const { loss, weight } = crossEntropy(logits, batch.targets, mask, N, V, true);
  const dLogits = logits;

  grad("output.weight").set(await gemm.matmul(dLogits, cache.hFinal, V, N, D, { transA: true }));
  const dhFinal = await gemm.matmul(dLogits, get("output.weight"), N, V, D);
  // dx carries d(loss)/d(residual stream) down through the layers: each residual passes it
  // through unchanged and each norm's backward adds its branch's gradient into it.
  const dx = ws.f32("dx", N * D).fill(0);
  rmsnormBackward(
    cache.xFinal,
    get("output_norm.weight"),
    cache.invRmsFinal,
    dhFinal,
    N,
    D,
    dx,
    grad("output_norm.weight"),
  );

  const dgu = ws.f32("dgu", N * 2 * F);
  const dqkv = ws.f32("dqkv", N * C);
  for (let l = c.nLayers - 1; l >= 0; l--) {
    const p = `blk.${l}.`;
    const L = cache.layers[l];

    // Feed-forward block: x3 = x2 + down(silu(gate(h2)) · up(h2)).
    grad(`${p}ffn_down.weight`).set(await gemm.matmul(dx, L.a, D, N, F, { transA: true }));
    const da = await gemm.matmul(dx, get(`${p}ffn_down.weight`), N, D, F);
    swigluBackward(L.gu, L.sig, da, N, F, dgu);
    const dwgu = await gemm.matmul(dgu, L.h2, 2 * F, N, D, { transA: true });
    grad(`${p}ffn_gate.weight`).set(dwgu.subarray(0, F * D));
    grad(`${p}ffn_up.weight`).set(dwgu.subarray(F * D));
    const dh2 = await gemm.matmul(dgu, L.wgu, N, 2 * F, D);
    rmsnormBackward(
      L.x2,
      get(`${p}ffn_norm.weight`),
      L.invRms2,
      dh2,
      N,
      D,
      dx,
      grad(`${p}ffn_norm.weight`),
    );

    // Attention block: x2 = x + attn_output(attention(rope(q), rope(k), v)).
    grad(`${p}attn_output.weight`).set(await gemm.matmul(dx, L.o, D, N, D, { transA: true }));
    const dO = await gemm.matmul(dx, get(`${p}attn_output.weight`), N, D, D);
    await attentionBackward(dO, L.attn, c, B, T, gemm, ws, dqkv);
    const dwqkv = await gemm.matmul(dqkv, L.h1, C, N, D, { transA: true });
    const kv = kvDim(c);
    grad(`${p}attn_q.weight`).set(dwqkv.subarray(0, D * D));
    grad(`${p}attn_k.weight`).set(dwqkv.subarray(D * D, (D + kv) * D));
    grad(`${p}attn_v.weight`).set(dwqkv.subarray((D + kv) * D));
    const dh1 = await gemm.matmul(dqkv, L.wqkv, N, C, D);
    rmsnormBackward(
      L.x,
      get(`${p}attn_norm.weight`),
      L.invRms1,
      dh1,
      N,
      D,
      dx,
      grad(`${p}attn_norm.weight`),
    );
  }

  const dEmbd = grad("token_embd.weight");
  for (let n = 0; n < N; n++) {
    const o = batch.inputs[n] * D;
    const r = n * D;
    for (let j = 0; j < D; j++) dEmbd[o + j] += dx[r + j];
  }
  return { loss, weight, grads };
}
