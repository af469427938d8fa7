import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { Gemm } from "../src/linalg/gemm.ts";
import {
  createGemm,
  createOrtGemm,
  createTsGemm,
  type Svd,
  selectGemm,
  svdJacobi,
  svdRandomized,
  truncatedSvd,
} from "../src/linalg/index.ts";
import { Rng } from "../src/util/rng.ts";

// ---------------------------------------------------------------- helpers

function gaussian(rng: Rng, len: number): Float32Array {
  return Float32Array.from({ length: len }, () => rng.normal());
}

/** C = op(A)·op(B) in float64, plus Σ|a·b| per entry for a rounding bound. */
function reference(
  a: Float32Array,
  b: Float32Array,
  m: number,
  k: number,
  n: number,
  transA: boolean,
  transB: boolean,
) {
  const c = new Float64Array(m * n);
  const mag = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      let t = 0;
      for (let p = 0; p < k; p++) {
        const x = (transA ? a[p * m + i] : a[i * k + p]) * (transB ? b[j * k + p] : b[p * n + j]);
        s += x;
        t += Math.abs(x);
      }
      c[i * n + j] = s;
      mag[i * n + j] = t;
    }
  }
  return { c, mag };
}

/** Row-major product of m×k and k×n float64 matrices. */
function mul(a: ArrayLike<number>, b: ArrayLike<number>, m: number, k: number, n: number) {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let p = 0; p < k; p++) {
      const x = a[i * k + p];
      for (let j = 0; j < n; j++) c[i * n + j] += x * b[p * n + j];
    }
  }
  return c;
}

function frobenius(x: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  return Math.sqrt(s);
}

/** ‖A − U·diag(S)·Vᵀ‖_F / ‖A‖_F. */
function reconstructionError(a: ArrayLike<number>, svd: Svd): number {
  const { u, s, v, m, n, r } = svd;
  let num = 0;
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let x = 0;
      for (let p = 0; p < r; p++) x += u[i * r + p] * s[p] * v[j * r + p];
      num += (x - a[i * n + j]) ** 2;
    }
  }
  return Math.sqrt(num) / Math.max(frobenius(a), Number.MIN_VALUE);
}

/** max |XᵀX − I| for a row-major rows×cols X. */
function orthogonalityError(x: ArrayLike<number>, rows: number, cols: number): number {
  let worst = 0;
  for (let p = 0; p < cols; p++) {
    for (let q = p; q < cols; q++) {
      let d = 0;
      for (let i = 0; i < rows; i++) d += x[i * cols + p] * x[i * cols + q];
      worst = Math.max(worst, Math.abs(d - (p === q ? 1 : 0)));
    }
  }
  return worst;
}

function assertSortedNonNegative(s: ArrayLike<number>): void {
  for (let i = 0; i < s.length; i++) {
    assert.ok(s[i] >= 0, `s[${i}] = ${s[i]} is negative`);
    if (i > 0) assert.ok(s[i] <= s[i - 1], `s not descending at ${i}: ${s[i - 1]} < ${s[i]}`);
  }
}

/** Random m×r matrix with orthonormal columns (QR of a Gaussian via Gram–Schmidt twice). */
function randomOrthonormal(rng: Rng, m: number, r: number): Float64Array {
  const cols = Array.from({ length: r }, () =>
    Float64Array.from({ length: m }, () => rng.normal()),
  );
  for (let j = 0; j < r; j++) {
    for (let pass = 0; pass < 2; pass++) {
      for (let c = 0; c < j; c++) {
        let d = 0;
        for (let i = 0; i < m; i++) d += cols[c][i] * cols[j][i];
        for (let i = 0; i < m; i++) cols[j][i] -= d * cols[c][i];
      }
    }
    const norm = frobenius(cols[j]);
    for (let i = 0; i < m; i++) cols[j][i] /= norm;
  }
  const out = new Float64Array(m * r);
  for (let j = 0; j < r; j++) for (let i = 0; i < m; i++) out[i * r + j] = cols[j][i];
  return out;
}

