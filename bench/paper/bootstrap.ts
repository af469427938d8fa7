/**
 * Paired bootstrap over test problems: is model A better than model B on the same problems?
 * Each problem contributes the difference of the two models' pass rates on it (a pass rate
 * because a seeded row is averaged over its seeds first); problems are resampled with
 * replacement and the mean difference recomputed. Pure: the same inputs and seed give the
 * same answer.
 */
import { Rng } from "../../src/util/rng.ts";

export interface BootstrapResult {
  /** Mean over problems of a − b. */
  meanDiff: number;
  /** 95% percentile interval of the resampled mean difference. */
  ci95: [number, number];
  /** One-sided: share of resamples whose mean difference is ≤ 0 (A not better than B). */
  p: number;
  resamples: number;
  problems: number;
}

export const DEFAULT_RESAMPLES = 10_000;

/** Quantile q of sorted values, interpolating linearly between order statistics. */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) throw new Error("quantile of no values");
  const h = (n - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.min(n - 1, lo + 1);
  return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
}

export function pairedBootstrap(
  a: readonly number[],
  b: readonly number[],
  opts: { resamples?: number; seed?: number } = {},
): BootstrapResult {
  if (a.length !== b.length) {
    throw new Error(
      `paired bootstrap: ${a.length} values against ${b.length}; pair them per problem`,
    );
  }
  const n = a.length;
  if (n === 0) throw new Error("paired bootstrap: no problems");
  const resamples = opts.resamples ?? DEFAULT_RESAMPLES;
  if (!(Number.isInteger(resamples) && resamples > 0)) {
    throw new Error(`paired bootstrap: resamples must be a positive integer, got ${resamples}`);
  }
  const d = Float64Array.from(a, (x, i) => x - b[i]);
  const meanDiff = d.reduce((s, x) => s + x, 0) / n;
  const rng = new Rng(opts.seed ?? 0);
  const means = new Float64Array(resamples);
  let notBetter = 0;
  for (let r = 0; r < resamples; r++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += d[rng.int(n)];
    means[r] = s / n;
    // A tolerance, so that "no difference" is not split by float rounding of the sum.
    if (means[r] <= 1e-12) notBetter++;
  }
  means.sort();
  return {
    meanDiff,
    ci95: [quantile(means, 0.025), quantile(means, 0.975)],
    p: notBetter / resamples,
    resamples,
    problems: n,
  };
}
