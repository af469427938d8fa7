/**
 * Model aggregation, the final model of CycleQD: the best elite τ_k* of each archive A_k,
 * merged as θ_agg = θ₀ + Σ_k β_k τ_k* with β = softmax_k f_k(τ_k*). Genomes are linear in
 * τ, so the merged genome is Σ_k β_k g_k* and rebuilds θ_agg exactly
 * (docs/ALGORITHM.md, "Model aggregation").
 */
import type { Archive, Elite } from "./archive.ts";
import { combineGenomes, type Genome } from "./genome.ts";

/**
 * The aggregated model of a search (`aggregate`, `CycleQD.aggregate`): its genome, the
 * softmax weights β and the elite each weight applies to, both in archive order.
 */
export interface Aggregation {
  /** Σ_k β_k g_k*: materialise it over the seed factors to get θ_agg. */
  genome: Genome;
  /** β_k, one per archive. */
  beta: number[];
  /** The best elite of each archive. */
  elites: Elite<Genome>[];
}

/** softmax(x), shifted by max(x) so large scores do not overflow. */
export function softmax(x: readonly number[]): number[] {
  if (x.length === 0) return [];
  const m = Math.max(...x);
  const e = x.map((v) => Math.exp(v - m));
  const z = e.reduce((s, v) => s + v, 0);
  return e.map((v) => v / z);
}

/**
 * Aggregates the best elite of each archive (highest quality f_k; the lowest cell wins a
 * tie), weighted by β = softmax of those qualities (scores, typically in [0, 1]).
 * Throws when `archives` is empty or when any archive holds no elite.
 */
export function aggregate(archives: readonly Archive<Genome>[]): Aggregation {
  if (archives.length === 0) throw new Error("aggregate: needs at least one archive");
  const elites = archives.map((a) => {
    const best = a.best();
    if (!best) throw new Error(`aggregate: archive ${a.task} is empty; run the search first`);
    return best;
  });
  const beta = softmax(elites.map((e, k) => e.scores[archives[k].task]));
  const genome = combineGenomes(elites.map((e, k) => [beta[k], e.payload] as const));
  return { genome, beta, elites };
}
