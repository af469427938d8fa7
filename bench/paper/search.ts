/**
 * The CycleQD rows: one search per variant of the ablation and seed, in OUT/runs/VARIANT-sSEED,
 * through the library's run API. A bench killed mid-search resumes the run where it stopped;
 * a finished run is reused as it is.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { reporter } from "../../src/run/cli-support.ts";
import { resolveGenome } from "../../src/run/config.ts";
import { exportElite } from "../../src/run/export.ts";
import { DB_FILE, RunStore, resume, run, runStatus } from "../../src/run/index.ts";
import { type BenchContext, Interrupted } from "./context.ts";
import type { ModelResult } from "./evaluate.ts";
import { type Variant, variantConfig } from "./settings.ts";

export interface SearchResult {
  variant: string;
  seed: number;
  dir: string;
  /** The aggregate θ₀ + Σ β_k τ_k* of the archives' best elites. */
  aggregate: ModelResult;
  /** The single elite with the best mean opt score (CycleQD itself only). */
  bestMean: ModelResult | null;
  /** What the run ended with: archives and the final models' sources. */
  summary: Record<string, unknown>;
}

export async function searchRun(
  ctx: BenchContext,
  variant: Variant,
  seed: number,
): Promise<SearchResult> {
  const config = variantConfig(ctx.settings.run, variant, seed);
  const dir = join(ctx.out, "runs", `${variant.id}-s${seed}`);
  const label = `${variant.id} s${seed}`;
  const onEvent = reporter("human", (line) => ctx.log(`[${label}] ${line}`));
  const opts = { onEvent, signal: ctx.signal };
  let result: Awaited<ReturnType<typeof run>>;
  if (existsSync(join(dir, DB_FILE))) {
    const store = await RunStore.open(dir, { readonly: true });
    // The store keeps the config as the run decided it (genome: auto resolved by model size);
    // runs stored before genome existed ran exact.
    const { genome: storedGenome = "exact", ...stored } = store.config;
    const same = [0, Number.POSITIVE_INFINITY].some((size) => {
      const { genome, ...rest } = resolveGenome(config, size);
      return genome === storedGenome && JSON.stringify(rest) === JSON.stringify(stored);
    });
    store.close();
    if (!same) {
      throw new Error(
        `${dir} holds a run made with other settings; choose another --out or delete that run`,
      );
    }
    result = await resume(dir, opts);
  } else {
    result = await run(config, { ...opts, out: dir });
  }
  if (result.status !== "finished") {
    throw new Interrupted(
      `${label} stopped after ${result.finished}/${result.generations} children`,
    );
  }

  const status = await runStatus(dir);
  const aggregate = await ctx.ev.both(join(dir, "model.gguf"));
  let bestMean: ModelResult | null = null;
  if (variant.id === "full") {
    const path = join(dir, "best-mean.gguf");
    if (!existsSync(path)) await exportElite(dir, await bestMeanCell(dir), path);
    bestMean = await ctx.ev.both(path);
  }
  ctx.log(
    `[${label}] aggregate: test mean ${aggregate.test.mean.toFixed(3)} (opt ${aggregate.opt.mean.toFixed(3)})` +
      (bestMean ? `; best elite: test mean ${bestMean.test.mean.toFixed(3)}` : ""),
  );
  return {
    variant: variant.id,
    seed,
    dir,
    aggregate,
    bestMean,
    summary: {
      children: status.finished,
      archives: status.archives.map((a) => ({
        skill: a.skill,
        filled: a.filled,
        coverage: a.coverage,
        qdScore: a.qdScore,
        bestId: a.best?.id ?? null,
        bestQuality: a.best?.quality ?? null,
      })),
      finals: status.finals.map((f) => ({ name: f.name, sources: f.sources })),
      meanChildMs: status.timings?.meanMs ?? null,
    },
  };
}

/** ARCHIVE:COORDS of the best-mean elite the run recorded among its final models. */
async function bestMeanCell(dir: string): Promise<string> {
  const store = await RunStore.open(dir, { readonly: true });
  try {
    const id = store.finals().find((f) => f.name === "best-mean")?.sources.ids[0];
    const row = store.elites().find((e) => e.id === id);
    if (row === undefined) throw new Error(`${dir}: the best-mean elite is not in the archives`);
    // The cell as bin coordinates, one per behaviour axis (K − 1 of them), as status shows it.
    const { bins } = store.config.archive;
    const coords: number[] = [];
    for (let k = 1, c = row.cell; k < store.config.skills.length; k++, c = Math.floor(c / bins)) {
      coords.unshift(c % bins);
    }
    return `${row.archive}:${coords.join(",")}`;
  } finally {
    store.close();
  }
}
