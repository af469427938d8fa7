import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join, relative } from "node:path";
import { mergeModels } from "../../merge/index.ts";
import { writeReport } from "../../report/index.ts";
import { reporter, withInterrupts } from "../../run/cli-support.ts";
import { type RunConfig, smallBudgetConfig, validateConfig, zooPath } from "../../run/config.ts";
import { createInProcessEvaluator } from "../../run/evaluator.ts";
import { evaluatorSetup } from "../../run/model-evaluator.ts";
import { run as runSearch } from "../../run/runner.ts";
import { runFactors } from "../../run/seed-factors.ts";
import { RunStore, type Scores } from "../../run/store.ts";
import { checkSandbox } from "../../sandbox/index.ts";
import { type Command, table, UsageError } from "../command.ts";
import { defaultRunDir } from "./run.ts";

interface Row {
  name: string;
  scores: Scores;
}

/** Scores the reference models (base, experts, plain average) on the held-out test split. */
async function scoreReferences(config: RunConfig, dir: string): Promise<Row[]> {
  const average = join(dir, "average.gguf");
  const experts = config.skills.map((s) => config.models.experts[s]);
  await mergeModels({ method: "linear", base: config.models.base, experts, out: average });
  const factors = await runFactors(config, config.models.base, experts);
  await factors.close();
  const ev = await createInProcessEvaluator(
    evaluatorSetup(config, join(dir, "tmp"), config.models.base, factors.dir),
  );
  try {
    const models: [string, string][] = [
      ["base", config.models.base],
      ...config.skills.map((s): [string, string] => [`${s} expert`, config.models.experts[s]]),
      ["plain average", average],
    ];
    const rows: Row[] = [];
    for (const [name, path] of models) {
      const r = await ev.evaluate({ name, target: { kind: "file", path }, split: "test" });
      rows.push({ name, scores: r.scores });
    }
    return rows;
  } finally {
    await ev.close();
  }
}

function resultTable(skills: string[], rows: Row[]): string {
  return table(
    ["model", ...skills, "mean"],
    rows.map((r) => {
      const xs = skills.map((s) => r.scores[s]?.score ?? Number.NaN);
      const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
      return [r.name, ...xs.map((x) => x.toFixed(2)), mean.toFixed(3)];
    }),
  );
}

export const demo: Command = {
  name: "demo",
  summary: "Run CycleQD end to end on the embedded zoo of tiny models and print the results.",
  usage: "[--generations N] [--workers W] [--seed S] [--out RUN]",
  help: `
Runs the whole method on the embedded default: a tiny LLaMA base and three experts
fine-tuned from it (zoo/), one per miniature agent skill — code (Python functions graded by
their unit tests), os (bash commands graded in a seeded directory) and db (SQL graded
against a real SQLite database). Model output is only ever run inside the sandbox.

The search optimises on the skills' opt split; the final table is on the held-out test
split: base, each expert, the plain average of the experts, the CycleQD aggregate and the
single best elite.

Options:
  --generations N   children to evaluate (default 32: about 2.5 minutes on 2 cores)
  --workers W       evaluation processes (default 1)
  --seed S          the run's seed (default 0)
  --out RUN         the run directory (default runs/<date and time>)`,
  options: {
    generations: { type: "string" },
    workers: { type: "string" },
    seed: { type: "string" },
    out: { type: "string" },
  },
  async run(args) {
    if (!existsSync(zooPath("zoo.json"))) {
      throw new Error(
        `the model zoo is missing (${zooPath("zoo.json")}); build it with \`cycleqd zoo build\``,
      );
    }
    const sandbox = await checkSandbox();
    if (!sandbox.ok) {
      console.error(
        `The sandbox for model-written code cannot be set up here: ${sandbox.problems.join("; ")}`,
      );
      console.error(`Fix: ${sandbox.fix}`);
      return 1;
    }
    const int = (name: string, fallback: number) => {
      const v = args.values[name];
      if (v === undefined) return fallback;
      const n = Number(v);
      if (!Number.isInteger(n)) throw new UsageError(`--${name} must be an integer, got "${v}"`);
      return n;
    };
    const base = smallBudgetConfig();
    const config = validateConfig(
      {
        ...base,
        generations: int("generations", base.generations),
        workers: int("workers", base.workers),
        seed: int("seed", base.seed),
      },
      process.cwd(),
    );
    const out = (args.values.out as string | undefined) ?? defaultRunDir();
    const started = performance.now();
    console.log(
      `CycleQD on the tiny zoo: ${config.skills.join(", ")}; ${config.generations} generations, ` +
        `${config.split.opt} opt problems per skill; run in ${out}\n`,
    );
    const code = await withInterrupts((signal) =>
      runSearch(config, { out, onEvent: reporter("human"), signal }),
    );
    if (code !== 0) return code;
    const searchSeconds = (performance.now() - started) / 1000;

    console.log("\nScoring the reference models on the held-out test split…");
    await mkdir(join(out, "tmp"), { recursive: true });
    const rows = await scoreReferences(config, out);
    const store = await RunStore.open(out, { readonly: true });
    try {
      for (const f of store.finals()) {
        if (f.scoresTest) {
          const ids = f.sources.ids.join(", ");
          const name =
            f.name === "aggregate" ? `CycleQD aggregate (${ids})` : `best elite (${ids})`;
          rows.push({ name, scores: f.scoresTest });
        }
      }
    } finally {
      store.close();
    }
    console.log(`\nHeld-out test scores (${config.split.test} problems per skill):\n`);
    console.log(resultTable(config.skills, rows));
    const rel = (p: string) => relative(process.cwd(), p) || ".";
    const report = await writeReport(out);
    console.log(`
search: ${searchSeconds.toFixed(0)} s, total ${((performance.now() - started) / 1000).toFixed(0)} s
run:    ${rel(out)}   (cycleqd status ${rel(out)})
model:  ${rel(join(out, "model.gguf"))}   (the CycleQD aggregate; cycleqd eval / inspect it)
report: ${rel(report.path)}   (open it in a browser: archives, curves, lineage)`);
    return 0;
  },
};
