import assert from "node:assert/strict";
import { test } from "node:test";
import { type Batch, evaluateLoss, lossAndGradients } from "../src/llm/backward.ts";
import type { LlamaConfig } from "../src/llm/config.ts";
import { initParams } from "../src/llm/model.ts";
import { Rng } from "../src/util/rng.ts";
import { naiveGemm, naiveGemmUnbatched } from "./llm-gemm.ts";

const gemm = naiveGemm();

function tinyConfig(nKvHeads: number): LlamaConfig {
  return {
    vocabSize: 13,
    dim: 8,
    nLayers: 2,
    nHeads: 2,
    nKvHeads,
    ffnDim: 12,
    contextLength: 8,
    ropeTheta: 10000,
    normEps: 1e-5,
  };
}

function randomBatch(c: LlamaConfig, B: number, T: number, rng: Rng): Batch {
  const inputs = new Int32Array(B * T).map(() => rng.int(c.vocabSize));
  const targets = new Int32Array(B * T).map(() => rng.int(c.vocabSize));
  // Some positions carry no loss, some carry double weight.
  const mask = new Float32Array(B * T).map(() => [0, 1, 1, 2][rng.int(4)]);
  return { B, T, inputs, targets, mask };
}

for (const nKv of [2, 1]) {
  test(`gradients match central differences (nKvHeads ${nKv})`, async () => {
    const c = tinyConfig(nKv);
    const rng = new Rng(7 + nKv);
    const params = initParams(c, rng, { std: 0.3 });
    // Norm weights away from 1 so their gradients are not special.
    for (const [name, w] of params) {
      if (name.includes("norm")) for (let i = 0; i < w.length; i++) w[i] = 0.5 + rng.uniform();
    }
    const batch = randomBatch(c, 2, 6, rng);
    const { grads } = await lossAndGradients(params, c, batch, gemm);
    const h = 8e-3;
    const slope = async (w: Float32Array, i: number, step: number) => {
      const orig = w[i];
      w[i] = orig + step;
      const lp = (await evaluateLoss(params, c, batch, gemm)).loss;
      w[i] = orig - step;
      const lm = (await evaluateLoss(params, c, batch, gemm)).loss;
      w[i] = orig;
      return (lp - lm) / (2 * step);
    };
    let worst = 0;
    let where = "";
    for (const [name, w] of params) {
      const g = grads.get(name) as Float32Array;
      for (let s = 0; s < 6; s++) {
        const i = rng.int(w.length);
        // Richardson extrapolation cancels the h² term of the central difference.
        const num = (4 * (await slope(w, i, h / 2)) - (await slope(w, i, h))) / 3;
        const err = Math.abs(num - g[i]) / (1e-3 + Math.max(Math.abs(num), Math.abs(g[i])));
        if (err > worst) {
          worst = err;
          where = `${name}[${i}]: numeric ${num}, analytic ${g[i]}`;
        }
      }
    }
    assert.ok(worst < 0.02, `relative gradient error ${worst.toFixed(4)} at ${where}`);
  });
}

test("batched and block-by-block attention give the same loss and gradients", async () => {
  const c = tinyConfig(1);
  const rng = new Rng(3);
  const params = initParams(c, rng, { std: 0.3 });
  const batch = randomBatch(c, 3, 7, rng);
  const a = await lossAndGradients(params, c, batch, naiveGemm());
  const b = await lossAndGradients(params, c, batch, naiveGemmUnbatched());
  assert.equal(a.loss, b.loss);
  for (const [name, g] of a.grads) assert.deepEqual(b.grads.get(name), g, name);
});
