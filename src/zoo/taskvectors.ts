/**
 * Task-vector statistics and the simple merges the zoo is checked against: how big each
 * expert's τ = θ − θ₀ is next to the base, how aligned two experts' τ are, and weighted sums
 * θ₀ + Σ w_k τ_k (the plain average and task arithmetic are special cases).
 */
import type { Params } from "../llm/model.ts";

export interface TaskVectorStats {
  /** ‖θ₀‖ over every tensor. */
  baseNorm: number;
  /** ‖τ_k‖ per expert. */
  norms: Record<string, number>;
  /** ‖τ_k‖ / ‖θ₀‖ per expert. */
  relative: Record<string, number>;
  /** cos(τ_a, τ_b) per pair, keyed "a,b" in the experts' order. */
  cosines: Record<string, number>;
}

function sameTensors(base: Params, other: Params, name: string): void {
  for (const [k, v] of base) {
    const o = other.get(k);
    if (!o || o.length !== v.length) {
      throw new Error(`expert ${name} does not have the base's tensor ${k} with the same shape`);
    }
  }
}

export function taskVectorStats(base: Params, experts: Record<string, Params>): TaskVectorStats {
  const names = Object.keys(experts);
  for (const n of names) sameTensors(base, experts[n], n);
  let b2 = 0;
  const dots = new Map<string, number>();
  const key = (a: string, b: string) => `${a},${b}`;
  for (const [t, theta] of base) {
    for (let i = 0; i < theta.length; i++) b2 += theta[i] * theta[i];
    const taus = names.map((n) => {
      const e = experts[n].get(t) as Float32Array;
      return Float64Array.from(e, (x, i) => x - theta[i]);
    });
    for (let a = 0; a < names.length; a++) {
      for (let b = a; b < names.length; b++) {
        let d = 0;
        const ta = taus[a];
        const tb = taus[b];
        for (let i = 0; i < ta.length; i++) d += ta[i] * tb[i];
        const k = key(names[a], names[b]);
        dots.set(k, (dots.get(k) ?? 0) + d);
      }
    }
  }
  const baseNorm = Math.sqrt(b2);
  const norms: Record<string, number> = {};
  const relative: Record<string, number> = {};
  for (const n of names) {
    norms[n] = Math.sqrt(dots.get(key(n, n)) ?? 0);
    relative[n] = norms[n] / baseNorm;
  }
  const cosines: Record<string, number> = {};
  for (let a = 0; a < names.length; a++) {
    for (let b = a + 1; b < names.length; b++) {
      const d = dots.get(key(names[a], names[b])) ?? 0;
      const den = norms[names[a]] * norms[names[b]];
      cosines[key(names[a], names[b])] = den > 0 ? d / den : 0;
    }
  }
  return { baseNorm, norms, relative, cosines };
}

/** θ₀ + Σ_k w_k (θ_k − θ₀), tensor by tensor. */
export function mergeTaskVectors(
  base: Params,
  experts: Params[],
  weights: readonly number[],
): Params {
  if (experts.length !== weights.length) {
    throw new Error(`mergeTaskVectors: ${experts.length} experts but ${weights.length} weights`);
  }
  experts.forEach((e, i) => {
    sameTensors(base, e, String(i));
  });
  const out: Params = new Map();
  for (const [t, theta] of base) {
    const m = Float32Array.from(theta);
    experts.forEach((e, k) => {
      const w = weights[k];
      const x = e.get(t) as Float32Array;
      for (let i = 0; i < m.length; i++) m[i] += w * (x[i] - theta[i]);
    });
    out.set(t, m);
  }
  return out;
}
