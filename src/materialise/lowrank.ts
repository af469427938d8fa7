/**
 * Σ_t U_t diag(w_t) V_tᵀ, the low-rank part of a matrix's task vector, in float64. Small
 * products run in loops whose order fixes every bit; large ones go through the GEMM engine's
 * float64 product when one is given (the same sum to float64 rounding, in its own order).
 * certified.ts gets the loops' bits from the GEMM where a model is written.
 */
import type { Gemm } from "../linalg/gemm.ts";
import type { DotPool } from "./dot-pool.ts";

export interface LowRankTerm {
  /** rows×rank, row-major. */
  u: Float32Array;
  /** cols×rank, row-major. */
  v: Float32Array;
  /** One weight per component (length rank). */
  w: ArrayLike<number>;
  rank: number;
}

/** Multiply-adds (rows·cols·components) from which `addLowRank` uses the GEMM engine. */
export const GEMM_MIN_WORK = 1 << 24;

export interface LowRankOptions {
  gemm?: Gemm;
  /** Multiply-adds (rows·cols·components) from which the GEMM engine is used (default 2^24). */
  gemmMinWork?: number;
  /**
   * How matrices are summed; all give the same bits. "certified" (the default when a model
   * is written with a GEMM engine: certified.ts), else the float64 loops: "dot", or the
   * earlier "axpy".
   */
  kernel?: "certified" | "dot" | "axpy";
  /** Worker threads for the dot kernel, so that several tensors are built at once. */
  pool?: DotPool;
}

/** out (rows×cols, row-major) += Σ_t U_t diag(w_t) V_tᵀ. */
export async function addLowRank(
  out: Float64Array,
  terms: readonly LowRankTerm[],
  rows: number,
  cols: number,
  opts: LowRankOptions = {},
): Promise<void> {
  const active = activeComponents(terms);
  const n = active.length;
  if (n === 0) return;
  const { gemm, gemmMinWork = GEMM_MIN_WORK } = opts;
  if (gemm && rows * cols * n >= gemmMinWork) {
    const { coef, v } = packActive(active, rows, cols);
    const c = await gemm.matmulF64(coef, v, rows, n, cols, { transB: true });
    for (let i = 0; i < c.length; i++) out[i] += c[i];
    return;
  }
  if (opts.kernel === "axpy") addAxpy(out, active, rows, cols);
  else await addDot(out, active, rows, cols, opts.pool);
}

export interface ActiveComponent {
  t: LowRankTerm;
  r: number;
  w: number;
}
type Active = ActiveComponent[];

/**
 * The components with a non-zero weight, term by term: the order of the exact kernels' sums.
 * Only these cost anything (a seed genome uses 1/K of them).
 */
export function activeComponents(terms: readonly LowRankTerm[]): Active {
  const active: Active = [];
  for (const t of terms) {
    for (let r = 0; r < t.rank; r++) if (t.w[r] !== 0) active.push({ t, r, w: t.w[r] });
  }
  return active;
}

/**
 * The active components side by side, row-major: coef (rows×n) = u·w, formed as the loops
 * form it, and v (cols×n). With `norms`, also each row's ‖coef_i‖₂ and ‖v_x‖₂. Row by row,
 * so that both the reads and the writes walk memory in order.
 */
export function packActive(
  active: Active,
  rows: number,
  cols: number,
  norms?: { row: Float64Array; col: Float64Array },
): { coef: Float64Array; v: Float64Array } {
  const at = Int32Array.from(active, ({ t, r }) => r - t.rank); // + (i + 1)·rank: row i's entry
  const ranks = Int32Array.from(active, ({ t }) => t.rank);
  const ws = Float64Array.from(active, ({ w }) => w);
  const side = (src: Float32Array[], count: number, scale: boolean, norm?: Float64Array) => {
    const n = src.length;
    const out = new Float64Array(count * n);
    for (let i = 0; i < count; i++) {
      let sq = 0;
      for (let j = 0; j < n; j++) {
        const x = src[j][at[j] + (i + 1) * ranks[j]];
        const y = scale ? x * ws[j] : x;
        out[i * n + j] = y;
        sq += y * y;
      }
      if (norm) norm[i] = Math.sqrt(sq);
    }
    return out;
  };
  return {
    coef: side(
      active.map(({ t }) => t.u),
      rows,
      true,
      norms?.row,
    ),
    v: side(
      active.map(({ t }) => t.v),
      cols,
      false,
      norms?.col,
    ),
  };
}

/**
 * out[i, x] += Σ_j coef[i, j] · v[x, j] as dot products: each element is summed in
 * registers over the components in their order, which is exactly the order (and so the
 * rounding) of the row-by-row axpy loop below, at about a third of its time. Four columns at
 * a time share the loads of coef.
 */
async function addDot(
  out: Float64Array,
  active: Active,
  rows: number,
  cols: number,
  pool?: DotPool,
): Promise<void> {
  const n = active.length;
  const { coef, v: vx } = packActive(active, rows, cols);
  if (pool) out.set(await pool.dot(out, coef, vx, rows, cols, n));
  else dotKernel(out, coef, vx, rows, cols, n);
}

/**
 * The dot kernel itself: self-contained (no outer names), so that a worker thread can run
 * it from its source text.
 */
export function dotKernel(
  out: Float64Array,
  coef: Float64Array,
  vx: Float64Array,
  rows: number,
  cols: number,
  n: number,
): void {
  for (let i = 0; i < rows; i++) {
    const ci = i * n;
    const o = i * cols;
    let x = 0;
    for (; x + 4 <= cols; x += 4) {
      let a0 = out[o + x];
      let a1 = out[o + x + 1];
      let a2 = out[o + x + 2];
      let a3 = out[o + x + 3];
      const v0 = x * n;
      const v1 = v0 + n;
      const v2 = v1 + n;
      const v3 = v2 + n;
      for (let j = 0; j < n; j++) {
        const c = coef[ci + j];
        a0 += c * vx[v0 + j];
        a1 += c * vx[v1 + j];
        a2 += c * vx[v2 + j];
        a3 += c * vx[v3 + j];
      }
      out[o + x] = a0;
      out[o + x + 1] = a1;
      out[o + x + 2] = a2;
      out[o + x + 3] = a3;
    }
    for (; x < cols; x++) {
      let a = out[o + x];
      const v0 = x * n;
      for (let j = 0; j < n; j++) a += coef[ci + j] * vx[v0 + j];
      out[o + x] = a;
    }
  }
}

/** The earlier kernel, kept for benches: row by row, one component at a time. */
function addAxpy(out: Float64Array, active: Active, rows: number, cols: number): void {
  const n = active.length;
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
