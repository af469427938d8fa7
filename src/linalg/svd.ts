/**
 * Singular value decompositions for task vectors: exact one-sided Jacobi (float64) for
 * small matrices, randomized range finding (Halko, Martinsson & Tropp 2011) for large ones.
 *
 * Internally a matrix is often held as "columns": a Float64Array of `ncol` contiguous
 * columns of length `len`, so that dot products and rotations walk memory in order.
 */
import type { Rng } from "../util/rng.ts";
import type { Gemm } from "./gemm.ts";

/** Thin SVD A ≈ U·diag(S)·Vᵀ of an m×n matrix. */
export interface Svd {
  /** m×r, row-major, orthonormal columns. */
  u: Float64Array;
  /** r singular values, descending. */
  s: Float64Array;
  /** n×r, row-major, orthonormal columns. */
  v: Float64Array;
  m: number;
  n: number;
  /** Number of singular triplets returned. */
  r: number;
  /** Numerical rank: how many s exceed max(m,n)·ε·s₀ (for a truncated SVD, at most r). */
  rank: number;
}

export interface RandomizedSvdOptions {
  /** Extra test vectors beyond `rank` (default 10). */
  oversample?: number;
  /** Power iterations, each re-orthonormalised (default 2). */
  powerIters?: number;
  /** Source of the Gaussian test matrix. */
  rng: Rng;
}

/** Milliseconds spent in each stage of `svdRandomized`. */
export interface SvdTimings {
  gemmMs: number;
  qrMs: number;
  smallSvdMs: number;
  totalMs: number;
}

export interface RandomizedSvd extends Svd {
  timings: SvdTimings;
}

export interface TruncatedSvdOptions extends RandomizedSvdOptions {
  /** Use exact Jacobi when min(m,n) is at most this (default 256). */
  exactMaxDim?: number;
}

const EPS = 2.220446049250313e-16;
const MAX_SWEEPS = 60;

// ---------------------------------------------------------------- validation

function checkMatrix(fn: string, a: Float32Array | Float64Array, m: number, n: number): void {
  checkShape(fn, a, m, n);
  if (!allFinite(a)) throwNonFinite(fn, a, n);
}

function checkShape(fn: string, a: Float32Array | Float64Array, m: number, n: number): void {
  for (const [name, v] of [
    ["m", m],
    ["n", n],
  ] as const) {
    if (!(Number.isSafeInteger(v) && v > 0)) {
      throw new Error(`${fn}: ${name} must be a positive integer, got ${v}`);
    }
  }
  if (!(a instanceof Float32Array || a instanceof Float64Array)) {
    throw new Error(`${fn}: the matrix must be a Float32Array or Float64Array (row-major)`);
  }
  if (a.length !== m * n) {
    throw new Error(`${fn}: the matrix has ${a.length} elements but ${m}×${n} needs ${m * n}`);
  }
}

function allFinite(a: ArrayLike<number>): boolean {
  // x·0 is NaN exactly when x is NaN or ±Infinity, so one cheap pass finds either.
  let probe = 0;
  for (let i = 0; i < a.length; i++) probe += a[i] * 0;
  return probe === 0;
}

function throwNonFinite(fn: string, a: Float32Array | Float64Array, n: number): never {
  const i = a.findIndex((x) => !Number.isFinite(x));
  const at = `row ${Math.floor(i / n)}, column ${i % n}`;
  throw new Error(`${fn}: the matrix holds ${a[i]} at ${at}; clean NaN/Infinity first`);
}

function checkRank(fn: string, rank: number, m: number, n: number): void {
  const most = Math.min(m, n);
  if (!(Number.isInteger(rank) && rank >= 1 && rank <= most)) {
    throw new Error(`${fn}: rank must be an integer in 1..min(m,n)=${most}, got ${rank}`);
  }
}

