/**
 * Sparsifying one task vector before it is merged: TIES keeps the largest magnitudes, DARE
 * drops entries at random and rescales the rest. Both work in place on a Float32Array, so a
 * large tensor needs no second copy.
 */
import { fnv1a } from "../util/hash.ts";
import { Rng } from "../util/rng.ts";

/** Entries a density keeps of `n`: ⌊density·n⌋, as mergekit counts them. */
export function keptByDensity(n: number, density: number): number {
  return density >= 1 ? n : Math.floor(density * n);
}

/**
 * TIES "trim": keeps the ⌊density·n⌋ entries of largest magnitude and zeroes the rest, in
 * place. Equal magnitudes at the cut are kept lowest index first, so exactly that many survive
 * and the result does not depend on sort stability.
 */
export function trimToDensity(tau: Float32Array, density: number): Float32Array {
  if (!(density > 0 && density <= 1)) {
    throw new Error(`trimToDensity: density must be in (0, 1], got ${density}`);
  }
  const n = tau.length;
  const k = keptByDensity(n, density);
  if (k >= n) return tau;
  if (k === 0) {
    throw new Error(
      `trimToDensity: density ${density} keeps no entry of a tensor with ${n} values; use at least ${1 / n}`,
    );
  }
  const bits = new Uint32Array(tau.buffer, tau.byteOffset, n);
  const cut = kthLargestMagnitudeBits(bits, k);
  let above = 0;
  for (let i = 0; i < n; i++) if ((bits[i] & 0x7fffffff) > cut) above++;
  let atCut = k - above;
  for (let i = 0; i < n; i++) {
    const a = bits[i] & 0x7fffffff;
    if (a > cut) continue;
    if (a === cut && atCut > 0) {
      atCut--;
      continue;
    }
    tau[i] = 0;
  }
  return tau;
}

/**
 * The bit pattern of the k-th largest |x| (1-based). For non-negative finite floats the bit
 * patterns sort like the values, so a two-pass 16-bit radix select finds it in O(n) without
 * copying or sorting.
 */
function kthLargestMagnitudeBits(bits: Uint32Array, k: number): number {
  const hist = new Uint32Array(65536);
  for (let i = 0; i < bits.length; i++) hist[(bits[i] & 0x7fffffff) >>> 16]++;
  let rest = k;
  let hi = 65535;
  for (; hi > 0; hi--) {
    if (hist[hi] >= rest) break;
    rest -= hist[hi];
  }
  hist.fill(0);
  for (let i = 0; i < bits.length; i++) {
    const a = bits[i] & 0x7fffffff;
    if (a >>> 16 === hi) hist[a & 0xffff]++;
  }
  let lo = 65535;
  for (; lo > 0; lo--) {
    if (hist[lo] >= rest) break;
    rest -= hist[lo];
  }
  return ((hi << 16) | lo) >>> 0;
}

/**
 * DARE "drop and rescale": each entry survives with probability 1 − drop and is then divided
 * by 1 − drop, so the expected task vector is unchanged. In place; one 32-bit draw per entry,
 * in index order, so the mask is a pure function of the generator's state.
 */
export function dropAndRescale(tau: Float32Array, drop: number, rng: Rng): Float32Array {
  if (!(drop >= 0 && drop < 1)) {
    throw new Error(`dropAndRescale: drop must be in [0, 1), got ${drop}`);
  }
  if (drop === 0) return tau;
  const keep = 1 - drop;
  const threshold = keep * 4294967296;
  const scale = 1 / keep;
  for (let i = 0; i < tau.length; i++) {
    tau[i] = rng.nextU32() < threshold ? tau[i] * scale : 0;
  }
  return tau;
}

/**
 * The generator for expert `expert`'s drop mask on tensor `name`. Derived from (seed, name,
 * expert) rather than drawn in sequence, so a mask does not depend on tensor order or on which
 * other tensors were merged.
 */
export function dropRng(seed: number, name: string, expert: number): Rng {
  return new Rng(fnv1a(`dare/${seed}/${expert}/${name}`));
}
