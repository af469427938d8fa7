/** Plain-loop GEMMs with float64 accumulation, so the llm tests need no native backend. */
import type { Gemm, GemmOptions } from "../src/linalg/gemm.ts";

function product(
  a: Float32Array | Float64Array,
  b: Float32Array | Float64Array,
  m: number,
  k: number,
  n: number,
  opts: GemmOptions,
  c: Float32Array | Float64Array,
): void {
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) {
        const av = opts.transA ? a[p * m + i] : a[i * k + p];
        const bv = opts.transB ? b[j * k + p] : b[p * n + j];
        s += av * bv;
      }
      c[i * n + j] = s;
    }
  }
}

/** A GEMM with a batched product, to exercise the one-call attention path. */
export function naiveGemm(): Gemm {
  return {
    name: "naive",
    async matmul(a, b, m, k, n, opts = {}) {
      const c = new Float32Array(m * n);
      product(a, b, m, k, n, opts, c);
      return c;
    },
    async matmulBatched(a, b, batch, m, k, n, opts = {}) {
      const c = new Float32Array(batch * m * n);
      for (let i = 0; i < batch; i++) {
        product(
          a.subarray(i * m * k, (i + 1) * m * k),
          b.subarray(i * k * n, (i + 1) * k * n),
          m,
          k,
          n,
          opts,
          c.subarray(i * m * n, (i + 1) * m * n),
        );
      }
      return c;
    },
    async matmulF64(a, b, m, k, n, opts = {}) {
      const c = new Float64Array(m * n);
      product(a, b, m, k, n, opts, c);
      return c;
    },
    async dispose() {},
  };
}

/**
 * The same GEMM with its batched product done block by block through `matmul`, so the
 * batched layout is checked against one product per block.
 */
export function naiveGemmUnbatched(): Gemm {
  const { name, matmul, matmulF64, dispose } = naiveGemm();
  return {
    name,
    matmul,
    matmulF64,
    dispose,
    async matmulBatched(a, b, batch, m, k, n, opts = {}) {
      const c = new Float32Array(batch * m * n);
      for (let i = 0; i < batch; i++) {
        const ai = a.subarray(i * m * k, (i + 1) * m * k);
        const bi = b.subarray(i * k * n, (i + 1) * k * n);
        c.set(await matmul(ai, bi, m, k, n, opts), i * m * n);
      }
      return c;
    },
  };
}
