/**
 * The bench's output: the paired bootstrap of CycleQD's aggregate against each baseline,
 * paper.md (tables, notes, settings, wall time), paper.json (every number) and paper.svg.
 */
import { DEFAULT_DENSITY, DEFAULT_DROP, DEFAULT_LAMBDA } from "../../src/merge/index.ts";
import { TASK_ARITHMETIC_LAMBDAS } from "../../src/zoo/baselines.ts";
import { type BootstrapResult, pairedBootstrap } from "./bootstrap.ts";
import { passVector, type Row, type Stat, seeded, summarise } from "./rows.ts";
import type { PaperSettings, Variant } from "./settings.ts";
import type { Bar } from "./svg.ts";

/** The rows the aggregate is tested against, in table order. */
export const BOOTSTRAP_BASELINES = ["average", "task-arithmetic", "ties", "dare", "mixed-ft"];

export interface Comparison extends BootstrapResult {
  baseline: string;
  name: string;
}

export function compareAll(rows: readonly Row[], skills: string[], s: PaperSettings): Comparison[] {
  const byId = new Map(rows.map((r) => [r.id, r]));
  const agg = byId.get("cycleqd");
  if (!agg) throw new Error("no CycleQD row to compare");
  const a = passVector(agg, skills);
  const ids = [...BOOTSTRAP_BASELINES, ...skills.map((k) => `expert:${k}`)];
  return ids.flatMap((id) => {
    const row = byId.get(id);
    if (!row) return [];
    const r = pairedBootstrap(a, passVector(row, skills), s.bootstrap);
    return [{ baseline: id, name: row.name, ...r }];
  });
}

/** "0.392 ± 0.012" for a row with several seeds, "0.392" for a deterministic one (std 0). */
export function cell(x: Stat, isSeeded: boolean): string {
  return isSeeded && x.n > 1 ? `${x.mean.toFixed(3)} ± ${x.std.toFixed(3)}` : x.mean.toFixed(3);
}

const pValue = (c: Comparison) =>
  c.p === 0 ? `< ${(1 / c.resamples).toExponential(0)}` : c.p.toFixed(4);
const signed = (x: number) => `${x >= 0 ? "+" : ""}${x.toFixed(3)}`;

/** A markdown table; the first `text` columns are left-aligned, the numbers right-aligned. */
function mdTable(header: string[], rows: string[][], text = 1): string {
  return [
    `| ${header.join(" | ")} |`,
    `|${header.map((_, i) => (i < text ? "---" : "---:")).join("|")}|`,
    ...rows.map((r) => `| ${r.join(" | ")} |`),
  ].join("\n");
}

export interface ReportInput {
  settings: PaperSettings;
  zooDir: string;
  rows: Row[];
  /** Ablation steps with the id of the row that holds each. */
  ablations: { variant: Variant; rowId: string }[];
  comparisons: Comparison[];
  wallSeconds: Record<string, number>;
  totalSeconds: number;
}

