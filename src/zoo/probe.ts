/**
 * The mergeability probe: does a zoo leave a model-merging search room to win? On the `opt`
 * split it scores each expert's task vector alone along θ₀ + λτ_k, every pair of experts on a
 * (λ_a, λ_b) grid and task arithmetic θ₀ + λΣτ_k, each on every skill, then runs three checks
 * that LLM zoos pass (flat λ-curves, task vectors that add up) and an interfering zoo fails.
 */
import { existsSync } from "node:fs";
import { createLlamaCppEngine } from "../engine/index.ts";
import type { Engine } from "../engine/types.ts";
import { loadGguf } from "../llm/export.ts";
import type { Params } from "../llm/model.ts";
import { createMiniSkills } from "../skills/index.ts";
import { resolveRunner } from "../skills/runner.ts";
import type { Runner, Skill } from "../skills/types.ts";
import { formatSeconds } from "./build.ts";
import { BASE_NAME, modelPath, readCard } from "./card.ts";
import { skillScores, withModel } from "./measure.ts";
import { mergeTaskVectors, type TaskVectorStats, taskVectorStats } from "./taskvectors.ts";

/** λ of each expert's curve θ₀ + λτ_k. */
export const CURVE_LAMBDAS: readonly number[] = [0.25, 1 / 3, 0.5, 0.75, 1, 1.25, 1.5];
/** λ_a and λ_b of the pairwise grid θ₀ + λ_a τ_a + λ_b τ_b. */
export const GRID_LAMBDAS: readonly number[] = [0.25, 0.5, 0.75, 1];
/** λ of task arithmetic θ₀ + λ Σ τ_k (1/K, the plain average, is always added). */
export const TASK_ARITHMETIC_PROBE_LAMBDAS: readonly number[] = [1 / 3, 0.5, 0.75, 1];

export const PROBE_THRESHOLDS = {
  /** Task arithmetic at λ = 1 keeps this share of each expert's own score. */
  taskArithmeticKeeps: 0.7,
  /** θ₀ + τ_k/K (the expert's share of the plain average) keeps this share of S_k(θ_k). */
  shareKeeps: 0.8,
  /** A pairwise merge beats its bar by more than this many standard errors. */
  standardErrors: 2,
} as const;

export type Scores = Record<string, number>;

export interface CurvePoint {
  lambda: number;
  /** Pass rate per skill on `opt`. */
  scores: Scores;
}

export interface GridPoint {
  /** [λ_a, λ_b], in the order of the pair's experts. */
  lambdas: [number, number];
  scores: Scores;
}

export interface PairGrid {
  experts: [string, string];
  points: GridPoint[];
}

/** What the probe measures; the checks are a pure function of it. */
export interface ProbeMeasurements {
  /** Skill names in the card's order; expert k is named after skill k. */
  skills: string[];
  /** Problems per skill on `opt` (the n of the standard errors). */
  problems: Record<string, number>;
  /** The base θ₀ (the λ = 0 point of every curve). */
  base: Scores;
  /** Per expert, θ₀ + λτ_k by ascending λ; always holds λ = 1/K and λ = 1 (θ_k itself). */
  curves: Record<string, CurvePoint[]>;
  /** Every pair of experts, in card order, on the full λ_a × λ_b grid. */
  grid: PairGrid[];
  /** θ₀ + λ Σ τ_k by ascending λ; always holds λ = 1/K (the plain average) and λ = 1. */
  taskArithmetic: CurvePoint[];
}

export interface KeepCheck {
  /** λ of the merge that is compared with each expert. */
  lambda: number;
  /** The share of the expert's own score the merge must keep. */
  threshold: number;
  /** Per skill k: the merge's score on k, S_k(θ_k), their ratio (null when S_k(θ_k) = 0). */
  perSkill: Record<string, { score: number; own: number; ratio: number | null; pass: boolean }>;
  pass: boolean;
}