/** A = U·diag(sigma)·Vᵀ with random orthonormal U (m×r) and V (n×r). */
function withSpectrum(rng: Rng, m: number, n: number, sigma: number[]): Float64Array {
  const r = sigma.length;
  const u = randomOrthonormal(rng, m, r);
  const v = randomOrthonormal(rng, n, r);
  for (let i = 0; i < m; i++) for (let p = 0; p < r; p++) u[i * r + p] *= sigma[p];
  const vt = new Float64Array(r * n);
  for (let j = 0; j < n; j++) for (let p = 0; p < r; p++) vt[p * n + j] = v[j * r + p];
  return mul(u, vt, m, r, n);
}

// ---------------------------------------------------------------- GEMM

const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [3, 5, 7],
  [65, 33, 17],
  [17, 65, 33],
  [130, 7, 9],
  [4, 300, 5], // k beyond one packed depth block
  [5, 3, 600], // n beyond one packed column block
  [1, 64, 1],
];
/** [batch, m, k, n] for matmulBatched: batch 1 and several, odd sizes, the degenerate 1s. */
const BATCHED_SHAPES = [
  [1, 1, 1, 1],
  [1, 17, 65, 33],
  [3, 1, 7, 1],
  [5, 3, 5, 7],
  [4, 9, 1, 11],
  [7, 13, 6, 2],
  [2, 4, 300, 5],
];
const TRANS = [
  [false, false],
  [true, false],
  [false, true],
  [true, true],
] as const;

const backends: Record<string, Gemm> = {};
before(async () => {
  backends.typescript = createTsGemm();
  backends.onnxruntime = await createOrtGemm({ threads: 2 });
});
after(async () => {
  for (const g of Object.values(backends)) await g.dispose();
});