export function markdown(r: ReportInput): string {
  const { settings: s, rows } = r;
  const skills = s.run.skills;
  const byId = new Map(rows.map((x) => [x.id, x]));
  const main = rows.filter((x) => x.kind !== "ablation");
  const line = (x: Row) => {
    const t = summarise(x, "test", skills);
    return [x.name, ...skills.map((k) => cell(t[k], seeded(x))), cell(t.mean, seeded(x))];
  };
  const ablation = r.ablations.map(({ variant: v, rowId }) => {
    const x = byId.get(rowId) as Row;
    const t = summarise(x, "test", skills);
    return [
      v.label,
      v.cycling,
      v.mutation,
      v.sampling,
      ...skills.map((k) => cell(t[k], seeded(x))),
      cell(t.mean, seeded(x)),
      v.paperAverage.toFixed(1),
    ];
  });
  const n = rows.find((x) => x.id === "cycleqd")?.results[0].test.passes;
  const problems = n ? Object.values(n).reduce((a, p) => a + p.length, 0) : 0;
  const ta = byId.get("task-arithmetic")?.detail;
  const mixed = byId.get("mixed-ft")?.detail as Record<string, unknown> & {
    expertBudget: { steps: number; tokens: number };
  };
  const c = s.run;
  const seedsText = s.seeds.join(", ");
  const parts = [
    "# CycleQD: the paper's table in miniature",
    "",
    `Zoo ${r.zooDir}; skills ${skills.join(", ")}. Every score is a pass rate on the held-out ` +
      `test split (${s.testSize} problems per skill${s.testSize < s.testSizeRequested ? `, the most the skills have; ${s.testSizeRequested} were asked for` : ""}); ` +
      `the searches optimise on opt (${c.split.opt} per skill). Seeded rows show mean ± sample std ` +
      `over seeds ${seedsText}; a single number is a deterministic row (one model, std 0).` +
      (s.quick ? " **Quick mode: a check that every row is produced, not a result.**" : ""),
    "",
    "## Main table",
    "",
    mdTable(["model", ...skills, "mean"], main.map(line)),
    "",
    `## Ablations (aggregate model; ${c.generations} children each)`,
    "",
    mdTable(
      ["step", "cycling", "mutation", "sampling", ...skills, "mean", "paper avg (%)"],
      ablation,
      4,
    ),
    "",
    "## Paired bootstrap: CycleQD aggregate against each baseline",
    "",
    `Per test problem (${problems} in all): the aggregate's pass rate over the seeds minus the ` +
      `baseline's (over its seeds where it has them); problems resampled with replacement ` +
      `${s.bootstrap.resamples.toLocaleString("en-US")} times (seed ${s.bootstrap.seed}). ` +
      "p is the one-sided share of resamples with mean difference ≤ 0.",
    "",
    mdTable(
      ["baseline", "mean diff", "95% CI", "p (diff ≤ 0)"],
      r.comparisons.map((x) => [
        x.name,
        signed(x.meanDiff),
        `[${signed(x.ci95[0])}, ${signed(x.ci95[1])}]`,
        pValue(x),
      ]),
    ),
    "",
    "## Notes",
    "",
    `- Task arithmetic θ₀ + λ Σ τ_k: λ chosen on opt from ${TASK_ARITHMETIC_LAMBDAS.join(", ")} ` +
      `(opt means ${((ta?.optMeanByLambda as { lambda: number; opt: number }[]) ?? []).map((x) => `${x.lambda}: ${x.opt.toFixed(3)}`).join(", ")}).`,
    `- TIES: each τ_k trimmed to its top ${DEFAULT_DENSITY} share by magnitude (density), signs elected, agreeing entries averaged; λ ${DEFAULT_LAMBDA}.`,
    `- DARE: each entry of τ_k dropped with probability ${DEFAULT_DROP} and the rest rescaled by 1/(1 − p), then summed with λ ${DEFAULT_LAMBDA}; one drop mask per seed.`,
    mixed
      ? `- Mixed-data fine-tune: the base trained on all skills' train data together, ${mixed.steps} updates ` +
        `(the experts: ${mixed.expertBudget.steps} together) of ${mixed.batchSize} × ≤${mixed.seqLen} tokens, ` +
        `lr ${mixed.lr}, warmup ${mixed.warmupSteps}, seed ${mixed.seed}; ${mixed.tokensEstimated ? "about " : ""}` +
        `${mixed.tokens} tokens against the experts' ${mixed.expertBudget.tokens}.`
      : "",
    "- CycleQD aggregate: θ₀ + Σ_k β_k τ_k* over each archive's best elite, β = softmax of their qualities; " +
      "best elite: the elite with the best mean opt score.",
    `- Ablation (a) keeps ${skills[0]} as the quality for every child (flipInterval = children); ` +
      "(b)–(e) cycle the roles every flipInterval children. Paper averages are the paper's Llama-3-8B numbers, for shape only.",
    "",
    "## Settings",
    "",
    mdTable(
      ["setting", "value"],
      [
        ["seeds", seedsText],
        ["children per search", String(c.generations)],
        ["problems per skill (opt / test)", `${c.split.opt} / ${s.testSize}`],
        ["crossover ω ~ N(μ, σ²)", `μ ${c.crossover.mu}, σ ${c.crossover.sigma}`],
        ["SVD mutation", `w_max ${c.mutation.wMax}, rank ${c.mutation.rank}`],
        ["Gaussian mutation σ", String(c.mutation.sigma)],
        ["elite sampling α", `${c.sampling.alphaLow} .. ${c.sampling.alphaHigh}`],
        [
          "archive",
          `${c.archive.bins} bins per axis, ranges ${c.archive.ranges === "paper" ? "paper rule" : JSON.stringify(c.archive.ranges)}`,
        ],
        ["flipInterval (cyclic variants)", String(c.flipInterval)],
        ["workers / engine parallel", `${c.workers} / ${c.engine.parallel}`],
      ],
      2,
    ),
    "",
    "## Wall time (this invocation; reused results cost nothing)",
    "",
    mdTable(
      ["part", "seconds"],
      [
        ...Object.entries(r.wallSeconds).map(([k, v]) => [k, v.toFixed(0)]),
        ["total", r.totalSeconds.toFixed(0)],
      ],
    ),
    "",
  ];
  return parts.filter((p, i) => !(p === "" && parts[i - 1] === "")).join("\n");
}

/** Everything, per seed included, for paper.json. */
export function jsonReport(r: ReportInput, extra: Record<string, unknown>): unknown {
  const skills = r.settings.run.skills;
  return {
    format: "cycleqd-paper-bench-v1",
    ...extra,
    settings: {
      ...r.settings,
      merges: {
        taskArithmeticLambdas: TASK_ARITHMETIC_LAMBDAS,
        ties: { density: DEFAULT_DENSITY, lambda: DEFAULT_LAMBDA, normalize: true },
        dare: { drop: DEFAULT_DROP, lambda: DEFAULT_LAMBDA, normalize: false },
      },
    },
    rows: r.rows.map((x) => ({
      id: x.id,
      name: x.name,
      kind: x.kind,
      deterministic: !seeded(x),
      seeds: x.results.map((y) => y.seed),
      test: summarise(x, "test", skills),
      opt: summarise(x, "opt", skills),
      perSeed: x.results,
      detail: x.detail ?? null,
    })),
    ablations: r.ablations.map(({ variant, rowId }) => ({ ...variant, row: rowId })),
    bootstrap: r.comparisons,
    wallSeconds: r.wallSeconds,
    totalSeconds: r.totalSeconds,
  };
}

export function chartBars(r: ReportInput): Bar[] {
  const skills = r.settings.run.skills;
  return r.rows.map((x) => {
    const m = summarise(x, "test", skills).mean;
    return { label: x.name, mean: m.mean, std: m.std, kind: x.kind };
  });
}