function checkRandomizedOptions(fn: string, opts: RandomizedSvdOptions | undefined): void {
  if (!opts?.rng || typeof opts.rng.normal !== "function") {
    throw new Error(`${fn}: pass a seeded generator as opts.rng (e.g. new Rng(seed))`);
  }
  const { oversample = 10, powerIters = 2 } = opts;
  if (!(Number.isInteger(oversample) && oversample >= 0)) {
    throw new Error(`${fn}: oversample must be a non-negative integer, got ${oversample}`);
  }
  if (!(Number.isInteger(powerIters) && powerIters >= 0)) {
    throw new Error(`${fn}: powerIters must be a non-negative integer, got ${powerIters}`);
  }
}

// ---------------------------------------------------------------- column kernels

function dot(x: Float64Array, xo: number, y: Float64Array, yo: number, len: number): number {
  let s0 = 0;
  let s1 = 0;
  let i = 0;
  // Two accumulators halve the dependency chain of the additions.
  for (; i + 1 < len; i += 2) {
    s0 += x[xo + i] * y[yo + i];
    s1 += x[xo + i + 1] * y[yo + i + 1];
  }
  if (i < len) s0 += x[xo + i] * y[yo + i];
  return s0 + s1;
}

/** y += alpha·x */
function axpy(
  alpha: number,
  x: Float64Array,
  xo: number,
  y: Float64Array,
  yo: number,
  len: number,
) {
  for (let i = 0; i < len; i++) y[yo + i] += alpha * x[xo + i];
}

/**
 * Transpose of a row-major rows×cols matrix into `out` (cols×rows). A row-major matrix's
 * transpose is its column storage, so this converts between the two layouts.
 */
function transpose<T extends Float32Array | Float64Array>(
  a: ArrayLike<number>,
  rows: number,
  cols: number,
  out: T,
): T {
  // Tiles keep both the reads and the strided writes within cache.
  const B = 32;
  for (let i0 = 0; i0 < rows; i0 += B) {
    const i1 = Math.min(i0 + B, rows);
    for (let j0 = 0; j0 < cols; j0 += B) {
      const j1 = Math.min(j0 + B, cols);
      for (let i = i0; i < i1; i++) {
        for (let j = j0; j < j1; j++) out[j * rows + i] = a[i * cols + j];
      }
    }
  }
  return out;
}

const toF64T = (a: ArrayLike<number>, rows: number, cols: number) =>
  transpose(a, rows, cols, new Float64Array(rows * cols));
const toF32T = (a: ArrayLike<number>, rows: number, cols: number) =>
  transpose(a, rows, cols, new Float32Array(rows * cols));

// ---------------------------------------------------------------- Householder QR

/**
 * Thin QR of a len×ncol matrix given as columns (len ≥ ncol), in float64.
 * Returns Q as columns (ncol×len, orthonormal) and R as row-major ncol×ncol upper triangle.
 */
function qrColumns(
  cols: Float64Array,
  len: number,
  ncol: number,
): { q: Float64Array; r: Float64Array } {
  if (len < ncol) throw new Error(`qrColumns: needs rows ≥ columns, got ${len}×${ncol}`);
  const w = Float64Array.from(cols);
  const diag = new Float64Array(ncol);
  const beta = new Float64Array(ncol);
  for (let j = 0; j < ncol; j++) {
    const vo = j * len + j;
    const vlen = len - j;
    const norm = Math.sqrt(dot(w, vo, w, vo, vlen));
    if (norm === 0) continue; // Column already zero below the diagonal: H_j = I.
    const x0 = w[vo];
    const alpha = x0 >= 0 ? -norm : norm;
    w[vo] = x0 - alpha;
    diag[j] = alpha;
    beta[j] = 1 / (norm * norm - alpha * x0); // 2 / vᵀv, since vᵀv = 2(‖x‖² − α·x₀)
    reflect(w, vo, vlen, beta[j], w, (j + 1) * len + j, ncol - j - 1, len);
  }
  const r = new Float64Array(ncol * ncol);
  for (let i = 0; i < ncol; i++) {
    r[i * ncol + i] = diag[i];
    for (let c = i + 1; c < ncol; c++) r[i * ncol + c] = w[c * len + i];
  }
  // Q = H₀·H₁·…·[I; 0]; H_j leaves columns c < j untouched, so apply it to c ≥ j only.
  const q = new Float64Array(ncol * len);
  for (let c = 0; c < ncol; c++) q[c * len + c] = 1;
  for (let j = ncol - 1; j >= 0; j--) {
    if (beta[j] === 0) continue;
    reflect(w, j * len + j, len - j, beta[j], q, j * len + j, ncol - j, len);
  }
  return { q, r };
}

