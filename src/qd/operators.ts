/**
 * Variation operators on genomes: crossover (model merging of task vectors) and mutation
 * (SVD-based, Gaussian, or none). Each returns the child and what it drew, for the run log
 * (docs/ALGORITHM.md, "Crossover" and "SVD mutation").
 */
import type { Rng } from "../util/rng.ts";
import { cloneGenome, combineGenomes, type Genome, type GenomeLayout } from "./genome.ts";

/**
 * Crossover's weight distribution: ω₁, ω₂ ~ N(μ, σ²), dimensionless. `crossover` throws
 * for a non-finite μ or σ, σ < 0, or σ = 0 with μ = 0.
 */
export interface CrossoverOptions {
  /** Mean of ω₁, ω₂ (default 1). */
  mu?: number;
  /** Standard deviation of ω₁, ω₂ (default 0.01). */
  sigma?: number;
}

export interface CrossoverDraws {
  /** Raw draws ω₁, ω₂. */
  omega: [number, number];
  /** Normalised weights ω_i / (ω₁ + ω₂) actually applied. */
  weights: [number, number];
  /** Pairs redrawn because |ω₁ + ω₂| < 1e-6. */
  resamples: number;
}

const MIN_OMEGA_SUM = 1e-6;
const MAX_RESAMPLES = 1000;

/** child = (ω₁ g₁ + ω₂ g₂) / (ω₁ + ω₂), ω_i ~ N(μ, σ²); negative weights are allowed. */
export function crossover(
  p1: Genome,
  p2: Genome,
  rng: Rng,
  opts: CrossoverOptions = {},
): { child: Genome; draws: CrossoverDraws } {
  const { mu = 1, sigma = 0.01 } = opts;
  if (!(Number.isFinite(mu) && Number.isFinite(sigma) && sigma >= 0)) {
    throw new Error(`crossover: need a finite mu and sigma ≥ 0, got mu=${mu}, sigma=${sigma}`);
  }
  if (sigma === 0 && Math.abs(2 * mu) < MIN_OMEGA_SUM) {
    throw new Error("crossover: with sigma 0, mu must not be 0 (the weights would sum to 0)");
  }
  let resamples = 0;
  for (;;) {
    const w1 = rng.normal(mu, sigma);
    const w2 = rng.normal(mu, sigma);
    const sum = w1 + w2;
    if (Math.abs(sum) >= MIN_OMEGA_SUM) {
      const weights: [number, number] = [w1 / sum, w2 / sum];
      const child = combineGenomes([
        [weights[0], p1],
        [weights[1], p2],
      ]);
      return { child, draws: { omega: [w1, w2], weights, resamples } };
    }
    if (++resamples > MAX_RESAMPLES) {
      throw new Error(
        `crossover: ω₁ + ω₂ stayed near 0 for ${MAX_RESAMPLES} draws; raise mu or lower sigma`,
      );
    }
  }
}

export type MutationKind = "svd" | "gaussian" | "none";

/**
 * Which mutation follows crossover and its strength. `mutate` throws for an unknown kind,
 * wMax or sigma that is negative or not finite.
 */
export interface MutationOptions {
  /** "svd" (default, the paper), "gaussian" or "none" (ablations). */
  kind?: MutationKind;
  /** Upper bound of r_i ~ U(0, w_max) for SVD mutation (default 0.1). */
  wMax?: number;
  /** σ_m of Gaussian mutation, in weight units, added to every tensor (default 3e-4). */
  sigma?: number;
}

export interface ValueSummary {
  count: number;
  mean: number;
  min: number;
  max: number;
}

export type MutationDraws =
  | {
      kind: "svd";
      /** The seed expert whose singular directions were used (the active task q). */
      task: number;
      /** r for every component of every matrix, in layout order (matrix by matrix). */
      r: Float64Array;
      summary: ValueSummary;
    }
  | { kind: "gaussian"; seed: number; sigma: number }
  | { kind: "none" };

/**
 * SVD mutation: adds U_q diag(r ⊙ s_q) V_qᵀ to every matrix, i.e. c_q += r, with
 * r_i ~ U(0, w_max) per component and per matrix. 1-D tensors are untouched.
 */
export function svdMutation(
  genome: Genome,
  layout: GenomeLayout,
  q: number,
  rng: Rng,
  wMax = 0.1,
): { child: Genome; draws: MutationDraws } {
  if (!(Number.isInteger(q) && q >= 0 && q < layout.seeds)) {
    throw new Error(`svdMutation: task must be a seed index in 0..${layout.seeds - 1}, got ${q}`);
  }
  if (!(Number.isFinite(wMax) && wMax >= 0)) {
    throw new Error(`svdMutation: wMax must be a finite number ≥ 0, got ${wMax}`);
  }
  const child = cloneGenome(genome);
  const r = new Float64Array(layout.size / layout.seeds);
  let j = 0;
  for (const m of layout.matrices) {
    const at = m.offset + q * m.rank;
    for (let i = 0; i < m.rank; i++, j++) {
      r[j] = rng.uniform() * wMax;
      child.c[at + i] += r[j];
    }
  }
  return { child, draws: { kind: "svd", task: q, r, summary: summarise(r) } };
}

/** Gaussian mutation: adds σ·Z to every tensor, recorded as a replayable noise seed. */
export function gaussianMutation(
  genome: Genome,
  rng: Rng,
  sigma = 3e-4,
): { child: Genome; draws: MutationDraws } {
  if (!(Number.isFinite(sigma) && sigma >= 0)) {
    throw new Error(`gaussianMutation: sigma must be a finite number ≥ 0, got ${sigma}`);
  }
  const child = cloneGenome(genome);
  const seed = rng.nextU32();
  if (sigma > 0) child.noise.push({ seed, sigma, weight: 1 });
  return { child, draws: { kind: "gaussian", seed, sigma } };
}

/** Applies the configured mutation with the active task q. */
export function mutate(
  genome: Genome,
  layout: GenomeLayout,
  q: number,
  rng: Rng,
  opts: MutationOptions = {},
): { child: Genome; draws: MutationDraws } {
  const kind = opts.kind ?? "svd";
  switch (kind) {
    case "svd":
      return svdMutation(genome, layout, q, rng, opts.wMax ?? 0.1);
    case "gaussian":
      return gaussianMutation(genome, rng, opts.sigma ?? 3e-4);
    case "none":
      return { child: cloneGenome(genome), draws: { kind: "none" } };
    default:
      throw new Error(`mutate: kind must be "svd", "gaussian" or "none", got "${String(kind)}"`);
  }
}

function summarise(x: Float64Array): ValueSummary {
  if (x.length === 0) return { count: 0, mean: 0, min: 0, max: 0 };
  let sum = 0;
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (const v of x) {
    sum += v;
    min = Math.min(min, v);
    max = Math.max(max, v);
  }
  return { count: x.length, mean: sum / x.length, min, max };
}
