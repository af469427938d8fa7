/**
 * Causal multi-head attention with RoPE and grouped-query heads, as llama.cpp's `llama` arch
 * computes it, forward and backward.
 *
 * Queries, keys and values arrive fused in one [B·T, dim + 2·kvDim] matrix (one GEMM makes
 * all three). They are regrouped so that each (batch row, kv head) pair is one contiguous
 * block: the hpg = nHeads/nKvHeads query heads that share a kv head stack into an
 * [hpg·T, headDim] matrix. Every product of a block (QKᵀ, PV and their gradients) is then a
 * plain GEMM, with the kv-head gradient summed over the group by the GEMM itself. Operands
 * of all blocks of a layer go to the GEMM in one call (`Gemm.matmulBatched`).
 */
import type { Gemm } from "../linalg/gemm.ts";
import type { LlamaConfig } from "./config.ts";
import type { Workspace } from "./workspace.ts";

/** cos/sin of RoPE angles for positions 0..T-1, [T, headDim/2]. */
export interface RopeTable {
  cos: Float32Array;
  sin: Float32Array;
}

const ropeTables = new Map<string, RopeTable>();

/**
 * RoPE angles as ggml computes them for GGML_ROPE_TYPE_NORM: θ = pos · base^(−2i/headDim),
 * with the frequency built by repeated float32 multiplication, applied to pairs (2i, 2i+1).
 */
function ropeTable(T: number, hd: number, base: number): RopeTable {
  const key = `${T}:${hd}:${base}`;
  const hit = ropeTables.get(key);
  if (hit) return hit;
  const half = hd / 2;
  const cos = new Float32Array(T * half);
  const sin = new Float32Array(T * half);
  const thetaScale = Math.fround(base ** Math.fround(-2 / hd));
  for (let t = 0; t < T; t++) {
    let theta = Math.fround(t);
    for (let i = 0; i < half; i++) {
      cos[t * half + i] = Math.cos(theta);
      sin[t * half + i] = Math.sin(theta);
      theta = Math.fround(theta * thetaScale);
    }
  }
  const table = { cos, sin };
  ropeTables.set(key, table);
  return table;
}

/** What the backward pass needs from the forward pass (blocks indexed by b·nKvHeads + g). */
export interface AttentionCache {
  /** Rotated queries, [B·G, hpg·T, hd]. */
  q: Float32Array;
  /** Rotated keys, [B·G, T, hd]. */
  k: Float32Array;
  /** Values, [B·G, T, hd]. */
  v: Float32Array;
  /** Attention probabilities, [B·G, hpg·T, T] (zero above the diagonal). */
  p: Float32Array;
}

interface Dims {
  D: number;
  G: number;
  hpg: number;
  hd: number;
  kvD: number;
  C: number;
  rows: number;
}

function dims(c: LlamaConfig, T: number): Dims {
  const hd = c.dim / c.nHeads;
  const kvD = hd * c.nKvHeads;
  const hpg = c.nHeads / c.nKvHeads;
  return { D: c.dim, G: c.nKvHeads, hpg, hd, kvD, C: c.dim + 2 * kvD, rows: hpg * T };
}

/**
 * Attention forward. `qkv` is [B·T, dim + 2·kvDim] (q | k | v, before RoPE); returns the
 * attention output [B·T, dim] (heads side by side, ready for attn_output) and the cache.
 */
export async function attentionForward(
  qkv: Float32Array,
  c: LlamaConfig,
  B: number,
  T: number,
  gemm: Gemm,
  ws: Workspace,
  layerKey: string,
): Promise<{ out: Float32Array; cache: AttentionCache }> {
  const { D, G, hpg, hd, kvD, C, rows } = dims(c, T);
  const BG = B * G;
  const half = hd / 2;
  const { cos, sin } = ropeTable(T, hd, c.ropeTheta);
  const q = ws.f32(`${layerKey}q`, BG * rows * hd);
  const k = ws.f32(`${layerKey}k`, BG * T * hd);
  const v = ws.f32(`${layerKey}v`, BG * T * hd);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const row = (b * T + t) * C;
      const ro = t * half;
      for (let g = 0; g < G; g++) {
        const blk = b * G + g;
        for (let hh = 0; hh < hpg; hh++) {
          const src = row + (g * hpg + hh) * hd;
          const dst = (blk * rows + hh * T + t) * hd;
          for (let i = 0; i < half; i++) {
            const x0 = qkv[src + 2 * i];
            const x1 = qkv[src + 2 * i + 1];
            const cs = cos[ro + i];
            const sn = sin[ro + i];
            q[dst + 2 * i] = x0 * cs - x1 * sn;
            q[dst + 2 * i + 1] = x0 * sn + x1 * cs;
          }
        }
        const ks = row + D + g * hd;
        const vs = row + D + kvD + g * hd;
        const kd = (blk * T + t) * hd;
        for (let i = 0; i < half; i++) {
          const x0 = qkv[ks + 2 * i];
          const x1 = qkv[ks + 2 * i + 1];
          const cs = cos[ro + i];
          const sn = sin[ro + i];
          k[kd + 2 * i] = x0 * cs - x1 * sn;
          k[kd + 2 * i + 1] = x0 * sn + x1 * cs;
        }
        for (let i = 0; i < hd; i++) v[kd + i] = qkv[vs + i];
      }
    }
  }

  const s = await gemm.matmulBatched(q, k, BG, rows, hd, T, { transB: true });
  causalSoftmax(s, BG * rows, T, 1 / Math.sqrt(hd));
  const p = s;
  const o = await gemm.matmulBatched(p, v, BG, rows, T, hd);
  const out = ws.f32(`${layerKey}o`, B * T * D);
  for (let b = 0; b < B; b++) {
    for (let g = 0; g < G; g++) {
      const blk = b * G + g;
      for (let hh = 0; hh < hpg; hh++) {
        const col = (g * hpg + hh) * hd;
        for (let t = 0; t < T; t++) {
          const src = (blk * rows + hh * T + t) * hd;
          const dst = (b * T + t) * D + col;
          for (let i = 0; i < hd; i++) out[dst + i] = o[src + i];
        }
      }
    }
  }
  return { out, cache: { q, k, v, p } };
}

