/**
 * Where a search's time goes, old evaluation path against new in one run. Runs the same
 * short CycleQD search twice (one worker, in process, the same seed) on the shipped zoo, or
 * on tiny random models when the zoo is not built: old (one sandbox per answer, the axpy
 * materialisation kernel, node-llama-cpp's evaluate loop) and new (grading lanes, the
 * certified float64 GEMM, the batch decode loop). Prints the mean time per
 * generation of both side by side, split into select, crossover, mutation, materialise,
 * model load, the runner's own bookkeeping (tell, store commit) and evaluation (generation
 * with answers graded alongside, and the grading left after the last answer); the share of
 * everything but evaluation; whether both gave every child the same scores; and the bytes of
 * a genome against a full checkpoint.
 *
 * `node --import tsx bench/search.ts [GENERATIONS] [--tiny]`
 */
import { existsSync } from "node:fs";
import { mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { openFactors } from "../src/materialise/index.ts";
import { genomeByteSize } from "../src/qd/index.ts";
import { zooPath } from "../src/run/config.ts";
import { createInProcessEvaluator } from "../src/run/evaluator.ts";
import { type RunEvent, run, validateConfig } from "../src/run/index.ts";
import { writeTinyZoo } from "../test/run-fixtures.ts";

const SHIPPED_ZOO_DIR = dirname(zooPath("zoo.json"));
const args = process.argv.slice(2);
const generations = Number(args.find((a) => /^\d+$/.test(a)) ?? 9);
const zooReady = ["base", "code", "os", "db"].every((m) =>
  existsSync(join(SHIPPED_ZOO_DIR, `${m}.gguf`)),
);
const useZoo = zooReady && !args.includes("--tiny");

const work = await mkdtemp(join(tmpdir(), "cycleqd-bench-search-"));
try {
  const modelDir = useZoo ? SHIPPED_ZOO_DIR : work;
  if (!useZoo) await writeTinyZoo(work);
  const configFor = (grading: "single" | "batch") =>
    validateConfig(
      {
        models: {
          base: join(modelDir, "base.gguf"),
          experts: Object.fromEntries(
            ["code", "os", "db"].map((s) => [s, join(modelDir, `${s}.gguf`)]),
          ),
        },
        generations,
        workers: 1,
        seed: 1,
        grading,
        // Tiny random models get a small split; the zoo the default one.
        ...(useZoo ? {} : { split: { opt: 4, test: 2 } }),
        final: { evaluate: false, writeModel: false },
        cacheDir: join(work, "cache"),
      },
      work,
    );

  // Old: one sandbox per answer and the axpy materialisation kernel; new: grading lanes and
  // the certified GEMM. The same seed, so the same children.
  const variants = [
    { name: "old", grading: "single", kernel: "axpy", decodeLoop: "evaluate" },
    { name: "new", grading: "batch", kernel: "certified", decodeLoop: "batch" },
  ] as const;
  const results: { rows: [string, number][]; total: number; wallS: number; scores: string[] }[] =
    [];
  let factorMs = 0;
  for (const v of variants) {
    const config = configFor(v.grading);
    const children: Extract<RunEvent, { type: "child" }>[] = [];
    const gaps: number[] = [];
    let last = 0;
    const t0 = performance.now();
    await run(config, {
      out: join(work, `run-${v.name}`),
      createEvaluator: (setup) =>
        createInProcessEvaluator({
          ...setup,
          materialiseKernel: v.kernel,
          decodeLoop: v.decodeLoop,
        }),
      onEvent: (e) => {
        const now = performance.now();
        if (e.type === "factors") factorMs = Math.max(factorMs, e.ms);
        if (e.type === "archives") last = now;
        if (e.type === "child") {
          children.push(e);
          gaps.push(now - last);
          last = now;
        }
      },
    });
    const wallS = (performance.now() - t0) / 1000;
    const mean = (f: (e: (typeof children)[number]) => number) =>
      children.reduce((s, e) => s + f(e), 0) / children.length;
    const t = {
      select: mean((e) => e.timings.select),
      crossover: mean((e) => e.timings.crossover),
      mutate: mean((e) => e.timings.mutate),
      materialise: mean((e) => e.timings.materialise),
      load: mean((e) => e.timings.load),
      generate: mean((e) => e.timings.generate),
      grade: mean((e) => e.timings.grade),
    };
    const perGeneration = gaps.reduce((s, x) => s + x, 0) / gaps.length;
    const accounted = t.select + t.crossover + t.mutate + mean((e) => e.timings.evaluate);
    // Tell, the store's commit (one fsync), events: what the wall clock shows beyond the steps.
    const bookkeeping = Math.max(0, perGeneration - accounted);
    const rows: [string, number][] = [
      ["select", t.select],
      ["crossover", t.crossover],
      ["mutation", t.mutate],
      ["materialise", t.materialise],
      ["model load", t.load],
      ["tell + commit", bookkeeping],
      // Answers are graded while the rest still decode; what is left after the last one is
      // the grading tail.
      ["evaluate: generation (grading alongside)", t.generate],
      ["evaluate: grading after the last answer", t.grade],
    ];
    const scores = children.map((e) =>
      Object.values(e.scores)
        .map((x) => x.score.toFixed(3))
        .join("/"),
    );
    results.push({ rows, total: rows.reduce((s, [, x]) => s + x, 0), wallS, scores });
  }

  const cache = configFor("batch").cacheDir as string;
  const factors = await openFactors(join(cache, await firstDir(cache)));
  const genomeBytes = genomeByteSize(factors.layout);
  const params = factors.tensors.reduce((s, x) => s + x.shape.reduce((a, b) => a * b, 1), 0);
  await factors.close();
  const checkpointBytes = (await stat(configFor("batch").models.base)).size;
  const [old, now] = results;

  console.log(
    `search bench: ${useZoo ? `the zoo (${SHIPPED_ZOO_DIR})` : "tiny random models (zoo not built)"}, ` +
      `${generations} generations each, 1 worker, ${configFor("batch").split.opt} opt problems per skill, ` +
      `${params.toLocaleString("en")} parameters`,
  );
  console.log(
    "old: one sandbox per answer, axpy materialisation, node-llama-cpp's evaluate loop; " +
      "new: grading lanes, certified float64 GEMM, the batch decode loop",
  );
  console.log(`seed factors: ${(factorMs / 1000).toFixed(2)} s (computed once, then cached)`);
  console.log(
    `wall time: old ${old.wallS.toFixed(1)} s, new ${now.wallS.toFixed(1)} s (start-up included)\n`,
  );
  console.log(`mean per generation ${"".padEnd(22)}      old ms      new ms   old/new   new %`);
  for (const [i, [name, ms]] of old.rows.entries()) {
    const n = now.rows[i][1];
    console.log(
      `  ${name.padEnd(42)} ${ms.toFixed(ms < 10 ? 2 : 0).padStart(9)} ${n.toFixed(n < 10 ? 2 : 0).padStart(11)} ${(n > 0 ? ms / n : Number.NaN).toFixed(2).padStart(9)} ${((100 * n) / now.total).toFixed(1).padStart(7)}`,
    );
  }
  console.log(
    `  ${"total per child".padEnd(42)} ${old.total.toFixed(0).padStart(9)} ${now.total.toFixed(0).padStart(11)} ${(old.total / now.total).toFixed(2).padStart(9)}`,
  );
  const overhead = (r: typeof now) => r.total - r.rows[6][1] - r.rows[7][1];
  console.log(
    `\neverything but generation and grading: old ${((100 * overhead(old)) / old.total).toFixed(1)}%, new ${((100 * overhead(now)) / now.total).toFixed(1)}% (target ≤ 5%)`,
  );
  const same = old.scores.filter((s, i) => s === now.scores[i]).length;
  console.log(`children with identical scores old vs new: ${same}/${old.scores.length}`);
  console.log(
    `genome ${genomeBytes.toLocaleString("en")} bytes vs full checkpoint ${checkpointBytes.toLocaleString("en")} bytes: ` +
      `ratio ${(checkpointBytes / genomeBytes).toFixed(1)} : 1`,
  );
} finally {
  await rm(work, { recursive: true, force: true });
}

async function firstDir(dir: string): Promise<string> {
  const entries = await readdir(dir, { withFileTypes: true });
  const d = entries.find((e) => e.isDirectory() && !e.name.startsWith("."));
  if (!d) throw new Error(`no factor cache entry in ${dir}`);
  return d.name;
}
