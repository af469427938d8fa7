import assert from "node:assert/strict";
import test from "node:test";
import { pairedBootstrap, quantile } from "../bench/paper/bootstrap.ts";

test("quantile interpolates between order statistics", () => {
  assert.equal(quantile([1, 2, 3, 4], 0.5), 2.5);
  assert.equal(quantile([1, 2, 3, 4], 0), 1);
  assert.equal(quantile([1, 2, 3, 4], 1), 4);
  assert.ok(Math.abs(quantile([1, 2, 3, 4], 0.025) - 1.075) < 1e-12);
  assert.equal(quantile([7], 0.975), 7);
});

test("a clearly better vector gives p = 0 and an interval above zero", () => {
  const a = Array.from({ length: 60 }, (_, i) => (i % 10 === 0 ? 0 : 1));
  const b = Array.from({ length: 60 }, () => 0);
  const r = pairedBootstrap(a, b, { seed: 3 });
  assert.equal(r.problems, 60);
  assert.equal(r.resamples, 10_000);
  assert.ok(Math.abs(r.meanDiff - 0.9) < 1e-12);
  assert.equal(r.p, 0);
  assert.ok(r.ci95[0] > 0.7 && r.ci95[1] <= 1);
});

test("identical vectors give a difference of exactly 0 and p = 1", () => {
  const a = [1, 0, 0.5, 1, 0, 1 / 3];
  const r = pairedBootstrap(a, [...a]);
  assert.equal(r.meanDiff, 0);
  assert.deepEqual(r.ci95, [0, 0]);
  assert.equal(r.p, 1);
});

test("a constant difference is recovered exactly", () => {
  const r = pairedBootstrap([1, 1, 1], [0.5, 0.5, 0.5], { resamples: 100 });
  assert.equal(r.meanDiff, 0.5);
  assert.deepEqual(r.ci95, [0.5, 0.5]);
  assert.equal(r.p, 0);
});

test("two problems, one tie and one win: P(mean ≤ 0) is 1/4", () => {
  // Resampled means are 0, 0.5 or 1 with probabilities 1/4, 1/2, 1/4.
  const r = pairedBootstrap([0, 1], [0, 0], { seed: 11 });
  assert.equal(r.meanDiff, 0.5);
  assert.ok(Math.abs(r.p - 0.25) < 0.02, `p = ${r.p}`);
  assert.deepEqual(r.ci95, [0, 1]);
});

test("a worse vector gives p = 1; the draws are seeded", () => {
  const a = [0, 0, 1, 0, 0, 0];
  const b = [1, 1, 1, 1, 0, 1];
  const r = pairedBootstrap(a, b, { seed: 5 });
  assert.ok(r.meanDiff < 0);
  assert.equal(r.p, 1);
  const again = () => pairedBootstrap([0, 1, 1, 0.5], [1, 0, 0, 0], { seed: 9 });
  assert.deepEqual(again(), again());
});

test("unpaired or empty inputs are refused", () => {
  assert.throws(() => pairedBootstrap([1, 0], [1]), /pair them per problem/);
  assert.throws(() => pairedBootstrap([], []), /no problems/);
  assert.throws(() => pairedBootstrap([1], [0], { resamples: 0 }), /positive integer/);
});
