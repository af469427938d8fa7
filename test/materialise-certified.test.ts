import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import type { Gemm } from "../src/linalg/gemm.ts";
import { createGemm, createTsGemm } from "../src/linalg/index.ts";
import { certifiedMerge } from "../src/materialise/certified.ts";
import { addLowRank, type LowRankTerm } from "../src/materialise/lowrank.ts";
import { encodeFromF32, type FloatDType } from "../src/tensors/dtype.ts";
import { Rng } from "../src/util/rng.ts";

/** What the writer stores for the loops' sum: θ₀ + (start + Σ terms + Σ noise). */
async function loopsBits(
  theta: Float32Array,
  start: Float64Array,
  terms: LowRankTerm[],
  rows: number,
  cols: number,
  noise: { scale: number; field: Float64Array }[],
  dtype: FloatDType,
): Promise<Buffer> {
  const tau = Float64Array.from(start);
  await addLowRank(tau, terms, rows, cols, { kernel: "dot" });
  for (const { scale, field } of noise)
    for (let i = 0; i < tau.length; i++) tau[i] += scale * field[i];
  const out = new Float32Array(tau.length);
  for (let i = 0; i < out.length; i++) out[i] = theta[i] + tau[i];
  return Buffer.from(encodeFromF32(out, dtype));
}

const gemms: Gemm[] = [];
after(async () => {
  for (const g of gemms) await g.dispose();
});

describe("certified materialisation", () => {
  test("the float64 GEMM route stores the loops' bits (F16, BF16, F32; residual, noise, zero weights)", async () => {
    const rng = new Rng(11);
    const backends = [createTsGemm(), await createGemm({ threads: 1, warn: () => {} })];
    gemms.push(...backends);
    for (const gemm of backends) {
      for (const [rows, cols, rank] of [
        [48, 40, 12],
        [7, 33, 5],
        [1, 9, 1],
      ]) {
        const terms = Array.from({ length: 3 }, () => ({
          u: Float32Array.from({ length: rows * rank }, () => rng.normal() / Math.sqrt(rows)),
          v: Float32Array.from({ length: cols * rank }, () => rng.normal() / Math.sqrt(cols)),
          w: Float64Array.from({ length: rank }, () =>
            rng.uniform() < 0.2 ? 0 : 0.1 * (rng.uniform() - 0.3),
          ),
          rank,
        }));
        const size = rows * cols;
        const theta = Float32Array.from({ length: size }, () => rng.normal() * 0.05);
        const start = Float64Array.from({ length: size }, () => 1e-3 * rng.normal());
        const noise = [
          { scale: 3e-4, field: Float64Array.from({ length: size }, () => rng.normal()) },
        ];
        for (const dtype of ["F16", "BF16", "F32"] as const) {
          const want = await loopsBits(theta, start, terms, rows, cols, noise, dtype);
          const got = await certifiedMerge({ theta, start, terms, rows, cols, noise, dtype, gemm });
          assert.ok(
            Buffer.from(encodeFromF32(got.data, dtype)).equals(want),
            `${gemm.name} ${rows}×${cols} ${dtype}: bits differ`,
          );
        }
      }
    }
  });

  test("an element the bound cannot decide is summed again, in the loops' order", async () => {
    // τ[0] = 1 + 2⁻¹¹ + 2⁻²⁴ exactly, θ₀[0] = 0: a float32 tie between 1 + 2⁻¹¹ (to even, then
    // the F16 tie, to even: 1) and 1 + 2⁻¹¹ + 2⁻²³ (then F16 1 + 2⁻¹⁰). No interval around it
    // decides, so only the sum itself says which.
    const [rows, cols] = [3, 4];
    const u = Float32Array.from([1, 0.25, -0.5]);
    const v = Float32Array.from([1, 0.375, 0.1, -0.2]);
    const terms = [{ u, v, w: [1 + 2 ** -11 + 2 ** -24], rank: 1 }];
    const theta = Float32Array.from({ length: rows * cols }, (_, i) => 0.01 * i);
    const start = new Float64Array(rows * cols);
    const gemm = createTsGemm();
    const got = await certifiedMerge({
      theta,
      start,
      terms,
      rows,
      cols,
      noise: [],
      dtype: "F16",
      gemm,
    });
    assert.equal(got.recomputed, 1);
    const want = await loopsBits(theta, start, terms, rows, cols, [], "F16");
    assert.ok(Buffer.from(encodeFromF32(got.data, "F16")).equals(want));
    assert.equal(want.readUInt16LE(0), 0x3c00, "ties go to even twice: 1");
  });

  test("no active component: θ₀ + start + noise, as the loops give it", async () => {
    const theta = Float32Array.from([0.5, -0.25, 1e-3]);
    const start = Float64Array.from([1e-4, 0, -2e-4]);
    const terms = [{ u: new Float32Array(3), v: new Float32Array(1), w: [0], rank: 1 }];
    const noise = [{ scale: 0.01, field: Float64Array.from([1, -1, 0.5]) }];
    const got = await certifiedMerge({
      theta,
      start,
      terms,
      rows: 3,
      cols: 1,
      noise,
      dtype: "F16",
      gemm: createTsGemm(),
    });
    const want = await loopsBits(theta, start, terms, 3, 1, noise, "F16");
    assert.ok(Buffer.from(encodeFromF32(got.data, "F16")).equals(want));
  });
});