/**
 * In place, row-wise softmax of s·scale over the causal window: row r is position r mod T
 * and sees keys 0..r mod T; entries beyond the window become 0. Rounds like ggml's float
 * softmax (max-subtracted exp, sum in double).
 */
function causalSoftmax(s: Float32Array, rows: number, T: number, scale: number): void {
  for (let r = 0; r < rows; r++) {
    const t = r % T;
    const o = r * T;
    const end = o + t;
    let max = Number.NEGATIVE_INFINITY;
    for (let j = o; j <= end; j++) {
      const z = Math.fround(s[j] * scale);
      s[j] = z;
      if (z > max) max = z;
    }
    let sum = 0;
    for (let j = o; j <= end; j++) {
      const e = Math.fround(Math.exp(s[j] - max));
      s[j] = e;
      sum += e;
    }
    const inv = Math.fround(1 / sum);
    for (let j = o; j <= end; j++) s[j] *= inv;
    s.fill(0, end + 1, o + T);
  }
}

/**
 * Attention backward: from d(out) [B·T, dim], the gradient of the pre-RoPE q | k | v,
 * written into `dqkv` [B·T, dim + 2·kvDim] (overwritten).
 */
export async function attentionBackward(
  dOut: Float32Array,
  cache: AttentionCache,
  c: LlamaConfig,
  B: number,
  T: number,
  gemm: Gemm,
  ws: Workspace,
  dqkv: Float32Array,
): Promise<void> {
  const { D, G, hpg, hd, kvD, C, rows } = dims(c, T);
  const BG = B * G;
  const half = hd / 2;
  const { cos, sin } = ropeTable(T, hd, c.ropeTheta);
  const { q, k, v, p } = cache;

  // dO in block layout [BG, rows, hd].
  const dO = ws.f32("attn.dO", BG * rows * hd);
  for (let b = 0; b < B; b++) {
    for (let g = 0; g < G; g++) {
      const blk = b * G + g;
      for (let hh = 0; hh < hpg; hh++) {
        const col = (g * hpg + hh) * hd;
        for (let t = 0; t < T; t++) {
          const src = (b * T + t) * D + col;
          const dst = (blk * rows + hh * T + t) * hd;
          for (let i = 0; i < hd; i++) dO[dst + i] = dOut[src + i];
        }
      }
    }
  }
  const dP = await gemm.matmulBatched(dO, v, BG, rows, hd, T, { transB: true });
  const dV = await gemm.matmulBatched(p, dO, BG, T, rows, hd, { transA: true });
  softmaxBackward(dP, p, BG * rows, T, 1 / Math.sqrt(hd));
  const dS = dP;
  const dQ = await gemm.matmulBatched(dS, k, BG, rows, T, hd);
  const dK = await gemm.matmulBatched(dS, q, BG, T, rows, hd, { transA: true });

  // Undo RoPE (rotate back) and put each gradient where its input came from.
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const row = (b * T + t) * C;
      const ro = t * half;
      for (let g = 0; g < G; g++) {
        const blk = b * G + g;
        for (let hh = 0; hh < hpg; hh++) {
          const src = (blk * rows + hh * T + t) * hd;
          const dst = row + (g * hpg + hh) * hd;
          for (let i = 0; i < half; i++) {
            const g0 = dQ[src + 2 * i];
            const g1 = dQ[src + 2 * i + 1];
            const cs = cos[ro + i];
            const sn = sin[ro + i];
            dqkv[dst + 2 * i] = g0 * cs + g1 * sn;
            dqkv[dst + 2 * i + 1] = g1 * cs - g0 * sn;
          }
        }
        const src = (blk * T + t) * hd;
        const kd = row + D + g * hd;
        const vd = row + D + kvD + g * hd;
        for (let i = 0; i < half; i++) {
          const g0 = dK[src + 2 * i];
          const g1 = dK[src + 2 * i + 1];
          const cs = cos[ro + i];
          const sn = sin[ro + i];
          dqkv[kd + 2 * i] = g0 * cs + g1 * sn;
          dqkv[kd + 2 * i + 1] = g1 * cs - g0 * sn;
        }
        for (let i = 0; i < hd; i++) dqkv[vd + i] = dV[src + i];
      }
    }
  }
}

/** In place: dP → dS = P ⊙ (dP − Σ P⊙dP) · scale over the causal window, zero beyond it. */
function softmaxBackward(
  d: Float32Array,
  p: Float32Array,
  rows: number,
  T: number,
  scale: number,
): void {
  for (let r = 0; r < rows; r++) {
    const o = r * T;
    const end = o + (r % T);
    let dot = 0;
    for (let j = o; j <= end; j++) dot += p[j] * d[j];
    for (let j = o; j <= end; j++) d[j] = p[j] * (d[j] - dot) * scale;
    d.fill(0, end + 1, o + T);
  }
}
