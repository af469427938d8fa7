/**
 * The GEMM interface: every large matrix product in cycleqd goes through one of these,
 * so the backend (onnxruntime's MLAS, or the pure-TypeScript fallback) is one choice.
 *
 * Matrices are row-major Float32Arrays. `matmul` computes C = op(A) · op(B) where
 * op(X) = Xᵀ when the matching trans flag is set; op(A) is m×k, op(B) is k×n, C is m×n.
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
  for (const [name, v] of [
    ["m", m],
    ["k", k],
    ["n", n],
  ] as const) {
    if (!(Number.isSafeInteger(v) && v > 0)) {
      throw new Error(`matmul: ${name} must be a positive integer, got ${v}`);
    }
  }
  if (!(a instanceof Float32Array) || !(b instanceof Float32Array)) {
    throw new Error(
      "matmul: a and b must be Float32Arrays (convert with Float32Array.from(x) first)",
    );
  }
  const shapeA = opts.transA ? `${k}×${m} (transA)` : `${m}×${k}`;
  const shapeB = opts.transB ? `${n}×${k} (transB)` : `${k}×${n}`;
  if (a.length !== m * k) {
    throw new Error(`matmul: a has ${a.length} elements but a ${shapeA} matrix needs ${m * k}`);
  }
  if (b.length !== k * n) {
    throw new Error(`matmul: b has ${b.length} elements but a ${shapeB} matrix needs ${k * n}`);
  }
}
