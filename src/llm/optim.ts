/** AdamW, global-norm gradient clipping and the warmup + cosine learning-rate schedule. */
import type { Params } from "./model.ts";

export interface AdamWOptions {
  beta1: number;
  beta2: number;
  eps: number;
  /** Decoupled weight decay, applied to 2-D weights only (not to norm weights). */
  weightDecay: number;
}

export const DEFAULT_ADAMW: Readonly<AdamWOptions> = Object.freeze({
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-8,
  weightDecay: 0.1,
});

/** First and second moments per parameter, and the number of updates taken. */
export interface AdamState {
  m: Params;
  v: Params;
  step: number;
}

export function newAdamState(params: Params): AdamState {
  const zeros = () => new Map([...params].map(([k, w]) => [k, new Float32Array(w.length)]));
  return { m: zeros(), v: zeros(), step: 0 };
}

/**
 * One AdamW update in place (PyTorch's form: decay, then the bias-corrected Adam step).
 * `decayed(name)` says which tensors get weight decay.
 */
export function adamWUpdate(
  params: Params,
  grads: Params,
  state: AdamState,
  lr: number,
  opts: AdamWOptions,
  decayed: (name: string) => boolean,
): void {
  state.step++;
  const { beta1: b1, beta2: b2, eps } = opts;
  const c1 = 1 - b1 ** state.step;
  const c2 = 1 - b2 ** state.step;
  for (const [name, w] of params) {
    const g = grads.get(name);
    const m = state.m.get(name);
    const v = state.v.get(name);
    if (!g || !m || !v) throw new Error(`AdamW: no gradient or moments for "${name}"`);
    const keep = decayed(name) ? 1 - lr * opts.weightDecay : 1;
    const stepSize = lr / c1;
    const rc2 = 1 / Math.sqrt(c2);
    for (let i = 0; i < w.length; i++) {
      const gi = g[i];
      const mi = b1 * m[i] + (1 - b1) * gi;
      const vi = b2 * v[i] + (1 - b2) * gi * gi;
      m[i] = mi;
      v[i] = vi;
      w[i] = w[i] * keep - (stepSize * mi) / (Math.sqrt(vi) * rc2 + eps);
    }
  }
}

/** Scales all gradients so that their global L2 norm is at most maxNorm; returns the norm before. */
export function clipGradients(grads: Params, maxNorm: number): number {
  let ss = 0;
  for (const g of grads.values()) for (let i = 0; i < g.length; i++) ss += g[i] * g[i];
  const norm = Math.sqrt(ss);
  if (Number.isFinite(maxNorm) && maxNorm > 0 && norm > maxNorm) {
    const k = maxNorm / norm;
    for (const g of grads.values()) for (let i = 0; i < g.length; i++) g[i] *= k;
  }
  return norm;
}

export interface LrSchedule {
  /** Peak learning rate, reached at the end of warmup. */
  lr: number;
  /** Floor that the cosine decays to. */
  minLr: number;
  warmupSteps: number;
  totalSteps: number;
}

/** Learning rate for update number `step` (0-based): linear warmup, then cosine to minLr. */
export function learningRate(step: number, s: LrSchedule): number {
  if (step < s.warmupSteps) return (s.lr * (step + 1)) / s.warmupSteps;
  const span = Math.max(1, s.totalSteps - s.warmupSteps);
  const progress = Math.min(1, (step - s.warmupSteps) / span);
  return s.minLr + 0.5 * (s.lr - s.minLr) * (1 + Math.cos(Math.PI * progress));
}