export interface SkillMargin {
  /** S_s(m): the merge's pass rate on skill s. */
  score: number;
  /** S_s of the plain average. */
  average: number;
  /** S_s of the pair's other expert (its off-skill score). */
  other: number;
  /** score − max(average, other). */
  margin: number;
  /** sqrt(p(1−p)/n) with p = score and n the opt problems of s. */
  se: number;
  pass: boolean;
}

export interface PairVerdict {
  experts: [string, string];
  /**
   * The grid merge whose weaker skill clears its bar by the most, i.e. the largest
   * min over s ∈ {a, b} of margin_s − k·SE_s; null only for an empty grid.
   */
  best: { lambdas: [number, number]; margins: Record<string, SkillMargin> } | null;
  /** Whether that merge beats the bar on both skills. */
  beats: boolean;
}

export interface ProbeChecks {
  /** Task arithmetic of all experts at λ = 1 against each expert on its own skill. */
  taskArithmetic: KeepCheck;
  /** θ₀ + τ_k/K against θ_k on skill k. */
  share: KeepCheck;
  pairs: { standardErrors: number; perPair: PairVerdict[]; pass: boolean };
}

export interface ProbeResult extends ProbeMeasurements {
  dir: string;
  /** Storage type the merges were scored in (the zoo's own, so λ = 0 and 1 are its files). */
  dtype: "F16" | "F32";
  stats: TaskVectorStats;
  checks: ProbeChecks;
  /** Models scored. */
  models: number;
  seconds: number;
}

export interface ProbeProgress {
  /** Models scored so far, of `total`. */
  done: number;
  total: number;
  /** What was scored, e.g. "code λ=0.5" or "code+os λ=(0.25, 1)". */
  model: string;
  scores: Scores;
}

export interface ProbeOptions {
  /** A zoo directory (with zoo.json). */
  dir: string;
  /** λ of the single-expert curves (default CURVE_LAMBDAS; 1/K and 1 are always added). */
  lambdas?: readonly number[];
  /** λ_a and λ_b of the pairwise grid (default GRID_LAMBDAS). */
  grid?: readonly number[];
  /** λ of task arithmetic (default TASK_ARITHMETIC_PROBE_LAMBDAS; 1/K and 1 always added). */
  taskArithmetic?: readonly number[];
  /** Default: the miniature skills drawn from the card's seed. */
  skills?: Skill[];
  /** Default: llama.cpp with one thread, disposed at the end. */
  engine?: Engine;
  /** Grade with this runner instead of the sandbox. */
  runner?: Runner;
  /** Grade model output without a sandbox when none works (dangerous). */
  unsafe?: boolean;
  onProgress?: (p: ProbeProgress) => void;
}

const EPS = 1e-9;
const sameLambda = (a: number, b: number) => Math.abs(a - b) < EPS;

/** λ as typed: 0.25, 1/3, 1.5. */
export function formatLambda(x: number): string {
  if (Math.abs(x - Number(x.toFixed(3))) < EPS) return String(Number(x.toFixed(3)));
  for (let d = 2; d <= 12; d++) {
    const n = Math.round(x * d);
    if (Math.abs(x * d - n) < EPS) return `${n}/${d}`;
  }
  return x.toFixed(3);
}

/** Sorted, without duplicates, every λ a positive number; `extra` are added. */
function lambdaList(what: string, xs: readonly number[], extra: number[] = []): number[] {
  for (const x of xs) {
    if (!(typeof x === "number" && Number.isFinite(x) && x > 0)) {
      throw new Error(`${what}: every λ must be a positive number, got ${String(x)}`);
    }
  }
  const out: number[] = [];
  for (const x of [...xs, ...extra].sort((a, b) => a - b)) {
    if (!out.some((y) => sameLambda(x, y))) out.push(x);
  }
  return out;
}