/**
 * Applies H = I − β·v·vᵀ (v = x[vo : vo+vlen]) to `count` columns of y, the first at
 * offset yo and each `stride` further. Four columns share one pass over v, which is
 * what makes the QR about twice as fast as column-at-a-time dot + axpy.
 */
function reflect(
  x: Float64Array,
  vo: number,
  vlen: number,
  beta: number,
  y: Float64Array,
  yo: number,
  count: number,
  stride: number,
): void {
  let c = 0;
  for (; c + 4 <= count; c += 4) {
    const o0 = yo + c * stride;
    const o1 = o0 + stride;
    const o2 = o1 + stride;
    const o3 = o2 + stride;
    let d0 = 0;
    let d1 = 0;
    let d2 = 0;
    let d3 = 0;
    for (let i = 0; i < vlen; i++) {
      const vi = x[vo + i];
      d0 += vi * y[o0 + i];
      d1 += vi * y[o1 + i];
      d2 += vi * y[o2 + i];
      d3 += vi * y[o3 + i];
    }
    d0 *= beta;
    d1 *= beta;
    d2 *= beta;
    d3 *= beta;
    for (let i = 0; i < vlen; i++) {
      const vi = x[vo + i];
      y[o0 + i] -= d0 * vi;
      y[o1 + i] -= d1 * vi;
      y[o2 + i] -= d2 * vi;
      y[o3 + i] -= d3 * vi;
    }
  }
  for (; c < count; c++) {
    const o = yo + c * stride;
    axpy(-beta * dot(x, vo, y, o, vlen), x, vo, y, o, vlen);
  }
}

// ---------------------------------------------------------------- one-sided Jacobi

/**
 * One-sided (Hestenes) Jacobi on a square n×n matrix given as columns: rotates the
 * columns of X until they are mutually orthogonal, so X·V = W with W's columns U·S.
 * Returns W (in place of a copy) and V, both as columns.
 */
function jacobiColumns(x: Float64Array, n: number): { w: Float64Array; v: Float64Array } {
  const w = Float64Array.from(x);
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  const norms = new Float64Array(n);
  const tol = Math.max(n, 1) * EPS;
  for (let sweep = 0; sweep < MAX_SWEEPS; sweep++) {
    // Fresh norms each sweep: the update formula below drifts.
    for (let j = 0; j < n; j++) norms[j] = dot(w, j * n, w, j * n, n);
    let rotated = false;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const alpha = norms[p];
        const beta = norms[q];
        if (alpha === 0 || beta === 0) continue;
        const gamma = dot(w, p * n, w, q * n, n);
        if (Math.abs(gamma) <= tol * Math.sqrt(alpha * beta)) continue;
        rotated = true;
        const zeta = (beta - alpha) / (2 * gamma);
        const t = (zeta >= 0 ? 1 : -1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
        const c = 1 / Math.sqrt(1 + t * t);
        rotate(w, p * n, q * n, n, c, c * t);
        rotate(v, p * n, q * n, n, c, c * t);
        norms[p] = alpha - t * gamma;
        norms[q] = beta + t * gamma;
      }
    }
    if (!rotated) return { w, v };
  }
  throw new Error(`svdJacobi: no convergence after ${MAX_SWEEPS} sweeps (n=${n})`);
}

/** [x_p, x_q] ← [c·x_p − s·x_q, s·x_p + c·x_q] */
function rotate(x: Float64Array, po: number, qo: number, len: number, c: number, s: number) {
  for (let i = 0; i < len; i++) {
    const xp = x[po + i];
    const xq = x[qo + i];
    x[po + i] = c * xp - s * xq;
    x[qo + i] = s * xp + c * xq;
  }
}