for (const backend of ["typescript", "onnxruntime"]) {
  describe(`GEMM (${backend})`, () => {
    test("matches a float64 reference for every shape and transpose", async () => {
      const gemm = backends[backend];
      assert.equal(gemm.name, backend);
      const rng = new Rng(11);
      for (const [m, k, n] of SHAPES) {
        for (const [transA, transB] of TRANS) {
          const a = gaussian(rng, m * k);
          const b = gaussian(rng, k * n);
          const c = await gemm.matmul(a, b, m, k, n, { transA, transB });
          assert.ok(c instanceof Float32Array);
          assert.equal(c.length, m * n);
          const ref = reference(a, b, m, k, n, transA, transB);
          for (let i = 0; i < m * n; i++) {
            const bound = 1e-6 * ref.mag[i] + 1e-30;
            const where = `${m}×${k}×${n} transA=${transA} transB=${transB} at ${i}`;
            assert.ok(Math.abs(c[i] - ref.c[i]) <= bound, `${where}: ${c[i]} vs ${ref.c[i]}`);
          }
        }
      }
    });

    test("accepts subarray views and leaves inputs untouched", async () => {
      const gemm = backends[backend];
      const rng = new Rng(12);
      const buf = gaussian(rng, 100);
      const a = buf.subarray(3, 3 + 4 * 6);
      const b = buf.subarray(40, 40 + 6 * 5);
      const before = Float32Array.from(buf);
      const c = await gemm.matmul(a, b, 4, 6, 5);
      const ref = reference(a, b, 4, 6, 5, false, false);
      for (let i = 0; i < c.length; i++) assert.ok(Math.abs(c[i] - ref.c[i]) < 1e-5);
      assert.deepEqual(buf, before);
    });

    test("runs concurrent calls correctly", async () => {
      const gemm = backends[backend];
      const rng = new Rng(13);
      const jobs = Array.from({ length: 8 }, (_, i) => {
        const [m, k, n] = [8 + i, 9, 10 - i];
        return { m, k, n, a: gaussian(rng, m * k), b: gaussian(rng, k * n) };
      });
      const out = await Promise.all(
        jobs.map((j) => gemm.matmul(j.a, j.b, j.m, j.k, j.n, { transB: false })),
      );
      jobs.forEach((j, idx) => {
        const ref = reference(j.a, j.b, j.m, j.k, j.n, false, false);
        for (let i = 0; i < ref.c.length; i++) assert.ok(Math.abs(out[idx][i] - ref.c[i]) < 1e-5);
      });
    });

    test("matmulBatched matches a float64 reference per block, batch 1 and several", async () => {
      const gemm = backends[backend];
      const rng = new Rng(14);
      for (const [batch, m, k, n] of BATCHED_SHAPES) {
        for (const [transA, transB] of TRANS) {
          const a = gaussian(rng, batch * m * k);
          const b = gaussian(rng, batch * k * n);
          const c = await gemm.matmulBatched(a, b, batch, m, k, n, { transA, transB });
          assert.ok(c instanceof Float32Array);
          assert.equal(c.length, batch * m * n);
          for (let i = 0; i < batch; i++) {
            const ai = a.subarray(i * m * k, (i + 1) * m * k);
            const bi = b.subarray(i * k * n, (i + 1) * k * n);
            const ref = reference(ai, bi, m, k, n, transA, transB);
            for (let j = 0; j < m * n; j++) {
              const got = c[i * m * n + j];
              const bound = 1e-6 * ref.mag[j] + 1e-30;
              const where = `${batch}×(${m}×${k}×${n}) transA=${transA} transB=${transB} block ${i} at ${j}`;
              assert.ok(Math.abs(got - ref.c[j]) <= bound, `${where}: ${got} vs ${ref.c[j]}`);
            }
          }
        }
      }
    });

    test("matmulBatched accepts views, leaves inputs untouched, runs beside matmul", async () => {
      const gemm = backends[backend];
      const rng = new Rng(15);
      const [batch, m, k, n] = [3, 5, 4, 6];
      const buf = gaussian(rng, 200);
      const a = buf.subarray(7, 7 + batch * m * k);
      const b = buf.subarray(100, 100 + batch * k * n);
      const before = Float32Array.from(buf);
      const [c, single] = await Promise.all([
        gemm.matmulBatched(a, b, batch, m, k, n, { transB: false }),
        gemm.matmul(a.subarray(0, m * k), b.subarray(0, k * n), m, k, n),
      ]);
      for (let i = 0; i < batch; i++) {
        const ref = reference(
          a.subarray(i * m * k, (i + 1) * m * k),
          b.subarray(i * k * n, (i + 1) * k * n),
          m,
          k,
          n,
          false,
          false,
        );
        for (let j = 0; j < m * n; j++) assert.ok(Math.abs(c[i * m * n + j] - ref.c[j]) < 1e-5);
      }
      for (let j = 0; j < m * n; j++) assert.ok(Math.abs(single[j] - c[j]) < 1e-5);
      assert.deepEqual(buf, before);
    });

    test("matmulBatched rejects bad arguments with a clear message", async () => {
      const gemm = backends[backend];
      const a = new Float32Array(24);
      const b = new Float32Array(24);
      await assert.rejects(
        gemm.matmulBatched(a, b, 0, 3, 4, 2),
        /^Error: matmulBatched: batch must be a positive integer, got 0/,
      );
      await assert.rejects(gemm.matmulBatched(a, b, 1.5, 3, 4, 2), /batch must be a positive/);
      await assert.rejects(gemm.matmulBatched(a, b, Number.NaN, 3, 4, 2), /batch must be/);
      await assert.rejects(gemm.matmulBatched(a, b, 2, -3, 4, 3), /m must be a positive integer/);
      await assert.rejects(gemm.matmulBatched(a, b, 2, 3, 0, 3), /k must be a positive integer/);
      await assert.rejects(gemm.matmulBatched(a, b, 2, 3, 4, 2.5), /n must be a positive integer/);
      await assert.rejects(
        gemm.matmulBatched(a, b, 3, 3, 4, 2),
        /matmulBatched: a has 24 elements but 3 blocks of 3×4 need 36/,
      );
      await assert.rejects(
        gemm.matmulBatched(a, b, 2, 3, 4, 4, { transA: true, transB: true }),
        /matmulBatched: b has 24 elements but 2 blocks of 4×4 \(transB\) need 32/,
      );
      await assert.rejects(
        gemm.matmulBatched(a, b, 2, 3, 5, 2, { transA: true }),
        /matmulBatched: a has 24 elements but 2 blocks of 5×3 \(transA\) need 30/,
      );
      await assert.rejects(
        gemm.matmulBatched(a, new Float64Array(24) as unknown as Float32Array, 2, 3, 4, 3),
        /matmulBatched: a and b must be Float32Arrays/,
      );
    });

    test("rejects bad dimensions with a clear message", async () => {
      const gemm = backends[backend];
      const a = new Float32Array(6);
      const b = new Float32Array(6);
      await assert.rejects(gemm.matmul(a, b, 0, 3, 2), /m must be a positive integer, got 0/);
      await assert.rejects(gemm.matmul(a, b, 2, 1.5, 2), /k must be a positive integer/);
      await assert.rejects(gemm.matmul(a, b, 2, 3, Number.NaN), /n must be a positive integer/);
      await assert.rejects(gemm.matmul(a, b, 3, 3, 2), /a has 6 elements but a 3×3 matrix needs 9/);
      await assert.rejects(
        gemm.matmul(a, b, 2, 3, 3, { transB: true }),
        /b has 6 elements but a 3×3 \(transB\) matrix needs 9/,
      );
      await assert.rejects(
        gemm.matmul(new Float64Array(6) as unknown as Float32Array, b, 2, 3, 2),
        /must be Float32Arrays/,
      );
    });
  });
}

