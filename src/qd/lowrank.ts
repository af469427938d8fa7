/**
 * Σ_t U_t diag(w_t) V_tᵀ, the low-rank part of a matrix's task vector. Small products run
 * in float64 loops (exact to rounding); large ones go through the GEMM engine when one is
 * given, as one product over all terms' components stacked side by side.
 */
import type { Gemm } from "../linalg/gemm.ts";

export interface LowRankTerm {
  /** rows×rank, row-major. */
  u: Float32Array;
  /** cols×rank, row-major. */
  v: Float32Array;
  /** One weight per component (length rank). */
  w: ArrayLike<number>;
  rank: number;
}

export interface LowRankOptions {
  gemm?: Gemm;
  /** Multiply-adds (rows·cols·components) from which the GEMM engine is used (default 2^24). */
  gemmMinWork?: number;
}

/** out (rows×cols, row-major) += Σ_t U_t diag(w_t) V_tᵀ. */
export async function addLowRank(
  out: Float64Array,
  terms: readonly LowRankTerm[],
  rows: number,
  cols: number,
  opts: LowRankOptions = {},
): Promise<void> {
  // Only components with a non-zero weight cost anything: a seed genome uses 1/K of them.
  const active: { t: LowRankTerm; r: number; w: number }[] = [];
  for (const t of terms) {
    for (let r = 0; r < t.rank; r++) if (t.w[r] !== 0) active.push({ t, r, w: t.w[r] });
  }
  const n = active.length;
  if (n === 0) return;
  const { gemm, gemmMinWork = 1 << 24 } = opts;
  if (gemm && rows * cols * n >= gemmMinWork) {
    const a = new Float32Array(rows * n);
    const b = new Float32Array(cols * n);
    active.forEach(({ t, r, w }, j) => {
      for (let i = 0; i < rows; i++) a[i * n + j] = t.u[i * t.rank + r] * w;
      for (let i = 0; i < cols; i++) b[i * n + j] = t.v[i * t.rank + r];
    });
    const c = await gemm.matmul(a, b, rows, n, cols, { transB: true });
    for (let i = 0; i < c.length; i++) out[i] += c[i];
    return;
  }
  // Vᵀ rows of the active components, so the inner loop walks memory in order.
  const vt = new Float64Array(n * cols);
  const coef = new Float64Array(n);
  active.forEach(({ t, r }, j) => {
    for (let i = 0; i < cols; i++) vt[j * cols + i] = t.v[i * t.rank + r];
  });
  for (let i = 0; i < rows; i++) {
    active.forEach(({ t, r, w }, j) => {
      coef[j] = t.u[i * t.rank + r] * w;
    });
    const o = i * cols;
    for (let j = 0; j < n; j++) {
      const cj = coef[j];
      if (cj === 0) continue;
      const vo = j * cols;
      for (let x = 0; x < cols; x++) out[o + x] += cj * vt[vo + x];
    }
  }
}