/**
 * Normalises W's columns to unit length and returns their norms. Columns whose norm is
 * at most `floor` carry no direction: they are replaced by unit vectors orthogonal to
 * all the others, so the result stays an orthonormal basis.
 */
function normaliseColumns(w: Float64Array, len: number, ncol: number, floor: number): Float64Array {
  const s = new Float64Array(ncol);
  const weak: number[] = [];
  for (let j = 0; j < ncol; j++) {
    s[j] = Math.sqrt(dot(w, j * len, w, j * len, len));
    if (s[j] > floor) {
      const inv = 1 / s[j];
      for (let i = 0; i < len; i++) w[j * len + i] *= inv;
    } else {
      weak.push(j);
    }
  }
  if (weak.length > 0) completeBasis(w, len, ncol, weak);
  return s;
}

/**
 * Fills the listed columns with orthonormal vectors orthogonal to every other column.
 * Each is the unit vector e_i least covered by the columns so far (its residual is at
 * least √(missing/len)), orthogonalised twice (Kahan–Parlett) and normalised.
 */
function completeBasis(w: Float64Array, len: number, ncol: number, missing: number[]): void {
  const isMissing = new Uint8Array(ncol);
  for (const j of missing) isMissing[j] = 1;
  // covered[i] = Σ over accepted columns of w[c][i]²: how much of e_i they already span.
  const covered = new Float64Array(len);
  const accept = (c: number) => {
    for (let i = 0; i < len; i++) covered[i] += w[c * len + i] ** 2;
  };
  for (let c = 0; c < ncol; c++) if (!isMissing[c]) accept(c);
  for (const j of missing) {
    const o = j * len;
    let best = 0;
    for (let i = 1; i < len; i++) if (covered[i] < covered[best]) best = i;
    w.fill(0, o, o + len);
    w[o + best] = 1;
    for (let pass = 0; pass < 2; pass++) {
      for (let c = 0; c < ncol; c++) {
        if (c === j || isMissing[c]) continue;
        axpy(-dot(w, c * len, w, o, len), w, c * len, w, o, len);
      }
    }
    const norm = Math.sqrt(dot(w, o, w, o, len));
    for (let i = 0; i < len; i++) w[o + i] /= norm;
    isMissing[j] = 0;
    accept(j);
  }
}

/** Column-storage product Q·M: Q has ncol columns of length len, M is ncol×k row-major. */
function combineColumns(
  q: Float64Array,
  len: number,
  ncol: number,
  mat: Float64Array,
  k: number,
): Float64Array {
  const out = new Float64Array(k * len);
  for (let j = 0; j < k; j++) {
    for (let i = 0; i < ncol; i++) {
      const coef = mat[i * k + j];
      if (coef !== 0) axpy(coef, q, i * len, out, j * len, len);
    }
  }
  return out;
}

/** Indices that sort `s` descending. */
function descendingOrder(s: Float64Array): number[] {
  return Array.from(s.keys()).sort((i, j) => s[j] - s[i]);
}

/**
 * Core of the exact SVD for a tall len×ncol matrix X given as columns (len ≥ ncol).
 * X = Q·R, then Jacobi on Rᵀ (which converges faster than on R): Rᵀ·Vx = Ux·S, so
 * X = (Q·Vx)·S·Uxᵀ. Returns left (len-long) and right (ncol-long) singular vectors as
 * columns, sorted by descending singular value.
 */
