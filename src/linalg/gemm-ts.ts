/**
 * Pure-TypeScript GEMM: the fallback when onnxruntime cannot load. Single-threaded,
 * GotoBLAS-shaped: op(B) is packed into KC×NR column panels and op(A) into MR×KC row
 * panels (which also absorbs the transposes), then a 4×8 register-blocked kernel
 * accumulates each C tile in locals. Packing makes every inner-loop read sequential;
 * packing to float64 saves a conversion per load in the kernel (measured ~15% faster).
 */
import {
  checkMatmulArgs,
  checkMatmulBatchedArgs,
  checkMatmulF64Args,
  type Gemm,
  type GemmOptions,
} from "./gemm.ts";

const MR = 4;
const NR = 8;
/** Depth of one packed block: a KC×NR panel of B (16 KiB) stays in L1. */
const KC = 256;
/** Rows of A packed at a time: MC×KC doubles (128 KiB) stay in L2. */
const MC = 64;
/** Columns of B packed at a time: KC×NC doubles (1 MiB) stay in L2/L3. */
const NC = 512;

export function createTsGemm(): Gemm {
  return {
    name: "typescript",
    async matmul(a, b, m, k, n, opts: GemmOptions = {}) {
      checkMatmulArgs(a, b, m, k, n, opts);
      return matmulTs(a, b, m, k, n, opts.transA === true, opts.transB === true);
    },
    async matmulBatched(a, b, batch, m, k, n, opts: GemmOptions = {}) {
      checkMatmulBatchedArgs(a, b, batch, m, k, n, opts);
      const c = new Float32Array(batch * m * n);
      for (let i = 0; i < batch; i++) {
        const ai = a.subarray(i * m * k, (i + 1) * m * k);
        const bi = b.subarray(i * k * n, (i + 1) * k * n);
        const ci = matmulTs(ai, bi, m, k, n, opts.transA === true, opts.transB === true);
        c.set(ci, i * m * n);
      }
      return c;
    },
    async matmulF64(a, b, m, k, n, opts: GemmOptions = {}) {
      checkMatmulF64Args(a, b, m, k, n, opts);
      return matmulF64Ts(a, b, m, k, n, opts.transA === true, opts.transB === true);
    },
    async dispose() {},
  };
}

/** C = op(A)·op(B) in float64, one dot product per element (a fallback: not tuned). */
function matmulF64Ts(
  a: Float64Array,
  b: Float64Array,
  m: number,
  k: number,
  n: number,
  transA: boolean,
  transB: boolean,
): Float64Array {
  const c = new Float64Array(m * n);
  const [ai, ap] = transA ? [1, m] : [k, 1]; // op(A)(i, p) = a[i·ai + p·ap]
  const [bp, bj] = transB ? [1, k] : [n, 1]; // op(B)(p, j) = b[p·bp + j·bj]
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let sum = 0;
      for (let p = 0; p < k; p++) sum += a[i * ai + p * ap] * b[p * bp + j * bj];
      c[i * n + j] = sum;
    }
  }
  return c;
}

/** Synchronous C = op(A)·op(B), row-major. Inputs are assumed valid. */
export function matmulTs(
  a: Float32Array,
  b: Float32Array,
  m: number,
  k: number,
  n: number,
  transA: boolean,
  transB: boolean,
): Float32Array {
  const c = new Float32Array(m * n);
  const packB = new Float64Array(KC * roundUp(Math.min(n, NC), NR));
  const packA = new Float64Array(roundUp(Math.min(m, MC), MR) * KC);
  for (let j0 = 0; j0 < n; j0 += NC) {
    const nc = Math.min(NC, n - j0);
    for (let p0 = 0; p0 < k; p0 += KC) {
      const kc = Math.min(KC, k - p0);
      packPanelsB(b, k, n, transB, p0, kc, j0, nc, packB);
      for (let i0 = 0; i0 < m; i0 += MC) {
        const mc = Math.min(MC, m - i0);
        packPanelsA(a, m, k, transA, i0, mc, p0, kc, packA);
        macroKernel(packA, packB, c, n, i0, mc, j0, nc, kc);
      }
    }
  }
  return c;
}

function roundUp(x: number, to: number): number {
  return Math.ceil(x / to) * to;
}