function pointAt<T extends { lambda: number }>(points: T[], lambda: number, what: string): T {
  const p = points.find((q) => sameLambda(q.lambda, lambda));
  if (!p) {
    throw new Error(`${what} has no point at λ = ${formatLambda(lambda)}; the checks need it`);
  }
  return p;
}

function keepCheck(
  skills: string[],
  lambda: number,
  threshold: number,
  merged: (k: string) => number,
  own: (k: string) => number,
): KeepCheck {
  const perSkill: KeepCheck["perSkill"] = {};
  for (const k of skills) {
    const score = merged(k);
    const o = own(k);
    perSkill[k] = {
      score,
      own: o,
      ratio: o > 0 ? score / o : null,
      pass: score >= threshold * o,
    };
  }
  return { lambda, threshold, perSkill, pass: skills.every((k) => perSkill[k].pass) };
}

/** sqrt(p(1−p)/n): the standard error of a pass rate p on n problems. */
export function standardError(p: number, n: number): number {
  return n > 0 ? Math.sqrt((p * (1 - p)) / n) : Number.POSITIVE_INFINITY;
}

/**
 * The three checks on measured scores (thresholds as in PROBE_THRESHOLDS):
 * 1. task arithmetic at λ = 1 keeps ≥ 0.7 of each expert's own score (no destructive
 *    interference when the task vectors are added whole);
 * 2. S_k(θ₀ + τ_k/K) ≥ 0.8 · S_k(θ_k) (a curve flat enough that the expert's share of the plain
 *    average still carries its skill; τ_k/3 for three experts);
 * 3. for some pair (a, b) some grid merge m has, for both s ∈ {a, b},
 *    S_s(m) − max(S_s(average), S_s(θ_other)) > 2·SE, SE = sqrt(p(1−p)/n) with p = S_s(m) and
 *    n the opt problems of s, θ_other the pair's expert for the other skill: a merge holds two
 *    skills better than averaging or either expert alone does.
 */
export function judgeProbe(m: ProbeMeasurements, t = PROBE_THRESHOLDS): ProbeChecks {
  const K = m.skills.length;
  const curveAt = (k: string, lambda: number) => {
    const c = m.curves[k];
    if (!c) throw new Error(`the probe has no curve for expert ${k}`);
    return pointAt(c, lambda, `the curve of ${k}`).scores;
  };
  /** S_s(θ_k): expert k (its λ = 1 point) on skill s. */
  const expert = (k: string, s: string) => curveAt(k, 1)[s];
  const own = (k: string) => expert(k, k);
  const ta1 = pointAt(m.taskArithmetic, 1, "task arithmetic").scores;
  const average = pointAt(m.taskArithmetic, 1 / K, "task arithmetic").scores;

  const taskArithmetic = keepCheck(m.skills, 1, t.taskArithmeticKeeps, (k) => ta1[k], own);
  const share = keepCheck(m.skills, 1 / K, t.shareKeeps, (k) => curveAt(k, 1 / K)[k], own);

  const perPair = m.grid.map((g): PairVerdict => {
    const [a, b] = g.experts;
    const otherOf: Record<string, string> = { [a]: b, [b]: a };
    let best: PairVerdict["best"] = null;
    let bestSlack = Number.NEGATIVE_INFINITY;
    for (const p of g.points) {
      const margins: Record<string, SkillMargin> = {};
      // How far the weaker of the two skills clears its bar, in score units.
      let slack = Number.POSITIVE_INFINITY;
      for (const s of [a, b]) {
        const score = p.scores[s];
        const other = expert(otherOf[s], s);
        const margin = score - Math.max(average[s], other);
        const se = standardError(score, m.problems[s]);
        const pass = margin > t.standardErrors * se;
        margins[s] = { score, average: average[s], other, margin, se, pass };
        slack = Math.min(slack, margin - t.standardErrors * se);
      }
      if (best === null || slack > bestSlack) {
        bestSlack = slack;
        best = { lambdas: p.lambdas, margins };
      }
    }
    const beats = best !== null && Object.values(best.margins).every((x) => x.pass);
    return { experts: [a, b], best, beats };
  });

  return {
    taskArithmetic,
    share,
    pairs: { standardErrors: t.standardErrors, perPair, pass: perPair.some((p) => p.beats) },
  };
}

