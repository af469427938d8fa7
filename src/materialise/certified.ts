/**
 * θ₀ + τ for a matrix, from one float64 GEMM instead of the float64
 * loops, with the loops' bits (lowrank.ts's dot kernel defines them). The GEMM sums in its
 * own order, so each element comes with a rigorous bound on its distance from the loops' sum
 * (both are within γₙ·Σ|terms| of the real sum). Every step after it (adding the noise
 * fields, adding θ₀, rounding to float32, then to the storage type) is a monotone function of
 * τ, so where both ends of the interval give the same storage bits, the loops' sum gives them
 * too. The rare elements that the bound cannot decide (within ~1e-14, relative, of a rounding
 * boundary: none in a typical F16 matrix, about one in 10⁶ for F32) are summed again in the
 * loops' order.
 */
import type { Gemm } from "../linalg/gemm.ts";
import { type FloatDType, f32ToBf16, f32ToF16 } from "../tensors/dtype.ts";
import { activeComponents, type LowRankTerm, packActive } from "./lowrank.ts";

export interface CertifiedMatrix {
  /** θ₀, rows×cols row-major. */
  theta: Float32Array;
  /** What the exact kernel starts from (the residual terms, Σ a_k E_k): rows×cols. */
  start: Float64Array;
  terms: readonly LowRankTerm[];
  rows: number;
  cols: number;
  /** Added to τ after the low-rank part, in order, as `out[i] += scale · field[i]`. */
  noise: readonly { scale: number; field: Float64Array }[];
  /** Where the values go (default: a new array); may be `theta` itself. */
  out?: Float32Array;
  /** The storage type the values will be written as. */
  dtype: FloatDType;
  gemm: Gemm;
}

export interface CertifiedResult {
  /** float32 values whose storage bits equal the exact path's, element by element. */
  data: Float32Array;
  /** Elements the bound could not decide, summed again in float64. */
  recomputed: number;
}

const U64 = 2 ** -53;

const f32 = new Float32Array(1);
const f32Bits = new Uint32Array(f32.buffer);

/** A value's bits once stored as `dtype` (through float32, as the writers do). */
const STORE: Record<FloatDType, (v: number) => number> = {
  F32: (v) => {
    f32[0] = v;
    return f32Bits[0];
  },
  F16: f32ToF16,
  BF16: f32ToBf16,
};

/** θ₀ + τ as float32 values that store as the loops' bits (see the header). */
export async function certifiedMerge(m: CertifiedMatrix): Promise<CertifiedResult> {
  const { theta, start, rows, cols, noise, gemm } = m;
  const active = activeComponents(m.terms);
  const n = active.length;
  const size = rows * cols;
  // Each element reads its θ₀ before it writes its own result, so `out` may be `theta`.
  const data = m.out ?? new Float32Array(size);
  const store = STORE[m.dtype];

  // coef = u·w as the dot kernel forms it, and ‖coef_i‖₂, ‖v_x‖₂ for the bound
  // (Cauchy–Schwarz: Σ_j |coef_ij · v_xj| ≤ ‖coef_i‖₂ ‖v_x‖₂).
  const rowNorm = new Float64Array(rows);
  const colNorm = new Float64Array(cols);
  const { coef: a, v: b } = packActive(active, rows, cols, { row: rowNorm, col: colNorm });
  const product = n > 0 ? await gemm.matmulF64(a, b, rows, n, cols, { transB: true }) : null;

  // Both sums (n products, n + 1 additions) are within γₙ₊₁·(|start| + Σ|terms|) of the
  // real one, and start + product adds one rounding; a factor 4 covers both sides, the
  // rounding of the norms and the bound's own arithmetic.
  const gamma = ((n + 2) * U64) / (1 - (n + 2) * U64);
  const k = 4 * gamma;
  const tiny = (n + 1) * Number.MIN_VALUE;
  if (product === null) {
    for (let e = 0; e < size; e++) {
      let y = start[e];
      for (const { scale, field } of noise) y += scale * field[e];
      data[e] = theta[e] + y;
    }
    return { data, recomputed: 0 };
  }
  let recomputed = 0;
  for (let i = 0; i < rows; i++) {
    const o = i * cols;
    const ki = k * rowNorm[i];
    for (let x = 0; x < cols; x++) {
      const e = o + x;
      const s = start[e];
      const mid = s + product[e];
      // The absolute term keeps lo < hi, so that a sum whose sign of zero is in doubt is
      // recomputed (and covers underflow in the products).
      const err = ki * colNorm[x] + k * Math.abs(s) + tiny;
      let lo = mid - err;
      let hi = mid + err;
      for (let q = 0; q < noise.length; q++) {
        const z = noise[q].scale * noise[q].field[e];
        lo += z;
        hi += z;
      }
      const th = theta[e];
      const low = th + lo;
      const high = th + hi;
      // The same float32 value stores the same (but for the sign of a zero): the quick test.
      const flo = Math.fround(low);
      if ((flo === Math.fround(high) && flo !== 0) || store(low) === store(high)) {
        data[e] = flo;
        continue;
      }
      // Undecided: the exact kernel's sum for this one element, in its order.
      let y = s;
      for (const { t, r, w } of active) y += t.u[i * t.rank + r] * w * t.v[x * t.rank + r];
      for (const { scale, field } of noise) y += scale * field[e];
      data[e] = th + y;
      recomputed++;
    }
  }
  return { data, recomputed };
}