describe("createGemm", () => {
  test("auto loads onnxruntime here without warning", async () => {
    const warnings: string[] = [];
    const gemm = await createGemm({ warn: (m) => warnings.push(m) });
    assert.equal(gemm.name, "onnxruntime");
    assert.deepEqual(warnings, []);
    await gemm.dispose();
  });

  test("typescript is chosen on request", async () => {
    const gemm = await createGemm({ backend: "typescript" });
    assert.equal(gemm.name, "typescript");
  });

  test("auto falls back to TypeScript with exactly one one-line warning", async () => {
    const warnings: string[] = [];
    const broken = () => Promise.reject(new Error("binding not found\nstack"));
    const gemm = await selectGemm("auto", broken, (m) => warnings.push(m));
    assert.equal(gemm.name, "typescript");
    assert.equal(warnings.length, 1);
    assert.ok(!warnings[0].includes("\n"));
    assert.match(warnings[0], /binding not found/);
  });

  test("explicit onnxruntime that cannot load fails with a fix", async () => {
    const broken = () => Promise.reject(new Error("binding not found"));
    await assert.rejects(
      selectGemm("onnxruntime", broken, () => assert.fail("no warning expected")),
      /could not load \(binding not found\).*npm install onnxruntime-node.*"typescript"/,
    );
  });

  test("rejects unknown backends and bad thread counts", async () => {
    await assert.rejects(createGemm({ backend: "cuda" as "auto" }), /backend must be one of/);
    await assert.rejects(createGemm({ threads: 0 }), /threads must be a positive integer/);
  });
});

// ---------------------------------------------------------------- exact SVD

