/**
 * Split assignment for generated skills. Every (template, values) combination has a key; a
 * seeded hash of the key puts it in exactly one split, so splits are disjoint by construction
 * and the combinations reserved for `test` never appear anywhere else.
 */
import { fnv1a } from "../util/hash.ts";
import { Rng } from "../util/rng.ts";
import type { Split } from "./types.ts";

/** Out of 20 hash buckets: test 2, opt 2, pretrain 6, train 10. */
const BUCKETS: readonly Split[] = [
  "test",
  "test",
  "opt",
  "opt",
  ...Array<Split>(6).fill("pretrain"),
  ...Array<Split>(10).fill("train"),
];

/** FNV-1a followed by a murmur3 finaliser, so nearby keys land in unrelated buckets. */
function hash32(s: string): number {
  let h = fnv1a(s);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/** The split that owns a combination key under a seed. */
export function splitOf(seed: number, key: string): Split {
  return BUCKETS[hash32(`${seed}|${key}`) % BUCKETS.length];
}

/** A canonical key for a template and its values (phrasing excluded). */
export function comboKey(template: string, values: Record<string, string | number>): string {
  const parts = Object.keys(values)
    .sort()
    .map((k) => `${k}=${values[k]}`);
  return `${template}(${parts.join(",")})`;
}

/** The independent generator of one skill's split, so split sizes never affect each other. */
function splitRng(seed: number, skill: string, split: Split): Rng {
  return new Rng(hash32(`${seed}:${skill}:${split}`));
}

export interface Candidate<P> {
  key: string;
  build(id: string, split: Split): P;
}

export interface SplitSizes {
  pretrain: number;
  train: number;
  opt: number;
  test: number;
}

export const DEFAULT_SIZES: SplitSizes = { pretrain: 4000, train: 4000, opt: 48, test: 96 };

export function resolveSizes(sizes: Partial<SplitSizes> | undefined): SplitSizes {
  const out = { ...DEFAULT_SIZES, ...sizes };
  for (const [k, v] of Object.entries(out)) {
    if (!(Number.isInteger(v) && v >= 0)) {
      throw new Error(`split size ${k} must be a non-negative integer, got ${v}`);
    }
  }
  return out;
}

/**
 * Draws `size` problems of one split, templates in equal shares. `opt` and `test` hold
 * distinct combinations. `pretrain` and `train` may repeat one (with another phrasing and
 * other contents), so that templates with few combinations are not starved of examples.
 */
export function generateSplit<P>(opts: {
  skill: string;
  seed: number;
  split: Split;
  size: number;
  sample: (rng: Rng) => Candidate<P>;
}): P[] {
  const { skill, seed, split, size } = opts;
  const distinct = split === "opt" || split === "test";
  const rng = splitRng(seed, skill, split);
  const seen = new Set<string>();
  const out: P[] = [];
  const maxAttempts = 400 * size + 1000;
  for (let attempts = 0; out.length < size && attempts < maxAttempts; attempts++) {
    const c = opts.sample(rng);
    if (splitOf(seed, c.key) !== split || (distinct && seen.has(c.key))) continue;
    seen.add(c.key);
    out.push(c.build(`${skill}/${split}/${String(out.length).padStart(4, "0")}`, split));
  }
  if (out.length < size) {
    throw new Error(
      `skill ${skill}: only ${out.length} distinct ${split} problems exist for seed ${seed}, ` +
        `${size} were asked for; ask for fewer`,
    );
  }
  return out;
}

/** Picks one element uniformly. */
export function pick<T>(rng: Rng, items: readonly T[]): T {
  return items[rng.int(items.length)];
}

/** `k` distinct elements in random order. */
export function sample<T>(rng: Rng, items: readonly T[], k: number): T[] {
  if (k > items.length) throw new Error(`cannot pick ${k} of ${items.length} items`);
  const a = items.slice();
  for (let i = 0; i < k; i++) {
    const j = i + rng.int(a.length - i);
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a.slice(0, k);
}