/** Pairs (a, b) of experts, a before b in the card's order. */
function pairsOf(names: string[]): [string, string][] {
  return names.flatMap((a, i) => names.slice(i + 1).map((b): [string, string] => [a, b]));
}

/** The card's skills, in its order, from `skills`. */
function skillsOfCard(names: string[], skills: Skill[]): Skill[] {
  return names.map((n) => {
    const s = skills.find((x) => x.name === n);
    if (!s) {
      throw new Error(
        `the zoo has an expert for skill ${n} but no such skill was given (${skills.map((x) => x.name).join(", ")})`,
      );
    }
    return s;
  });
}

/** Scores the curves, the pairwise grid and task arithmetic of a zoo on `opt`, then checks them. */
export async function probeZoo(o: ProbeOptions): Promise<ProbeResult> {
  const t0 = performance.now();
  if (!existsSync(o.dir)) throw new Error(`${o.dir}: no such directory`);
  const card = await readCard(o.dir).catch((e: Error) => {
    throw new Error(`${o.dir} is not a cycleqd zoo: ${e.message}`);
  });
  const names = card.skills;
  const K = names.length;
  if (K < 2) throw new Error(`the zoo in ${o.dir} has ${K} expert; merging needs at least two`);
  // The checks read the λ = 1/K and λ = 1 points, so these are always scored.
  const lambdas = lambdaList("lambdas", o.lambdas ?? CURVE_LAMBDAS, [1 / K, 1]);
  const grid = lambdaList("grid", o.grid ?? GRID_LAMBDAS);
  if (!grid.length) throw new Error("grid: needs at least one λ");
  const taLambdas = lambdaList(
    "taskArithmetic",
    o.taskArithmetic ?? TASK_ARITHMETIC_PROBE_LAMBDAS,
    [1 / K, 1],
  );
  const skills = skillsOfCard(names, o.skills ?? createMiniSkills({ seed: card.seed }));
  const problems = Object.fromEntries(skills.map((s) => [s.name, s.problems("opt").length]));
  for (const s of skills) {
    if (!problems[s.name]) throw new Error(`skill ${s.name} has no opt problems to score on`);
  }
  // Fail before any model is scored when answers could not be graded safely.
  const runner = o.runner ?? (await resolveRunner({ unsafe: o.unsafe }));

  const base = (await loadGguf(modelPath(o.dir, card, BASE_NAME))).params;
  const experts: Params[] = [];
  for (const n of names) experts.push((await loadGguf(modelPath(o.dir, card, n))).params);
  const stats = taskVectorStats(base, Object.fromEntries(names.map((n, i) => [n, experts[i]])));
  // Merges are written in the zoo's own storage type: θ₀ + 1·τ_k is then the expert's file
  // bit for bit, and the curves' end points are the scores on the card.
  const dtype = card.recipe?.dtype ?? "F32";

  const pairs = pairsOf(names);
  const total = 1 + K * lambdas.length + pairs.length * grid.length ** 2 + taLambdas.length;
  const engine = o.engine ?? (await createLlamaCppEngine({ threads: 1 }));
  let done = 0;
  const score = async (model: string, weights: number[]): Promise<Scores> => {
    const merged = mergeTaskVectors(base, experts, weights);
    const scores = await withModel(
      engine,
      card.config,
      merged,
      (m) => skillScores(m, skills, "opt", { runner }),
      dtype,
    );
    done++;
    o.onProgress?.({ done, total, model, scores });
    return scores;
  };
  const weightsOf = (w: Record<string, number>) => names.map((n) => w[n] ?? 0);

  try {
    const baseScores = await score(BASE_NAME, weightsOf({}));
    const curves: Record<string, CurvePoint[]> = {};
    for (const k of names) {
      curves[k] = [];
      for (const lambda of lambdas) {
        const scores = await score(`${k} λ=${formatLambda(lambda)}`, weightsOf({ [k]: lambda }));
        curves[k].push({ lambda, scores });
      }
    }
    const gridResults: PairGrid[] = [];
    for (const [a, b] of pairs) {
      const points: GridPoint[] = [];
      for (const la of grid) {
        for (const lb of grid) {
          const label = `${a}+${b} λ=(${formatLambda(la)}, ${formatLambda(lb)})`;
          points.push({
            lambdas: [la, lb],
            scores: await score(label, weightsOf({ [a]: la, [b]: lb })),
          });
        }
      }
      gridResults.push({ experts: [a, b], points });
    }
    const taskArithmetic: CurvePoint[] = [];
    for (const lambda of taLambdas) {
      const label = `task arithmetic λ=${formatLambda(lambda)}`;
      taskArithmetic.push({
        lambda,
        scores: await score(
          label,
          names.map(() => lambda),
        ),
      });
    }
    const measured: ProbeMeasurements = {
      skills: names,
      problems,
      base: baseScores,
      curves,
      grid: gridResults,
      taskArithmetic,
    };
    return {
      dir: o.dir,
      dtype,
      ...measured,
      stats,
      checks: judgeProbe(measured),
      models: done,
      seconds: (performance.now() - t0) / 1000,
    };
  } finally {
    if (!o.engine) await engine.dispose();
  }
}

