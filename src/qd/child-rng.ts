/**
 * Each child's random draws come from its own generator, a function of the run seed and
 * the child's index only. A run with one worker is then reproducible, and a resumed run
 * redoes an interrupted child with exactly the draws it had (docs/ALGORITHM.md, "The cycle").
 */
import { createHash } from "node:crypto";
import { Rng } from "../util/rng.ts";

/** The generator of child `index` (1-based) of a run with seed `seed`. */
export function childRng(seed: number, index: number): Rng {
  if (!Number.isSafeInteger(seed) || !(Number.isSafeInteger(index) && index >= 1)) {
    throw new Error(`childRng: needs an integer seed and an index ≥ 1, got ${seed} and ${index}`);
  }
  // All 128 bits of state from a hash, so no two (seed, index) pairs share a stream.
  const h = createHash("sha256").update(`cycleqd/child/${seed}/${index}`).digest();
  const s: number[] = [h.readUInt32LE(0), h.readUInt32LE(4), h.readUInt32LE(8), h.readUInt32LE(12)];
  if (s[0] === 0 && s[1] === 0 && s[2] === 0 && s[3] === 0) s[0] = 1; // xoshiro's one forbidden state
  return Rng.fromState([...s, Number.NaN]);
}
