/**
 * The baseline merges CycleQD is compared with, each a small registered object as in
 * mergekit. A method sees one tensor at a time: the base's values θ₀ and the experts' task
 * vectors τ_k = θ_k − θ₀. Every tensor is merged the same way, 1-D norm weights included.
 */
import { dropAndRescale, dropRng, trimToDensity } from "./sparsify.ts";

export type MergeMethodName = "linear" | "task-arithmetic" | "ties" | "dare" | "dare-ties";

/** A method's parameters after defaults and checks (see params.ts). */
export interface MergeParams {
  /** One weight per expert. */
  weights: readonly number[];
  /** Scale of the merged task vector. */
  lambda: number;
  /** TIES: fraction of each task vector kept, by magnitude. */
  density: number;
  /** DARE: probability that an entry of a task vector is dropped. */
  drop: number;
  /** DARE: seed of the drop masks. */
  seed: number;
  /** Divide by the summed weights (mergekit's `normalize`). */
  normalize: boolean;
}

/** The numeric parameters a method may read besides weights and normalize. */
export type ParamName = "lambda" | "density" | "drop" | "seed";

/** One tensor's inputs. The `tau` arrays are scratch: methods may overwrite them. */
export interface TensorTask {
  name: string;
  base: Float32Array;
  tau: Float32Array[];
}

export interface MergeMethod {
  readonly name: MergeMethodName;
  /** One line for help texts. */
  readonly summary: string;
  readonly minExperts: number;
  /** Parameters it reads; giving any other is an error rather than silently ignored. */
  readonly params: readonly ParamName[];
  /** mergekit's default for `normalize`. */
  readonly defaultNormalize: boolean;
  merge(task: TensorTask, params: MergeParams): Float32Array;
}

/**
 * θ₀ + λ·Δ where Δ = Σ_k w_k τ_k, optionally over the entries whose sign agrees with the
 * elected one (sign of Σ_k w_k τ_k, + on a tie), optionally divided by the weight that went
 * in. This is mergekit's generalized task arithmetic after sparsification.
 */
export function combineTaskVectors(
  base: Float32Array,
  tau: readonly Float32Array[],
  weights: readonly number[],
  opts: { lambda: number; normalize: boolean; electSign: boolean },
): Float32Array {
  const n = base.length;
  const K = tau.length;
  const out = new Float32Array(n);
  const { lambda, normalize, electSign } = opts;
  let weightSum = 0;
  for (const w of weights) weightSum += w;
  for (let i = 0; i < n; i++) {
    let sign = 1;
    if (electSign) {
      let mass = 0;
      for (let k = 0; k < K; k++) mass += weights[k] * tau[k][i];
      sign = mass >= 0 ? 1 : -1;
    }
    let delta = 0;
    let divisor = electSign ? 0 : weightSum;
    for (let k = 0; k < K; k++) {
      const d = weights[k] * tau[k][i];
      if (!electSign) delta += d;
      else if (d * sign > 0) {
        // Zeros (trimmed or dropped entries) never count toward the disjoint mean.
        delta += d;
        divisor += weights[k];
      }
    }
    if (normalize && divisor !== 0) delta /= divisor;
    out[i] = base[i] + lambda * delta;
  }
  return out;
}

/** Σ_k w_k θ_k, divided by Σ_k w_k when normalising; computed as θ₀·Σw + Σ w_k τ_k. */
function linearMerge(task: TensorTask, p: MergeParams): Float32Array {
  const { base, tau } = task;
  const w = p.weights;
  let weightSum = 0;
  for (const x of w) weightSum += x;
  const out = new Float32Array(base.length);
  for (let i = 0; i < base.length; i++) {
    let s = base[i] * weightSum;
    for (let k = 0; k < tau.length; k++) s += w[k] * tau[k][i];
    out[i] = p.normalize ? s / weightSum : s;
  }
  return out;
}

function dropAll(task: TensorTask, p: MergeParams): Float32Array[] {
  return task.tau.map((t, k) => dropAndRescale(t, p.drop, dropRng(p.seed, task.name, k)));
}

/** `combineTaskVectors` of (sparsified) task vectors with the method's λ and normalize. */
function combine(
  task: TensorTask,
  tau: readonly Float32Array[],
  p: MergeParams,
  electSign: boolean,
): Float32Array {
  return combineTaskVectors(task.base, tau, p.weights, {
    lambda: p.lambda,
    normalize: p.normalize,
    electSign,
  });
}

export const linear: MergeMethod = {
  name: "linear",
  summary:
    "weighted average of the experts' weights, Σ w_k θ_k / Σ w_k (no division with --no-normalize)",
  minExperts: 1,
  params: [],
  defaultNormalize: true,
  merge: linearMerge,
};

export const taskArithmetic: MergeMethod = {
  name: "task-arithmetic",
  summary: "θ₀ + λ Σ w_k τ_k, with task vectors τ_k = θ_k − θ₀ (Ilharco et al. 2023)",
  minExperts: 1,
  params: ["lambda"],
  defaultNormalize: false,
  merge: (task, p) => combine(task, task.tau, p, false),
};

export const ties: MergeMethod = {
  name: "ties",
  summary:
    "TIES: trim each τ_k to its top-density magnitudes, elect each entry's sign by summed mass, average the agreeing entries (Yadav et al. 2023)",
  minExperts: 2,
  params: ["lambda", "density"],
  defaultNormalize: true,
  merge: (task, p) =>
    combine(
      task,
      task.tau.map((t) => trimToDensity(t, p.density)),
      p,
      true,
    ),
};

export const dare: MergeMethod = {
  name: "dare",
  summary:
    "DARE: drop each entry of τ_k with probability p, rescale by 1/(1−p), then task arithmetic (Yu et al. 2024)",
  minExperts: 2,
  params: ["lambda", "drop", "seed"],
  defaultNormalize: false,
  merge: (task, p) => combine(task, dropAll(task, p), p, false),
};

export const dareTies: MergeMethod = {
  name: "dare-ties",
  summary: "DARE's drop and rescale, then TIES's sign election and agreeing-entry merge",
  minExperts: 2,
  params: ["lambda", "drop", "seed"],
  defaultNormalize: false,
  merge: (task, p) => combine(task, dropAll(task, p), p, true),
};

/** Every merge method by name. */
export const MERGE_METHODS: ReadonlyMap<MergeMethodName, MergeMethod> = new Map(
  [linear, taskArithmetic, ties, dare, dareTies].map((m) => [m.name, m]),
);

export function mergeMethod(name: string): MergeMethod {
  const m = MERGE_METHODS.get(name as MergeMethodName);
  if (!m) {
    throw new Error(
      `unknown merge method ${JSON.stringify(name)}; choose one of ${[...MERGE_METHODS.keys()].join(", ")}`,
    );
  }
  return m;
}