/** A markdown table, padded so that it also reads well in a terminal. */
function markdownTable(header: string[], rows: string[][]): string {
  const widths = header.map((_, i) => Math.max(...[header, ...rows].map((r) => r[i].length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i])).join(" | ")} |`;
  const rule = `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`;
  return [line(header), rule, ...rows.map(line)].join("\n");
}

const f2 = (x: number) => x.toFixed(2);
const signed = (x: number) => (x >= 0 ? "+" : "−") + Math.abs(x).toFixed(2);
const meanOf = (skills: string[], s: Scores) =>
  skills.reduce((a, k) => a + s[k], 0) / skills.length;
const scoreCells = (skills: string[], s: Scores) => [
  ...skills.map((k) => f2(s[k])),
  meanOf(skills, s).toFixed(3),
];

function formatKeep(title: string, c: KeepCheck): string[] {
  const parts = Object.entries(c.perSkill).map(
    ([k, v]) =>
      `${k} ${f2(v.score)}/${f2(v.own)} = ${v.ratio === null ? "-" : f2(v.ratio)}${v.pass ? "" : " ✗"}`,
  );
  return [`- [${c.pass ? "PASS" : "FAIL"}] ${title}`, `  ${parts.join(", ")}`];
}

/** The probe as markdown: own scores, task vectors, curves, pair grids, task arithmetic, checks. */
export function formatProbe(r: ProbeResult): string {
  const { skills } = r;
  const K = skills.length;
  const k = r.checks.pairs.standardErrors;
  const head = ["model", ...skills, "mean"];
  const n = skills.map((s) => `${s} ${r.problems[s]}`).join(", ");
  const out: string[] = [
    `Mergeability probe of the zoo in ${r.dir}: ${K} experts, opt split (problems: ${n});`,
    `${r.models} models scored in ${formatSeconds(r.seconds)}, written as ${r.dtype} like the zoo.`,
    "",
    "Base and experts (the λ = 0 and λ = 1 points of every curve):",
    "",
    markdownTable(head, [
      [BASE_NAME, ...scoreCells(skills, r.base)],
      ...skills.map((e) => [
        `${e} expert`,
        ...scoreCells(skills, pointAt(r.curves[e], 1, e).scores),
      ]),
    ]),
    "",
    `Task vectors: ‖τ_k‖/‖θ₀‖ ${skills.map((s) => `${s} ${r.stats.relative[s].toFixed(3)}`).join(", ")}`,
    `              cos(τ_a, τ_b) ${Object.entries(r.stats.cosines)
      .map(([p, c]) => `${p.replace(",", "·")} ${c.toFixed(2)}`)
      .join(", ")}`,
    "",
    "Each expert alone, θ₀ + λ τ_k, on every skill:",
    "",
    markdownTable(
      ["expert", "λ", ...skills, "mean"],
      skills.flatMap((e) =>
        r.curves[e].map((p) => [e, formatLambda(p.lambda), ...scoreCells(skills, p.scores)]),
      ),
    ),
  ];
  for (const g of r.grid) {
    const [a, b] = g.experts;
    const la = [...new Set(g.points.map((p) => p.lambdas[0]))];
    const lb = [...new Set(g.points.map((p) => p.lambdas[1]))];
    const cell = (x: number, y: number) => {
      const p = g.points.find((q) => q.lambdas[0] === x && q.lambdas[1] === y);
      return p ? skills.map((s) => f2(p.scores[s])).join(" / ") : "";
    };
    out.push(
      "",
      `Pair ${a}+${b}, θ₀ + λ_${a} τ_${a} + λ_${b} τ_${b} (cells: ${skills.join(" / ")}):`,
      "",
      markdownTable(
        [`λ_${a} \\ λ_${b}`, ...lb.map(formatLambda)],
        la.map((x) => [formatLambda(x), ...lb.map((y) => cell(x, y))]),
      ),
    );
  }
  out.push(
    "",
    `Task arithmetic of all experts, θ₀ + λ Σ τ_k (λ = ${formatLambda(1 / K)} is the plain average):`,
    "",
    markdownTable(
      ["λ", ...skills, "mean"],
      r.taskArithmetic.map((p) => [formatLambda(p.lambda), ...scoreCells(skills, p.scores)]),
    ),
    "",
    "Checks (score / the expert's own score = ratio):",
    ...formatKeep(
      `task arithmetic at λ = 1 keeps ≥ ${r.checks.taskArithmetic.threshold} of each expert's own score`,
      r.checks.taskArithmetic,
    ),
    ...formatKeep(
      `θ₀ + τ_k/${K} keeps ≥ ${r.checks.share.threshold} of S_k(θ_k) on skill k`,
      r.checks.share,
    ),
    `- [${r.checks.pairs.pass ? "PASS" : "FAIL"}] a merge m of some pair (a, b) beats the plain ` +
      "average and the pair's other expert",
    `  on a and on b by more than ${k} SE:`,
    `  margin_s = S_s(m) − max(S_s(average), S_s(θ_other)) > ${k}·SE, SE = sqrt(p(1−p)/n),`,
    "  p = S_s(m), n = opt problems of s. Per pair, the merge whose weaker skill clears its bar",
    "  by the most:",
  );
  for (const v of r.checks.pairs.perPair) {
    const pair = v.experts.join("+");
    if (!v.best) {
      out.push(`  ${pair}: no grid`);
      continue;
    }
    const lam = `λ = (${v.best.lambdas.map(formatLambda).join(", ")})`;
    out.push(`  ${pair}: ${v.beats ? `beats at ${lam}` : `none beats; closest ${lam}`}`);
    const width = Math.max(...v.experts.map((s) => s.length));
    for (const [s, m] of Object.entries(v.best.margins)) {
      out.push(
        `    ${s.padEnd(width)} ${f2(m.score)} vs max(average ${f2(m.average)}, other ${f2(m.other)}): ` +
          `margin ${signed(m.margin)} ${m.pass ? ">" : "≤"} ${k} SE ${f2(k * m.se)}`,
      );
    }
  }
  const passed = [r.checks.taskArithmetic, r.checks.share, r.checks.pairs].filter((c) => c.pass);
  out.push("", `${passed.length} of 3 checks pass.`);
  return out.join("\n");
}