/** op(B)[p0:p0+kc, j0:j0+nc] as NR-wide panels, each kc×NR row-major, zero-padded. */
function packPanelsB(
  b: Float32Array,
  k: number,
  n: number,
  transB: boolean,
  p0: number,
  kc: number,
  j0: number,
  nc: number,
  out: Float64Array,
): void {
  let o = 0;
  for (let jp = 0; jp < nc; jp += NR) {
    const w = Math.min(NR, nc - jp);
    for (let p = 0; p < kc; p++) {
      for (let c = 0; c < NR; c++) {
        const j = j0 + jp + c;
        // op(B)(p, j) is b[p*n + j], or b[j*k + p] when B is stored transposed.
        out[o++] = c < w ? (transB ? b[j * k + p0 + p] : b[(p0 + p) * n + j]) : 0;
      }
    }
  }
}

/** op(A)[i0:i0+mc, p0:p0+kc] as MR-tall panels, each kc×MR (column of the tile per p). */
function packPanelsA(
  a: Float32Array,
  m: number,
  k: number,
  transA: boolean,
  i0: number,
  mc: number,
  p0: number,
  kc: number,
  out: Float64Array,
): void {
  let o = 0;
  for (let ip = 0; ip < mc; ip += MR) {
    const h = Math.min(MR, mc - ip);
    for (let p = 0; p < kc; p++) {
      for (let r = 0; r < MR; r++) {
        const i = i0 + ip + r;
        out[o++] = r < h ? (transA ? a[(p0 + p) * m + i] : a[i * k + p0 + p]) : 0;
      }
    }
  }
}

function macroKernel(
  pa: Float64Array,
  pb: Float64Array,
  c: Float32Array,
  n: number,
  i0: number,
  mc: number,
  j0: number,
  nc: number,
  kc: number,
): void {
  for (let jp = 0; jp < nc; jp += NR) {
    const w = Math.min(NR, nc - jp);
    const bOff = jp * kc;
    for (let ip = 0; ip < mc; ip += MR) {
      const h = Math.min(MR, mc - ip);
      microKernel(pa, ip * kc, pb, bOff, kc, c, (i0 + ip) * n + j0 + jp, n, h, w);
    }
  }
}

/** C[tile] += Apanel·Bpanel for one MR×NR tile, accumulated in 32 locals. */
// biome-ignore format: the 4×8 grid of statements mirrors the tile it computes
function microKernel(
  pa: Float64Array, aOff: number, pb: Float64Array, bOff: number, kc: number,
  c: Float32Array, cOff: number, ldc: number, h: number, w: number,
): void {
  let c00 = 0, c01 = 0, c02 = 0, c03 = 0, c04 = 0, c05 = 0, c06 = 0, c07 = 0;
  let c10 = 0, c11 = 0, c12 = 0, c13 = 0, c14 = 0, c15 = 0, c16 = 0, c17 = 0;
  let c20 = 0, c21 = 0, c22 = 0, c23 = 0, c24 = 0, c25 = 0, c26 = 0, c27 = 0;
  let c30 = 0, c31 = 0, c32 = 0, c33 = 0, c34 = 0, c35 = 0, c36 = 0, c37 = 0;
  let ai = aOff;
  let bi = bOff;
  for (let p = 0; p < kc; p++, ai += MR, bi += NR) {
    const a0 = pa[ai], a1 = pa[ai + 1], a2 = pa[ai + 2], a3 = pa[ai + 3];
    const b0 = pb[bi], b1 = pb[bi + 1], b2 = pb[bi + 2], b3 = pb[bi + 3];
    const b4 = pb[bi + 4], b5 = pb[bi + 5], b6 = pb[bi + 6], b7 = pb[bi + 7];
    c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
    c04 += a0 * b4; c05 += a0 * b5; c06 += a0 * b6; c07 += a0 * b7;
    c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
    c14 += a1 * b4; c15 += a1 * b5; c16 += a1 * b6; c17 += a1 * b7;
    c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
    c24 += a2 * b4; c25 += a2 * b5; c26 += a2 * b6; c27 += a2 * b7;
    c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
    c34 += a3 * b4; c35 += a3 * b5; c36 += a3 * b6; c37 += a3 * b7;
  }
  const tile = [
    c00, c01, c02, c03, c04, c05, c06, c07,
    c10, c11, c12, c13, c14, c15, c16, c17,
    c20, c21, c22, c23, c24, c25, c26, c27,
    c30, c31, c32, c33, c34, c35, c36, c37,
  ];
  for (let r = 0; r < h; r++) {
    const row = cOff + r * ldc;
    for (let q = 0; q < w; q++) c[row + q] += tile[r * NR + q];
  }
}