function svdTallColumns(x: Float64Array, len: number, ncol: number) {
  const { q, r } = qrColumns(x, len, ncol);
  // Columns of Rᵀ are the rows of R, which is row-major: the same array.
  const { w, v } = jacobiColumns(r, ncol);
  const raw = new Float64Array(ncol);
  for (let j = 0; j < ncol; j++) raw[j] = Math.sqrt(dot(w, j * ncol, w, j * ncol, ncol));
  const sMax = raw.reduce((acc, x) => Math.max(acc, x), 0);
  const floor = Math.max(len, ncol) * EPS * sMax;
  const s = normaliseColumns(w, ncol, ncol, floor);
  const order = descendingOrder(s);
  const sorted = Float64Array.from(order, (j) => (s[j] > floor ? s[j] : 0));
  const right = new Float64Array(ncol * ncol);
  const vPerm = new Float64Array(ncol * ncol);
  order.forEach((from, to) => {
    right.set(w.subarray(from * ncol, (from + 1) * ncol), to * ncol);
    vPerm.set(v.subarray(from * ncol, (from + 1) * ncol), to * ncol);
  });
  // Q·Vx: vPerm holds Vx's columns, i.e. Vxᵀ row-major, so transpose it to use as M.
  const left = combineColumns(q, len, ncol, toF64T(vPerm, ncol, ncol), ncol);
  const rank = sorted.reduce((acc, x) => acc + (x > floor ? 1 : 0), 0);
  return { left, right, s: sorted, rank };
}

/**
 * Exact thin SVD by one-sided Jacobi in float64: A = U·diag(S)·Vᵀ with r = min(m,n),
 * U m×r and V n×r row-major, S descending. Cost grows like m·n·min(m,n); use it for
 * matrices up to a few hundred on the short side.
 */
export function svdJacobi(a: Float32Array | Float64Array, m: number, n: number): Svd {
  checkMatrix("svdJacobi", a, m, n);
  const tall = m >= n;
  // Work on the tall orientation; for a wide A the rows of A are the columns of Aᵀ.
  const [len, ncol] = tall ? [m, n] : [n, m];
  const cols = tall ? toF64T(a, m, n) : Float64Array.from(a);
  const { left, right, s, rank } = svdTallColumns(cols, len, ncol);
  const leftRows = toF64T(left, ncol, len);
  const rightRows = toF64T(right, ncol, ncol);
  return {
    u: tall ? leftRows : rightRows,
    v: tall ? rightRows : leftRows,
    s,
    m,
    n,
    r: ncol,
    rank,
  };
}

// ---------------------------------------------------------------- randomized SVD

/**
 * Rank-`rank` SVD by randomized range finding (Halko et al. 2011, alg. 4.4 + 5.1):
 * Y = A·Ω with Gaussian Ω, `powerIters` rounds of Aᵀ/A re-orthonormalised by Householder
 * QR, then B = QᵀA factored exactly. The large products go through `gemm` (float32);
 * QR and the small SVD run in float64.
 */
