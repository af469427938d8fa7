/**
 * The GEMM interface: every large matrix product in cycleqd goes through one of these,
 * so the backend (onnxruntime's MLAS, or the pure-TypeScript fallback) is one choice.
 *
 * Matrices are row-major Float32Arrays. `matmul` computes C = op(A) · op(B) where
 * op(X) = Xᵀ when the matching trans flag is set; op(A) is m×k, op(B) is k×n, C is m×n.
 * `matmulBatched` does the same for `batch` independent pairs stored back to back.
 * `matmulF64` is `matmul` in float64, for sums that must stay within float64 rounding.
 */
export interface GemmOptions {
  transA?: boolean;
  transB?: boolean;
}

export interface Gemm {
  /** "onnxruntime" or "typescript". */
  readonly name: string;
  matmul(
    a: Float32Array,
    b: Float32Array,
    m: number,
    k: number,
    n: number,
    opts?: GemmOptions,
  ): Promise<Float32Array>;
  /**
   * C[i] = op(A[i])·op(B[i]) for i in 0..batch−1. A holds `batch` contiguous row-major
   * blocks of m×k (k×m with transA), B of k×n (n×k with transB); C is batch×m×n, block i
   * equal to what `matmul` returns for the pair i.
   */
  matmulBatched(
    a: Float32Array,
    b: Float32Array,
    batch: number,
    m: number,
    k: number,
    n: number,
    opts?: GemmOptions,
  ): Promise<Float32Array>;
  /**
   * `matmul` with float64 operands, sums and result (the order of the sums is the
   * backend's, so the error bound is γ_k·Σ|a||b| for any order).
   */
  matmulF64(
    a: Float64Array,
    b: Float64Array,
    m: number,
    k: number,
    n: number,
    opts?: GemmOptions,
  ): Promise<Float64Array>;
  /** Release native resources. */
  dispose(): Promise<void>;
}

/**
 * Checks the arguments of `Gemm.matmul` and throws a message that names the bad one.
 * Both backends call it, so a backend built directly validates the same way.
 */
export function checkMatmulArgs(
  a: Float32Array,
  b: Float32Array,
  m: number,
  k: number,
  n: number,
  opts: GemmOptions = {},
): void {
  checkArgs("matmul", a, b, undefined, m, k, n, opts);
}

/** Checks the arguments of `Gemm.matmulF64`, as `checkMatmulArgs` does for `matmul`. */
export function checkMatmulF64Args(
  a: Float64Array,
  b: Float64Array,
  m: number,
  k: number,
  n: number,
  opts: GemmOptions = {},
): void {
  checkArgs("matmulF64", a, b, undefined, m, k, n, opts);
}

/** Checks the arguments of `Gemm.matmulBatched`, as `checkMatmulArgs` does for `matmul`. */
export function checkMatmulBatchedArgs(
  a: Float32Array,
  b: Float32Array,
  batch: number,
  m: number,
  k: number,
  n: number,
  opts: GemmOptions = {},
): void {
  checkArgs("matmulBatched", a, b, batch, m, k, n, opts);
}

function checkArgs(
  fn: "matmul" | "matmulBatched" | "matmulF64",
  a: Float32Array | Float64Array,
  b: Float32Array | Float64Array,
  batch: number | undefined,
  m: number,
  k: number,
  n: number,
  opts: GemmOptions,
): void {
  const dims: [string, number][] = [
    ["m", m],
    ["k", k],
    ["n", n],
  ];
  if (batch !== undefined) dims.unshift(["batch", batch]);
  for (const [name, v] of dims) {
    if (!(Number.isSafeInteger(v) && v > 0)) {
      throw new Error(`${fn}: ${name} must be a positive integer, got ${v}`);
    }
  }
  const Type = fn === "matmulF64" ? Float64Array : Float32Array;
  if (!(a instanceof Type) || !(b instanceof Type)) {
    throw new Error(
      `${fn}: a and b must be ${Type.name}s (convert with ${Type.name}.from(x) first)`,
    );
  }
  const shapeA = opts.transA ? `${k}×${m} (transA)` : `${m}×${k}`;
  const shapeB = opts.transB ? `${n}×${k} (transB)` : `${k}×${n}`;
  const what = (shape: string) =>
    batch === undefined ? `a ${shape} matrix needs` : `${batch} blocks of ${shape} need`;
  const count = batch ?? 1;
  if (a.length !== count * m * k) {
    throw new Error(`${fn}: a has ${a.length} elements but ${what(shapeA)} ${count * m * k}`);
  }
  if (b.length !== count * k * n) {
    throw new Error(`${fn}: b has ${b.length} elements but ${what(shapeB)} ${count * k * n}`);
  }
}
