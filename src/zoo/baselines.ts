/**
 * The plain merges a zoo is checked against: the average of the experts and task arithmetic
 * θ₀ + λ Σ τ_k with λ chosen on `opt`. They show whether merging is a real problem here
 * (the average should lose to each expert on its own skill) without being hopeless (some
 * merge should beat the base on several skills at once).
 */
import type { Engine } from "../engine/types.ts";
import { loadGguf } from "../llm/export.ts";
import type { Params } from "../llm/model.ts";
import type { Runner, Skill } from "../skills/types.ts";
import { BASE_NAME, modelPath, type SplitScores, type ZooCard } from "./card.ts";
import { skillScores, withModel } from "./measure.ts";
import { mergeTaskVectors } from "./taskvectors.ts";

export const TASK_ARITHMETIC_LAMBDAS = [0.2, 0.33, 0.5, 0.7, 1.0] as const;

export interface MergeResult {
  name: string;
  /** Weight of each expert's task vector, in the card's skill order. */
  weights: number[];
  scores: Record<string, SplitScores>;
}

export interface BaselineOptions {
  dir: string;
  card: ZooCard;
  skills: Skill[];
  engine: Engine;
  runner: Runner;
  lambdas?: readonly number[];
  log?: (line: string) => void;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

async function scoreMerge(
  o: BaselineOptions,
  base: Params,
  experts: Params[],
  weights: number[],
  splits: ("opt" | "test")[],
): Promise<Record<string, Partial<SplitScores>>> {
  const merged = mergeTaskVectors(base, experts, weights);
  return withModel(o.engine, o.card.config, merged, async (m) => {
    const out: Record<string, Partial<SplitScores>> = {};
    for (const split of splits) {
      const s = await skillScores(m, o.skills, split, { runner: o.runner });
      for (const [k, v] of Object.entries(s)) out[k] = { ...out[k], [split]: v };
    }
    return out;
  });
}

/** Scores the average and the best task-arithmetic λ (chosen on opt, reported on test). */
export async function mergeBaselines(o: BaselineOptions): Promise<MergeResult[]> {
  const log = o.log ?? (() => {});
  const names = o.card.skills;
  const base = (await loadGguf(modelPath(o.dir, o.card, BASE_NAME))).params;
  const experts: Params[] = [];
  for (const n of names) experts.push((await loadGguf(modelPath(o.dir, o.card, n))).params);
  const K = names.length;
  const results: MergeResult[] = [];

  const avgWeights = names.map(() => 1 / K);
  const avg = await scoreMerge(o, base, experts, avgWeights, ["opt", "test"]);
  results.push({
    name: "average",
    weights: avgWeights,
    scores: avg as Record<string, SplitScores>,
  });
  log(`average: ${fmt(avg, names)}`);

  let best: { lambda: number; opt: number; scores: Record<string, Partial<SplitScores>> } | null =
    null;
  for (const lambda of o.lambdas ?? TASK_ARITHMETIC_LAMBDAS) {
    const s = await scoreMerge(
      o,
      base,
      experts,
      names.map(() => lambda),
      ["opt"],
    );
    const optMean = mean(names.map((n) => s[n].opt ?? 0));
    log(`task arithmetic λ=${lambda}: opt ${fmt(s, names)} (mean ${optMean.toFixed(3)})`);
    if (!best || optMean > best.opt) best = { lambda, opt: optMean, scores: s };
  }
  if (best) {
    const w = names.map(() => best.lambda);
    const test = await scoreMerge(o, base, experts, w, ["test"]);
    const scores = Object.fromEntries(
      names.map((n) => [n, { opt: best.scores[n].opt ?? 0, test: test[n].test ?? 0 }]),
    );
    results.push({ name: `task arithmetic λ=${best.lambda}`, weights: w, scores });
  }
  return results;
}

function fmt(s: Record<string, Partial<SplitScores>>, names: string[]): string {
  return names
    .map((n) => {
      const v = s[n];
      const parts = [v.opt, v.test].filter((x) => x !== undefined).map((x) => x.toFixed(2));
      return `${n} ${parts.join("/")}`;
    })
    .join(" ");
}

export interface ZooVerdict {
  /** The average scores clearly (≥ margin) below each expert on that expert's own skill. */
  averageLosesToExperts: boolean;
  /** Names of merges that beat the base on at least two skills at once (test split). */
  mergesAboveBase: string[];
  lines: string[];
}

/** The acceptance checks of the zoo on test scores. */
export function judgeZoo(card: ZooCard, merges: MergeResult[], margin = 0.1): ZooVerdict {
  const lines: string[] = [];
  const avg = merges.find((m) => m.name === "average");
  let averageLosesToExperts = Boolean(avg);
  for (const s of card.skills) {
    const expert = card.models[s].scores[s].test;
    const a = avg?.scores[s].test ?? Number.NaN;
    const ok = a <= expert - margin;
    averageLosesToExperts &&= ok;
    lines.push(
      `${s}: expert ${expert.toFixed(2)} vs average ${a.toFixed(2)} ${ok ? "(average loses)" : "(NOT clearly lower)"}`,
    );
  }
  const base = card.models[BASE_NAME].scores;
  const mergesAboveBase = merges
    .filter((m) => card.skills.filter((s) => m.scores[s].test > base[s].test).length >= 2)
    .map((m) => m.name);
  lines.push(
    mergesAboveBase.length
      ? `above the base on ≥ 2 skills: ${mergesAboveBase.join(", ")}`
      : "no merge beats the base on two or more skills",
  );
  return { averageLosesToExperts, mergesAboveBase, lines };
}