export async function svdRandomized(
  gemm: Gemm,
  a: Float32Array | Float64Array,
  m: number,
  n: number,
  rank: number,
  opts: RandomizedSvdOptions,
): Promise<RandomizedSvd> {
  checkShape("svdRandomized", a, m, n);
  checkRank("svdRandomized", rank, m, n);
  checkRandomizedOptions("svdRandomized", opts);
  const { oversample = 10, powerIters = 2, rng } = opts;
  const l = Math.min(rank + oversample, m, n);
  const a32 = a instanceof Float32Array ? a : Float32Array.from(a);
  const t: SvdTimings = { gemmMs: 0, qrMs: 0, smallSvdMs: 0, totalMs: 0 };
  const start = performance.now();
  const timed = async <T>(key: "gemmMs" | "qrMs" | "smallSvdMs", f: () => T | Promise<T>) => {
    const t0 = performance.now();
    const out = await f();
    t[key] += performance.now() - t0;
    return out;
  };
  // Shapes chosen for MLAS: tall outputs (m×l, n×l) run 2–3× faster than wide l×n ones.
  // Y = A·X (m×l) and Z = Aᵀ·X (n×l), X row-major.
  const applyA = (x: Float32Array) => timed("gemmMs", () => gemm.matmul(a32, x, m, n, l));
  const applyAt = (x: Float32Array) =>
    timed("gemmMs", () => gemm.matmul(a32, x, n, m, l, { transA: true }));
  // Orthonormal basis of a row-major len×l matrix, returned as columns (l×len).
  const orth = async (y: Float32Array, len: number) => {
    const cols = toF64T(y, len, l);
    return timed("qrMs", () => qrColumns(cols, len, l));
  };

  const omega = new Float32Array(n * l);
  for (let i = 0; i < omega.length; i++) omega[i] = rng.normal();
  const y = await applyA(omega);
  // A NaN or ±Infinity anywhere in A reaches every entry of its row of A·Ω, so checking
  // the small sketch stands in for a full pass over A.
  if (!allFinite(y)) throwNonFinite("svdRandomized", a, n);
  let q = (await orth(y, m)).q;
  for (let i = 0; i < powerIters; i++) {
    const qz = (await orth(await applyAt(toF32T(q, l, m)), n)).q;
    q = (await orth(await applyA(toF32T(qz, l, n)), m)).q;
  }
  // Z = AᵀQ = Bᵀ for B = QᵀA; factor Z = Qz·R.
  const small = await orth(await applyAt(toF32T(q, l, m)), n);
  // svdJacobi(R) = u·S·vᵀ, so Z = (Qz·u)·S·vᵀ and A ≈ Q·Zᵀ = (Q·v)·S·(Qz·u)ᵀ.
  const core = await timed("smallSvdMs", () => svdJacobi(small.r, l, l));
  const uCoef = Float32Array.from(keepColumns(core.v, l, l, rank));
  const vCoef = Float32Array.from(keepColumns(core.u, l, l, rank));
  const u = await timed("gemmMs", () => gemm.matmul(toF32T(q, l, m), uCoef, m, l, rank));
  const v = await timed("gemmMs", () => gemm.matmul(toF32T(small.q, l, n), vCoef, n, l, rank));
  t.totalMs = performance.now() - start;
  const s = core.s.slice(0, rank);
  const floor = Math.max(m, n) * EPS * (core.s[0] ?? 0);
  const numRank = s.reduce((acc, x) => acc + (x > floor ? 1 : 0), 0);
  return {
    u: Float64Array.from(u),
    s,
    v: Float64Array.from(v),
    m,
    n,
    r: rank,
    rank: numRank,
    timings: t,
  };
}

/** First k columns of a row-major rows×cols matrix. */
function keepColumns(x: Float64Array, rows: number, cols: number, k: number): Float64Array {
  const out = new Float64Array(rows * k);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < k; j++) out[i * k + j] = x[i * cols + j];
  }
  return out;
}

// ---------------------------------------------------------------- truncated SVD

/**
 * Top-`rank` SVD, exact when cheap: Jacobi when min(m,n) ≤ exactMaxDim (default 256) or
 * when rank ≥ min(m,n)/2 (where a randomized sketch saves nothing), randomized otherwise.
 */
export async function truncatedSvd(
  gemm: Gemm,
  a: Float32Array | Float64Array,
  m: number,
  n: number,
  rank: number,
  opts: TruncatedSvdOptions,
): Promise<Svd> {
  checkShape("truncatedSvd", a, m, n);
  checkRank("truncatedSvd", rank, m, n);
  const exactMaxDim = opts?.exactMaxDim ?? 256;
  if (!(Number.isInteger(exactMaxDim) && exactMaxDim >= 0)) {
    throw new Error(`truncatedSvd: exactMaxDim must be a non-negative integer, got ${exactMaxDim}`);
  }
  const short = Math.min(m, n);
  if (short <= exactMaxDim || rank >= short / 2) return truncate(svdJacobi(a, m, n), rank);
  const { timings: _, ...svd } = await svdRandomized(gemm, a, m, n, rank, opts);
  return svd;
}

/** Keeps the first k triplets of an SVD. */
function truncate(svd: Svd, k: number): Svd {
  if (k === svd.r) return svd;
  return {
    u: keepColumns(svd.u, svd.m, svd.r, k),
    s: svd.s.slice(0, k),
    v: keepColumns(svd.v, svd.n, svd.r, k),
    m: svd.m,
    n: svd.n,
    r: k,
    rank: Math.min(svd.rank, k),
  };
}
