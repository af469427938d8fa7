/**
 * Where a search's time goes. Runs a short CycleQD search (one worker, in process) on the
 * shipped zoo, or on tiny random models when the zoo is not built, and prints the mean time
 * per generation split into select, crossover, mutation, materialise, model load, the
 * runner's own bookkeeping (tell, store commit), and evaluation (generation, with answers
 * graded alongside, vs the grading left after the last answer);
 * the share of everything but evaluation (target ≤ 10%); and the bytes of a genome against
 * the bytes of a full checkpoint.
 *
 * `node --import tsx bench/search.ts [GENERATIONS] [--tiny]`
 */
import { existsSync } from "node:fs";
import { mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { genomeByteSize, openFactors } from "../src/qd/index.ts";
import { zooPath } from "../src/run/config.ts";
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
  const config = validateConfig(
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
      // Tiny random models get a small split; the zoo the default one.
      ...(useZoo ? {} : { split: { opt: 4, test: 2 } }),
      final: { evaluate: false, writeModel: false },
      cacheDir: join(work, "cache"),
    },
    work,
  );

  const children: Extract<RunEvent, { type: "child" }>[] = [];
  const gaps: number[] = [];
  let last = 0;
  let factorMs = 0;
  const t0 = performance.now();
  await run(config, {
    out: join(work, "run"),
    onEvent: (e) => {
      const now = performance.now();
      if (e.type === "factors") factorMs = e.ms;
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
  const total = rows.reduce((s, [, v]) => s + v, 0);
  const overhead = total - t.generate - t.grade;

  const cache = config.cacheDir as string;
  const factors = await openFactors(join(cache, await firstDir(cache)));
  const genomeBytes = genomeByteSize(factors.layout);
  const params = factors.tensors.reduce((s, x) => s + x.shape.reduce((a, b) => a * b, 1), 0);
  await factors.close();
  const checkpointBytes = (await stat(config.models.base)).size;

  console.log(
    `search bench: ${useZoo ? `the zoo (${SHIPPED_ZOO_DIR})` : "tiny random models (zoo not built)"}, ` +
      `${children.length} generations, 1 worker, ${config.split.opt} opt problems per skill, ` +
      `${params.toLocaleString("en")} parameters`,
  );
  console.log(`seed factors: ${(factorMs / 1000).toFixed(2)} s (computed once, then cached)`);
  console.log(`wall time ${wallS.toFixed(1)} s (seeds, factors and start-up included)\n`);
  console.log("mean per generation:");
  for (const [name, ms] of rows) {
    console.log(
      `  ${name.padEnd(42)} ${ms.toFixed(ms < 10 ? 2 : 0).padStart(9)} ms  ${((100 * ms) / total).toFixed(1).padStart(5)}%`,
    );
  }
  console.log(`  ${"total".padEnd(42)} ${total.toFixed(0).padStart(9)} ms`);
  console.log(
    `\neverything but evaluation (generation + grading): ${((100 * overhead) / total).toFixed(1)}% (target ≤ 10%)`,
  );
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
