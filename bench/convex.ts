/**
 * The reach of crossover: every convex mix θ₀ + Σ a_k τ_k of the zoo's experts (Σ a = 1, a on
 * a grid of step 1/STEPS) scored on opt, and the best few on test, beside task arithmetic
 * θ₀ + λ Σ τ_k with λ chosen on opt. Crossover normalises its weights (Σ a = 1), so without
 * mutation every individual of a search lies in this set, and the aggregate, a softmax-
 * weighted mix of elites, is a mix of such points. Scores are cached under OUT/evals.
 *
 *   node --import tsx bench/convex.ts [--steps 6] [--top 3] [--out bench-out/convex]
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { mergeModels } from "../src/merge/index.ts";
import { smallBudgetConfig } from "../src/run/config.ts";
import { TASK_ARITHMETIC_LAMBDAS } from "../src/zoo/baselines.ts";
import { PassEvaluator } from "./paper/evaluate.ts";

const { values } = parseArgs({
  options: {
    steps: { type: "string", default: "6" },
    top: { type: "string", default: "3" },
    out: { type: "string", default: "bench-out/convex" },
  },
});
const steps = Number(values.steps);
const top = Number(values.top);
if (!(Number.isInteger(steps) && steps >= 1 && Number.isInteger(top) && top >= 1)) {
  throw new Error("usage: bench/convex.ts [--steps N ≥ 1] [--top N ≥ 1] [--out DIR]");
}
const out = values.out as string;
await mkdir(join(out, "models"), { recursive: true });
// The splits of bench:paper, so the rows compare with its table.
const config = { ...smallBudgetConfig(), split: { opt: 48, test: 192 } };
const { skills } = config;
if (skills.length !== 3) throw new Error("bench/convex.ts walks a 3-expert simplex");
const experts = skills.map((s) => config.models.experts[s]);
const ev = await PassEvaluator.create(config, join(out, "evals"));
const fmt = (x: number) => x.toFixed(3);
const t0 = performance.now();

/** θ₀ + λ Σ w_k τ_k, written once, as a GGUF. */
async function mix(name: string, weights: number[], lambda: number): Promise<string> {
  const path = join(out, "models", `${name}.gguf`);
  const base = config.models.base;
  await mergeModels({ method: "task-arithmetic", base, experts, out: path, weights, lambda });
  return path;
}

try {
  const points: { a: number[]; path: string; opt: number }[] = [];
  for (let i = 0; i <= steps; i++) {
    for (let j = 0; j <= steps - i; j++) {
      const a = [i / steps, j / steps, (steps - i - j) / steps];
      const path = await mix(`convex-${i}-${j}-${steps - i - j}`, a, 1);
      points.push({ a, path, opt: (await ev.evaluate(path, "opt")).mean });
    }
  }
  points.sort((x, y) => y.opt - x.opt);
  const ta: { lambda: number; path: string; opt: number }[] = [];
  for (const lambda of TASK_ARITHMETIC_LAMBDAS) {
    const path = await mix(`ta-${lambda}`, [1, 1, 1], lambda);
    ta.push({ lambda, path, opt: (await ev.evaluate(path, "opt")).mean });
  }
  ta.sort((x, y) => y.opt - x.opt);

  console.log(
    `convex mixes of ${skills.join(", ")} on a grid of step 1/${steps}: ${points.length}`,
  );
  console.log(`| model | a (${skills.join(", ")}) | opt mean | test mean | test per skill |`);
  console.log("|---|---|---:|---:|---|");
  const row = async (label: string, a: string, path: string, opt: number) => {
    const t = await ev.evaluate(path, "test");
    const per = skills.map((s) => `${s} ${fmt(t.scores[s])}`).join(", ");
    console.log(`| ${label} | ${a} | ${fmt(opt)} | ${fmt(t.mean)} | ${per} |`);
  };
  for (const [n, p] of points.slice(0, top).entries()) {
    await row(`convex #${n + 1} on opt`, p.a.map((x) => x.toFixed(2)).join(", "), p.path, p.opt);
  }
  const avg = points.find((p) => p.a.every((x) => Math.abs(x - 1 / 3) < 1e-9));
  if (avg) await row("plain average", "1/3 each", avg.path, avg.opt);
  await row(
    `task arithmetic, λ = ${ta[0].lambda} (best on opt)`,
    `${ta[0].lambda} each`,
    ta[0].path,
    ta[0].opt,
  );
  console.log(`\n${((performance.now() - t0) / 1000).toFixed(0)} s`);
} finally {
  await ev.close();
}
