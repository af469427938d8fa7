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
