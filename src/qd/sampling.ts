/**
 * Parent selection in the active archive A_q: elite sampling (the paper's rule) or uniform.
 *
 * Elite sampling weighs elite j by γ_j = Π_i (α_low + (α_high − α_low)·norm_i(j)) over the
 * quality and every BC. Quality plus BCs are exactly the K task scores, so the product runs
 * over all K raw scores; norm_i is min–max over the elites of the pool, and a dimension
 * where all elites are equal contributes factor 1 (docs/ALGORITHM.md, "Elite sampling").
 */
import type { Rng } from "../util/rng.ts";
import type { Archive, Elite } from "./archive.ts";

export type SamplingMethod = "elite" | "uniform";

/**
 * How parents are drawn from the active archive. `selectParents` throws for an unknown
 * method, or unless 0 < alphaLow ≤ alphaHigh (both finite).
 */
export interface SamplingOptions {
  /** "elite" (default, the paper) or "uniform" (ablation). */
  method?: SamplingMethod;
  /** Weight factor of the worst value on a dimension (paper: 0.5). */
  alphaLow?: number;
  /** Weight factor of the best value on a dimension (paper: 0.8). */
  alphaHigh?: number;
}

/**
 * How the second parent was found: "none" (both from A_q), "other-archives" (A_q held one
 * elite, so the second came from the other archives' elites, weighed by the same rule), or
 * "same-parent" (no other individual exists anywhere; the crossover then returns the parent).
 */
export type SelectionFallback = "none" | "other-archives" | "same-parent";

export interface ParentSelection<T> {
  parents: [Elite<T>, Elite<T>];
  fallback: SelectionFallback;
}

/** γ for each point (a row of raw scores), per the paper's elite-sampling rule. */
export function eliteWeights(
  points: readonly (readonly number[])[],
  alphaLow = 0.5,
  alphaHigh = 0.8,
): number[] {
  if (
    !(
      Number.isFinite(alphaLow) &&
      Number.isFinite(alphaHigh) &&
      alphaLow > 0 &&
      alphaHigh >= alphaLow
    )
  ) {
    throw new Error(
      `eliteWeights: need 0 < alphaLow ≤ alphaHigh, got ${alphaLow} and ${alphaHigh}`,
    );
  }
  if (points.length === 0) return [];
  const dims = points[0].length;
  const gamma = new Array<number>(points.length).fill(1);
  for (let d = 0; d < dims; d++) {
    let min = Number.POSITIVE_INFINITY;
    let max = Number.NEGATIVE_INFINITY;
    for (const p of points) {
      min = Math.min(min, p[d]);
      max = Math.max(max, p[d]);
    }
    if (!(max > min)) continue; // all equal: factor 1
    for (let j = 0; j < points.length; j++) {
      const norm = (points[j][d] - min) / (max - min);
      gamma[j] *= alphaLow + (alphaHigh - alphaLow) * norm;
    }
  }
  return gamma;
}

/** Index drawn with probability ∝ weights (all > 0), skipping `exclude`. */
export function drawIndex(weights: readonly number[], rng: Rng, exclude = -1): number {
  let total = 0;
  for (let i = 0; i < weights.length; i++) if (i !== exclude) total += weights[i];
  if (!(total > 0)) throw new Error("drawIndex: no positive weight to draw from");
  let u = rng.uniform() * total;
  let last = -1;
  for (let i = 0; i < weights.length; i++) {
    if (i === exclude) continue;
    last = i;
    u -= weights[i];
    if (u < 0) return i;
  }
  return last; // rounding left u at ≥ 0 after the last weight
}

/** Two distinct indices drawn without replacement, each ∝ weights. Needs ≥ 2 entries. */
export function drawPair(weights: readonly number[], rng: Rng): [number, number] {
  if (weights.length < 2) throw new Error("drawPair: needs at least two entries");
  const first = drawIndex(weights, rng);
  return [first, drawIndex(weights, rng, first)];
}

function poolWeights<T>(pool: readonly Elite<T>[], opts: SamplingOptions): number[] {
  const method = opts.method ?? "elite";
  if (method === "uniform") return pool.map(() => 1);
  if (method !== "elite") {
    throw new Error(`selectParents: sampling method must be "elite" or "uniform", got "${method}"`);
  }
  return eliteWeights(
    pool.map((e) => e.scores),
    opts.alphaLow ?? 0.5,
    opts.alphaHigh ?? 0.8,
  );
}

/**
 * Picks two distinct parents from archive `q` (see `SelectionFallback` for an archive with a
 * single elite). Draws from `rng` only; the archives are not changed.
 */
export function selectParents<T>(
  archives: readonly Archive<T>[],
  q: number,
  rng: Rng,
  opts: SamplingOptions = {},
): ParentSelection<T> {
  const archive = archives[q];
  if (!archive) throw new Error(`selectParents: no archive for task ${q}`);
  const elites = archive.elites();
  if (elites.length === 0) {
    throw new Error(
      `selectParents: archive ${q} is empty; offer the seed experts to every archive first`,
    );
  }
  if (elites.length >= 2) {
    const [i, j] = drawPair(poolWeights(elites, opts), rng);
    return { parents: [elites[i], elites[j]], fallback: "none" };
  }
  const only = elites[0];
  const seen = new Set([only.id]);
  const pool: Elite<T>[] = [];
  for (const a of archives) {
    for (const e of a.elites()) {
      if (seen.has(e.id)) continue;
      seen.add(e.id);
      pool.push(e);
    }
  }
  if (pool.length === 0) return { parents: [only, only], fallback: "same-parent" };
  const j = drawIndex(poolWeights(pool, opts), rng);
  return { parents: [only, pool[j]], fallback: "other-archives" };
}
