/**
 * Replayable Gaussian noise for the Gaussian-mutation ablation. A mutation records only a
 * 32-bit seed; the noise of each tensor is regenerated from (seed, tensor name), so genomes
 * stay small and every materialisation adds exactly the same numbers (docs/ALGORITHM.md,
 * "SVD mutation").
 */
import { fnv1a } from "../util/hash.ts";
import { Rng } from "../util/rng.ts";

/** `count` standard normals for tensor `name` under noise seed `seed`. */
export function noiseField(seed: number, name: string, count: number): Float64Array {
  if (!(Number.isInteger(seed) && seed >= 0 && seed <= 0xffffffff)) {
    throw new Error(`noiseField: seed must be a 32-bit unsigned integer, got ${seed}`);
  }
  const rng = new Rng(fnv1a(`${seed}/${name}`));
  const out = new Float64Array(count);
  for (let i = 0; i < count; i++) out[i] = rng.normal();
  return out;
}