describe("svdJacobi", () => {
  function checkExact(a: Float32Array | Float64Array, m: number, n: number, rank = Math.min(m, n)) {
    const svd = svdJacobi(a, m, n);
    const r = Math.min(m, n);
    assert.equal(svd.r, r);
    assert.equal(svd.u.length, m * r);
    assert.equal(svd.v.length, n * r);
    assert.equal(svd.rank, rank);
    assertSortedNonNegative(svd.s);
    assert.ok(reconstructionError(a, svd) < 1e-6, `reconstruction ${m}×${n}`);
    assert.ok(orthogonalityError(svd.u, m, r) < 1e-10, `UᵀU ${m}×${n}`);
    assert.ok(orthogonalityError(svd.v, n, r) < 1e-10, `VᵀV ${m}×${n}`);
    return svd;
  }

  test("square, tall and wide random matrices", () => {
    const rng = new Rng(21);
    for (const [m, n] of [
      [1, 1],
      [5, 3],
      [3, 5],
      [40, 40],
      [60, 25],
      [25, 60],
      [1, 9],
      [9, 1],
    ]) {
      checkExact(gaussian(rng, m * n), m, n);
    }
  });

  test("recovers a known spectrum", () => {
    const sigma = [5, 3, 2, 0.5, 1e-3];
    const a = withSpectrum(new Rng(22), 12, 8, sigma);
    const svd = checkExact(a, 12, 8, 5);
    for (const [i, x] of sigma.entries()) assert.ok(Math.abs(svd.s[i] - x) < 5e-12, `s[${i}]`);
    for (let i = 5; i < 8; i++) assert.ok(svd.s[i] < 1e-13);
  });

  test("rank-deficient matrices keep orthonormal factors", () => {
    const rng = new Rng(23);
    const x = Float64Array.from({ length: 30 * 5 }, () => rng.normal());
    const y = Float64Array.from({ length: 5 * 20 }, () => rng.normal());
    const a = mul(x, y, 30, 5, 20);
    checkExact(a, 30, 20, 5);
    const at = new Float64Array(20 * 30);
    for (let i = 0; i < 30; i++) for (let j = 0; j < 20; j++) at[j * 30 + i] = a[i * 20 + j];
    checkExact(at, 20, 30, 5);
    checkExact(new Float64Array(12), 3, 4, 0);
    // Repeated columns: rank 1.
    checkExact(new Float64Array(6 * 4).fill(2), 6, 4, 1);
  });

  test("rejects bad input", () => {
    assert.throws(() => svdJacobi(new Float64Array(5), 2, 3), /has 5 elements but 2×3 needs 6/);
    assert.throws(() => svdJacobi(new Float64Array(0), 0, 3), /m must be a positive integer/);
    const bad = new Float64Array(6);
    bad[4] = Number.NaN;
    assert.throws(() => svdJacobi(bad, 2, 3), /NaN at row 1, column 1/);
    assert.throws(() => svdJacobi([1, 2] as unknown as Float64Array, 1, 2), /Float32Array or/);
  });
});

// ---------------------------------------------------------------- randomized SVD

