/**
 * What the three miniature skills share: the one-turn prompt format and lazy, cached splits.
 *
 * Format: "Q: <instruction>\nA: " then the answer on one line, ended by "\n". Generation stops
 * at the first newline, so a tiny model's answer has an unambiguous start and end.
 */
import type { Rng } from "../util/rng.ts";
import { type Candidate, generateSplit, resolveSizes, type SplitSizes } from "./splits.ts";
import { type Problem, SPLITS, type Split } from "./types.ts";

export const MINI_STOP = ["\n"];
export const MINI_TERMINATOR = "\n";
/** Answers are at most ~60 characters; a byte vocabulary makes that ~60 tokens. */
const MINI_MAX_TOKENS = 80;

export function miniPrompt(instruction: string): string {
  return `Q: ${instruction}\nA: `;
}

/** The prompt and answer fields every miniature skill shares. */
export const MINI_FORMAT = {
  format: (p: Problem) => miniPrompt(p.instruction),
  stop: MINI_STOP,
  terminator: MINI_TERMINATOR,
  maxTokens: MINI_MAX_TOKENS,
};

export interface MiniOptions {
  /** Generation seed (default 1). */
  seed?: number;
  sizes?: Partial<SplitSizes>;
}

/** A `problems(split)` function that draws each split once, on first use. */
export function lazySplits<P extends Problem>(
  skill: string,
  opts: MiniOptions,
  sample: (rng: Rng) => Candidate<P>,
): (split: Split) => P[] {
  const seed = opts.seed ?? 1;
  if (!Number.isInteger(seed)) throw new Error(`skill seed must be an integer, got ${seed}`);
  const sizes = resolveSizes(opts.sizes);
  const cache = new Map<Split, P[]>();
  return (split) => {
    if (!SPLITS.includes(split)) {
      throw new Error(`unknown split "${split}"; use one of ${SPLITS.join(", ")}`);
    }
    let ps = cache.get(split);
    if (!ps) {
      ps = generateSplit({ skill, seed, split, size: sizes[split], sample });
      cache.set(split, ps);
    }
    return ps;
  };
}
