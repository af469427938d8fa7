/**
 * The rows CycleQD is compared with: the base and each expert as shipped; the plain average;
 * task arithmetic with λ chosen on opt; TIES and DARE at their default settings; and the base
 * fine-tuned on all skills' data mixed, with the experts' token budget.
 */
import { existsSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { createGemm } from "../../src/linalg/index.ts";
import { exportGguf, loadGguf } from "../../src/llm/export.ts";
import {
  DEFAULT_DENSITY,
  DEFAULT_DROP,
  DEFAULT_LAMBDA,
  type MergeModelsOptions,
  mergeModels,
} from "../../src/merge/index.ts";
import { createMiniSkills } from "../../src/skills/index.ts";
import { TASK_ARITHMETIC_LAMBDAS } from "../../src/zoo/baselines.ts";
import { BASE_NAME, modelPath } from "../../src/zoo/card.ts";
import { MIXED_SEED_OFFSET, mixedBudget, mixedFinetune } from "../../src/zoo/mixed.ts";
import { type BenchContext, Interrupted } from "./context.ts";
import type { Row } from "./rows.ts";

export const modelsDir = (ctx: BenchContext) => join(ctx.out, "models");

const fmt = (x: number) => x.toFixed(3);

/** The base and each expert, as the zoo ships them. */
export async function referenceRows(ctx: BenchContext): Promise<Row[]> {
  const rows: Row[] = [];
  for (const name of [BASE_NAME, ...ctx.settings.run.skills]) {
    const r = await ctx.ev.both(modelPath(ctx.zooDir, ctx.card, name));
    const label = name === BASE_NAME ? "base" : `${name} expert`;
    ctx.log(`${label}: test mean ${fmt(r.test.mean)} (opt ${fmt(r.opt.mean)})`);
    rows.push({
      id: name === BASE_NAME ? "base" : `expert:${name}`,
      name: label,
      kind: "reference",
      results: [{ seed: null, ...r }],
    });
  }
  return rows;
}

/** Merges the zoo's experts into OUT/models/NAME.gguf (GGUF files are written atomically). */
async function merge(
  ctx: BenchContext,
  name: string,
  opts: Omit<MergeModelsOptions, "base" | "experts" | "out">,
): Promise<string> {
  const dir = modelsDir(ctx);
  await mkdir(dir, { recursive: true });
  const out = join(dir, `${name}.gguf`);
  const { run } = ctx.settings;
  await mergeModels({
    ...opts,
    base: run.models.base,
    experts: run.skills.map((s) => run.models.experts[s]),
    out,
  } as MergeModelsOptions);
  return out;
}

/** The merging baselines: average, task arithmetic (λ on opt), TIES, DARE (one per seed). */
export async function mergeRows(ctx: BenchContext): Promise<Row[]> {
  const rows: Row[] = [];
  const avg = await ctx.ev.both(await merge(ctx, "average", { method: "linear" }));
  ctx.log(`plain average: test mean ${fmt(avg.test.mean)} (opt ${fmt(avg.opt.mean)})`);
  rows.push({
    id: "average",
    name: "plain average",
    kind: "merge",
    results: [{ seed: null, ...avg }],
  });

  // λ is chosen on opt only; the chosen merge alone is scored on test.
  const tried: { lambda: number; opt: number; path: string }[] = [];
  for (const lambda of TASK_ARITHMETIC_LAMBDAS) {
    const path = await merge(ctx, `task-arithmetic-${lambda}`, {
      method: "task-arithmetic",
      lambda,
    });
    const opt = await ctx.ev.evaluate(path, "opt");
    ctx.log(`task arithmetic λ=${lambda}: opt mean ${fmt(opt.mean)}`);
    tried.push({ lambda, opt: opt.mean, path });
  }
  const best = tried.reduce((a, b) => (b.opt > a.opt ? b : a));
  const ta = await ctx.ev.both(best.path);
  ctx.log(`task arithmetic: λ=${best.lambda} chosen on opt; test mean ${fmt(ta.test.mean)}`);
  rows.push({
    id: "task-arithmetic",
    name: `task arithmetic (λ=${best.lambda})`,
    kind: "merge",
    results: [{ seed: null, ...ta }],
    detail: {
      lambda: best.lambda,
      optMeanByLambda: tried.map(({ lambda, opt }) => ({ lambda, opt })),
    },
  });

  const ties = await ctx.ev.both(await merge(ctx, "ties", { method: "ties" }));
  ctx.log(`TIES: test mean ${fmt(ties.test.mean)} (opt ${fmt(ties.opt.mean)})`);
  rows.push({
    id: "ties",
    name: `TIES (density ${DEFAULT_DENSITY})`,
    kind: "merge",
    results: [{ seed: null, ...ties }],
    detail: { density: DEFAULT_DENSITY, lambda: DEFAULT_LAMBDA, normalize: true },
  });

  // DARE draws its drop masks: one merge per seed, like the searches.
  const dare: Row = {
    id: "dare",
    name: `DARE (drop ${DEFAULT_DROP})`,
    kind: "merge",
    results: [],
    detail: {
      drop: DEFAULT_DROP,
      lambda: DEFAULT_LAMBDA,
      normalize: false,
      maskSeeds: "the bench seeds",
    },
  };
  for (const seed of ctx.settings.seeds) {
    const r = await ctx.ev.both(await merge(ctx, `dare-s${seed}`, { method: "dare", seed }));
    ctx.log(`DARE seed ${seed}: test mean ${fmt(r.test.mean)} (opt ${fmt(r.opt.mean)})`);
    dare.results.push({ seed, ...r });
  }
  rows.push(dare);
  return rows;
}

interface MixedRecord {
  key: string;
  steps: number;
  /** Tokens trained on (B·T per update); scaled from the updates seen when resumed. */
  tokens: number;
  tokensEstimated: boolean;
  finalLoss: number;
  seconds: number;
  seed: number;
}

/**
 * The base fine-tuned on every skill's `train` data mixed, for the experts' summed updates
 * at their batch size, learning rate and sequence length. Trained once (seeded) and cached as
 * OUT/models/mixed-ft.gguf; a killed training continues from its checkpoint.
 */
export async function mixedRow(ctx: BenchContext): Promise<Row> {
  const { card } = ctx;
  const dir = modelsDir(ctx);
  await mkdir(dir, { recursive: true });
  const out = join(dir, "mixed-ft.gguf");
  const recordPath = join(dir, "mixed-ft.json");
  const ck = join(dir, "mixed-ft.ckpt.safetensors");
  const budget = mixedBudget(card);
  const steps = ctx.settings.mixedSteps ?? budget.steps;
  const seed = card.seed + MIXED_SEED_OFFSET;
  const skills = createMiniSkills({ seed: card.seed }).filter((s) =>
    ctx.settings.run.skills.includes(s.name),
  );
  const recipe = card.recipe.expert;
  const key = JSON.stringify({
    base: card.models[BASE_NAME].sha256,
    skills: skills.map((s) => s.name),
    skillSeed: card.seed,
    steps,
    batchSize: recipe.batchSize,
    seqLen: recipe.seqLen,
    lr: recipe.lr,
    warmupSteps: recipe.warmupSteps,
    seed,
  });
  let record: MixedRecord | null = existsSync(recordPath)
    ? (JSON.parse(await readFile(recordPath, "utf8")) as MixedRecord)
    : null;
  if (record?.key !== key || !existsSync(out)) {
    record = null;
    // A checkpoint of other settings cannot be continued.
    const ckKey = `${ck}.key`;
    if (existsSync(ckKey) && (await readFile(ckKey, "utf8")) !== key) await rm(ck, { force: true });
    await writeFile(ckKey, key);
    ctx.log(
      `mixed-data fine-tune: ${steps} updates of ${recipe.batchSize} × ≤${recipe.seqLen} tokens, ` +
        `lr ${recipe.lr} (the experts used ${budget.steps} updates, ${budget.tokens} tokens)`,
    );
    const t0 = performance.now();
    const gemm = await createGemm({ threads: Math.min(2, availableParallelism()) });
    let tokens = 0;
    let seen = 0;
    let loss = Number.NaN;
    let params: Awaited<ReturnType<typeof mixedFinetune>>;
    try {
      // θ₀ as shipped (the experts' task vectors are measured against this very file).
      const { params: base } = await loadGguf(modelPath(ctx.zooDir, card, BASE_NAME));
      params = await mixedFinetune({
        base,
        config: card.config,
        skills,
        recipe,
        steps,
        seed,
        gemm,
        checkpointPath: ck,
        checkpointEvery: 50,
        onStep: (s) => {
          // Up to 49 updates since the last checkpoint are redone by the next bench.
          if (ctx.signal.aborted) throw new Interrupted("interrupted during mixed fine-tuning");
          tokens += s.tokens;
          seen++;
          loss = s.loss;
          if (s.step % 50 === 0 || s.step === s.steps) {
            ctx.log(`mixed-data fine-tune: update ${s.step}/${s.steps} loss ${s.loss.toFixed(3)}`);
          }
        },
      });
    } finally {
      await gemm.dispose();
    }
    await exportGguf(out, card.config, params, {
      dtype: card.recipe.dtype,
      name: "cycleqd-mixed-ft",
    });
    record = {
      key,
      steps,
      tokens: seen === steps ? tokens : Math.round((tokens / Math.max(1, seen)) * steps),
      tokensEstimated: seen !== steps,
      finalLoss: loss,
      seconds: (performance.now() - t0) / 1000,
      seed,
    };
    await writeFile(recordPath, `${JSON.stringify(record, null, 2)}\n`);
    await rm(ck, { force: true });
    await rm(ckKey, { force: true });
  } else {
    ctx.log(`mixed-data fine-tune: reusing ${out}`);
  }
  const r = await ctx.ev.both(out);
  ctx.log(`mixed-data fine-tune: test mean ${fmt(r.test.mean)} (opt ${fmt(r.opt.mean)})`);
  return {
    id: "mixed-ft",
    name: "mixed-data fine-tune",
    kind: "fine-tune",
    results: [{ seed: null, ...r }],
    detail: {
      steps,
      tokens: record.tokens,
      tokensEstimated: record.tokensEstimated,
      finalLoss: record.finalLoss,
      trainSeconds: record.seconds,
      seed,
      batchSize: recipe.batchSize,
      seqLen: recipe.seqLen,
      lr: recipe.lr,
      warmupSteps: Math.min(recipe.warmupSteps, steps),
      expertBudget: budget,
    },
  };
}