describe("svdRandomized", () => {
  const [m, n, k] = [300, 200, 10];
  const sigma = Array.from({ length: 60 }, (_, i) => 10 * 0.85 ** i);
  const a = withSpectrum(new Rng(31), m, n, sigma);
  const optimal = Math.sqrt(sigma.slice(k).reduce((acc, x) => acc + x * x, 0)) / frobenius(a);

  for (const backend of ["onnxruntime", "typescript"]) {
    test(`recovers the top of a decaying spectrum (${backend})`, async () => {
      const svd = await svdRandomized(backends[backend], a, m, n, k, { rng: new Rng(1) });
      assert.equal(svd.r, k);
      assert.equal(svd.u.length, m * k);
      assert.equal(svd.v.length, n * k);
      assertSortedNonNegative(svd.s);
      for (let i = 0; i < k; i++) {
        const rel = Math.abs(svd.s[i] - sigma[i]) / sigma[i];
        assert.ok(rel < 1e-3, `s[${i}] = ${svd.s[i]} vs ${sigma[i]} (rel ${rel})`);
      }
      assert.ok(orthogonalityError(svd.u, m, k) < 1e-5);
      assert.ok(orthogonalityError(svd.v, n, k) < 1e-5);
      const err = reconstructionError(a, svd);
      assert.ok(err < optimal * 1.01, `rank-${k} error ${err} vs optimal ${optimal}`);
      assert.ok(svd.timings.totalMs >= svd.timings.gemmMs);
    });
  }

  test("is reproducible from the seed", async () => {
    const gemm = backends.onnxruntime;
    const one = await svdRandomized(gemm, a, m, n, k, { rng: new Rng(5), powerIters: 1 });
    const two = await svdRandomized(gemm, a, m, n, k, { rng: new Rng(5), powerIters: 1 });
    assert.deepEqual(one.s, two.s);
    assert.deepEqual(one.u, two.u);
  });

  test("works at full rank and on a wide float32 matrix", async () => {
    const rng = new Rng(32);
    const wide = gaussian(rng, 20 * 50);
    const svd = await svdRandomized(backends.onnxruntime, wide, 20, 50, 20, { rng });
    const exact = svdJacobi(wide, 20, 50);
    for (let i = 0; i < 20; i++) assert.ok(Math.abs(svd.s[i] - exact.s[i]) < 1e-4 * exact.s[0]);
    assert.ok(reconstructionError(wide, svd) < 1e-5);
  });

  test("rejects bad options", async () => {
    const gemm = backends.typescript;
    const rng = new Rng(1);
    const x = new Float64Array(12);
    await assert.rejects(svdRandomized(gemm, x, 3, 4, 4, { rng }), /rank must be .* 1\.\.min/);
    await assert.rejects(svdRandomized(gemm, x, 3, 4, 0, { rng }), /rank must be/);
    await assert.rejects(
      svdRandomized(gemm, x, 3, 4, 2, {} as { rng: Rng }),
      /pass a seeded generator/,
    );
    await assert.rejects(
      svdRandomized(gemm, x, 3, 4, 2, { rng, oversample: -1 }),
      /oversample must be/,
    );
    const bad = gaussian(rng, 40 * 30);
    bad[7 * 30 + 4] = Number.POSITIVE_INFINITY;
    await assert.rejects(
      svdRandomized(backends.onnxruntime, bad, 40, 30, 3, { rng }),
      /holds Infinity at row 7, column 4/,
    );
    bad[7 * 30 + 4] = Number.NaN;
    await assert.rejects(
      truncatedSvd(gemm, bad, 40, 30, 3, { rng, exactMaxDim: 0 }),
      /holds NaN at row 7, column 4/,
    );
  });
});

describe("truncatedSvd", () => {
  const sigma = Array.from({ length: 40 }, (_, i) => 0.8 ** i);
  const a = withSpectrum(new Rng(41), 80, 60, sigma);

  test("exact on small matrices, randomized when asked to be", async () => {
    const gemm = backends.onnxruntime;
    const exact = await truncatedSvd(gemm, a, 80, 60, 5, { rng: new Rng(2) });
    const sketch = await truncatedSvd(gemm, a, 80, 60, 5, { rng: new Rng(2), exactMaxDim: 0 });
    for (const svd of [exact, sketch]) {
      assert.equal(svd.r, 5);
      assert.equal(svd.u.length, 80 * 5);
      assert.equal(svd.v.length, 60 * 5);
      assert.ok(orthogonalityError(svd.u, 80, 5) < 1e-5);
    }
    for (let i = 0; i < 5; i++) {
      assert.ok(Math.abs(exact.s[i] - sigma[i]) < 1e-12);
      assert.ok(Math.abs(sketch.s[i] - sigma[i]) / sigma[i] < 1e-3);
    }
    assert.ok(!("timings" in sketch));
  });

  test("validates rank", async () => {
    await assert.rejects(
      truncatedSvd(backends.typescript, a, 80, 60, 61, { rng: new Rng(1) }),
      /rank must be an integer in 1\.\.min\(m,n\)=60, got 61/,
    );
  });
});
