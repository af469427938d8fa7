/**
 * Builds the zoo: a base that copies (stage 1), then gains weak partial skill (stage 2,
 * stopped at the first checkpoint whose `opt` scores are weak but non-zero on every skill),
 * then one expert per skill fine-tuned from it on that skill's `train` split. Every stage
 * checkpoints, so a killed build continues; everything is drawn from the seed.
 */
import { existsSync } from "node:fs";
import { copyFile, mkdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { availableParallelism, loadavg } from "node:os";
import { join } from "node:path";
import { createLlamaCppEngine } from "../engine/index.ts";
import type { Engine } from "../engine/types.ts";
import type { Gemm } from "../linalg/gemm.ts";
import { createGemm } from "../linalg/index.ts";
import type { Example } from "../llm/batches.ts";
import { loadCheckpoint } from "../llm/checkpoint.ts";
import { type LlamaConfig, TINY_CONFIG, validateConfig } from "../llm/config.ts";
import { exportGguf, loadGguf } from "../llm/export.ts";
import type { Params } from "../llm/model.ts";
import { encode } from "../llm/tokenizer.ts";
import { type StepInfo, type TrainOptions, train } from "../llm/train.ts";
import { createMiniSkills } from "../skills/index.ts";
import { resolveRunner } from "../skills/runner.ts";
import type { Runner, Skill } from "../skills/types.ts";
import {
  BASE_NAME,
  CARD_FILE,
  CARD_FORMAT,
  readCard,
  type SplitScores,
  type StageRecord,
  sha256File,
  type ZooCard,
} from "./card.ts";
import { copyProbes, stage1Corpus, stage2Corpus } from "./corpus.ts";
import { copyAccuracy, skillScores, withModel } from "./measure.ts";
import { type RecipeOverrides, resolveRecipe, type ZooRecipe } from "./recipe.ts";
import {
  type BuildState,
  loadState,
  newState,
  type Stage2Eval,
  type StageProgress,
  saveState,
} from "./state.ts";
import { taskVectorStats } from "./taskvectors.ts";

export interface ZooProgress {
  /** "stage1", "stage2", "expert:NAME" or "card". */
  stage: string;
  kind: "start" | "step" | "eval" | "done" | "skip";
  message: string;
  step?: number;
  steps?: number;
  loss?: number;
  tokensPerSecond?: number;
  /** Seconds left in this stage at the current pace. */
  etaSeconds?: number;
}

export interface BuildZooOptions {
  outDir: string;
  /** Seeds the corpora, the weights, the batches and the skills' problems (default 1). */
  seed?: number;
  config?: LlamaConfig;
  recipe?: RecipeOverrides;
  /** Default: the three miniature skills drawn from `seed`. */
  skills?: Skill[];
  /** Checkpoints and intermediate weights; default `outDir/.build`, removed when done. */
  workDir?: string;
  /** GEMM threads for training (default min(2, cores)). */
  threads?: number;
  onProgress?: (p: ZooProgress) => void;
  /** Stop (as if killed) once this stage is done; the next call resumes. */
  stopAfter?: "stage1" | "stage2" | "experts";
  /** Grade model output without a sandbox when none works (dangerous). */
  unsafe?: boolean;
  /** Grade with this runner instead of the sandbox. */
  runner?: Runner;
  /** Build again even when `outDir` already holds a finished zoo of the same settings. */
  force?: boolean;
}

export interface BuildZooResult {
  card: ZooCard;
  /** False when `stopAfter` ended the build early (no card yet). */
  complete: boolean;
}

/** Thrown from a training hook to end stage 2 at an accepted checkpoint. */
class StopTraining extends Error {}

/** (prompt, answer) pairs of one skill's `train` split: the experts' only data. */
export function expertExamples(skill: Skill): Example[] {
  return skill.problems("train").map((p) => ({
    prompt: encode(skill.format(p), { bos: true }),
    answer: encode(`${p.reference}${skill.terminator}`),
  }));
}

/** Whether stage-2 scores count as weak but non-zero on every skill. */
export function weakButNonZero(scores: Record<string, number>, recipe: ZooRecipe): boolean {
  const xs = Object.values(scores);
  return xs.every((x) => x >= recipe.stage2.minScore && x <= recipe.stage2.maxScore);
}

/** Distance of scores from the accepted band; picks a checkpoint when none is inside it. */
function bandDistance(scores: Record<string, number>, recipe: ZooRecipe): number {
  const { minScore, maxScore } = recipe.stage2;
  return Object.values(scores).reduce(
    (d, x) => d + Math.max(0, minScore - x) + Math.max(0, x - maxScore),
    0,
  );
}

export function chooseStage2(evals: Stage2Eval[], recipe: ZooRecipe): Stage2Eval {
  if (evals.length === 0) throw new Error("stage 2 made no evaluations to choose from");
  const ok = evals.find((e) => e.accepted);
  if (ok) return ok;
  return evals.reduce((best, e) =>
    bandDistance(e.scores, recipe) < bandDistance(best.scores, recipe) ? e : best,
  );
}

const fmtScores = (s: Record<string, number>) =>
  Object.entries(s)
    .map(([k, v]) => `${k} ${v.toFixed(2)}`)
    .join(" ");

export async function buildZoo(opts: BuildZooOptions): Promise<BuildZooResult> {
  if (!opts || typeof opts.outDir !== "string" || opts.outDir === "") {
    throw new Error("buildZoo: outDir (the directory to write the zoo into) is required");
  }
  const seed = opts.seed ?? 1;
  if (!Number.isInteger(seed) || seed < 0) {
    throw new Error(`buildZoo: seed must be a non-negative integer, got ${seed}`);
  }
  const config = validateConfig(opts.config ?? TINY_CONFIG);
  const recipe = resolveRecipe(opts.recipe);
  const skills = opts.skills ?? createMiniSkills({ seed });
  if (skills.length === 0) throw new Error("buildZoo: at least one skill is needed");
  const names = skills.map((s) => s.name);
  if (names.includes(BASE_NAME) || new Set(names).size !== names.length) {
    throw new Error(`buildZoo: skill names must be unique and not "${BASE_NAME}"`);
  }
  const threads = opts.threads ?? Math.min(2, availableParallelism());
  const outDir = opts.outDir;
  const work = opts.workDir ?? join(outDir, ".build");
  const progress = opts.onProgress ?? (() => {});

  if (!opts.force && !existsSync(join(work, "state.json"))) {
    const done = await finishedZoo(outDir, seed, config, recipe, names);
    if (done) {
      progress({ stage: "card", kind: "skip", message: `${outDir} already holds this zoo` });
      return { card: done, complete: true };
    }
  }
  const statePath = join(work, "state.json");
  await mkdir(work, { recursive: true });
  const state = await loadState(statePath, newState(seed, config, recipe, names));
  // Refuse early, not after half an hour of training, when answers could not be graded.
  const runner = opts.runner ?? (await resolveRunner({ unsafe: opts.unsafe }));
  const gemm = await createGemm({ threads });
  const engine = await createLlamaCppEngine({ threads: 1 });
  const ctx: Ctx = {
    config,
    recipe,
    skills,
    seed,
    work,
    state,
    statePath,
    progress,
    gemm,
    engine,
    runner,
    baseAnswers: new Map(),
  };
  try {
    await stage1(ctx);
    if (opts.stopAfter === "stage1") return { card: partialCard(ctx), complete: false };
    await stage2(ctx);
    if (opts.stopAfter === "stage2") return { card: partialCard(ctx), complete: false };
    for (let k = 0; k < skills.length; k++) await expertStage(ctx, skills[k], k);
    if (opts.stopAfter === "experts") return { card: partialCard(ctx), complete: false };
    const card = await ship(ctx, outDir);
    if (!opts.workDir) await rm(work, { recursive: true, force: true });
    return { card, complete: true };
  } finally {
    await engine.dispose();
    await gemm.dispose();
  }
}

interface Ctx {
  config: LlamaConfig;
  recipe: ZooRecipe;
  skills: Skill[];
  seed: number;
  work: string;
  state: BuildState;
  statePath: string;
  progress: (p: ZooProgress) => void;
  gemm: Gemm;
  engine: Engine;
  runner: Runner;
  /** The base's answers to each skill's `pretrain` prompts, in order; undefined where left out. */
  baseAnswers: Map<string, (Example | undefined)[]>;
}

const CHECKPOINT_EVERY = 50;

/** Runs `train` with progress lines, ETA, and time/tokens/loss kept across resumptions. */
async function runTraining(
  ctx: Ctx,
  stage: string,
  opts: Omit<TrainOptions, "gemm" | "config" | "onStep">,
  onCheckpoint?: (step: number, so: StageProgress) => Promise<void>,
): Promise<{ params: Params } & StageProgress> {
  const t0 = performance.now();
  const before: StageProgress = ctx.state.partial[stage] ?? {
    seconds: 0,
    tokens: 0,
    loss: Number.NaN,
  };
  const so = { ...before };
  let firstStep = -1;
  const every = opts.checkpointEvery ?? CHECKPOINT_EVERY;
  const onStep = async (s: StepInfo) => {
    if (firstStep < 0) {
      firstStep = s.step - 1;
      if (firstStep > 0) {
        ctx.progress({ stage, kind: "skip", message: `resumed from update ${firstStep}` });
      }
    }
    so.tokens += s.tokens;
    so.loss = s.loss;
    so.seconds = before.seconds + (performance.now() - t0) / 1000;
    const eta = ((s.steps - s.step) * (performance.now() - t0)) / 1000 / (s.step - firstStep);
    if (s.step % 10 === 0 || s.step === s.steps) {
      ctx.progress({
        stage,
        kind: "step",
        step: s.step,
        steps: s.steps,
        loss: s.loss,
        tokensPerSecond: s.tokensPerSecond,
        etaSeconds: eta,
        message:
          `step ${s.step}/${s.steps} loss ${s.loss.toFixed(3)} ` +
          `${Math.round(s.tokensPerSecond)} tok/s ETA ${formatSeconds(eta)}`,
      });
    }
    if (s.step % every === 0 || s.step === s.steps) {
      // Tokens and time since the last checkpoint are lost with a kill, as is the training.
      ctx.state.partial[stage] = { ...so };
      await saveState(ctx.statePath, ctx.state);
      await onCheckpoint?.(s.step, so);
    }
  };
  const res = await train({
    ...opts,
    config: ctx.config,
    gemm: ctx.gemm,
    checkpointEvery: every,
    onStep,
  });
  return { params: res.params, ...so, seconds: before.seconds + (performance.now() - t0) / 1000 };
}

/** Whether `stage` finished in an earlier run and its output is still there (says so). */
function alreadyDone(ctx: Ctx, stage: string, out: string): boolean {
  if (!(ctx.state.done[stage] && existsSync(out))) return false;
  ctx.progress({ stage, kind: "skip", message: "already done" });
  return true;
}

async function finishStage(ctx: Ctx, stage: string, record: StageRecord): Promise<void> {
  ctx.state.done[stage] = record;
  delete ctx.state.partial[stage];
  await saveState(ctx.statePath, ctx.state);
  ctx.progress({ stage, kind: "done", message: `done in ${formatSeconds(record.seconds)}` });
}

async function stage1(ctx: Ctx): Promise<void> {
  const stage = "stage1";
  const out = join(ctx.work, "stage1.gguf");
  if (alreadyDone(ctx, stage, out)) return;
  const r = ctx.recipe.stage1;
  ctx.progress({
    stage,
    kind: "start",
    message: `copying: ${r.steps} updates of ${r.batchSize} × up to ${r.seqLen} tokens (${r.form})`,
  });
  const corpus = stage1Corpus(ctx.seed, r.corpusTokens, r.form);
  const ck = join(ctx.work, "stage1.ckpt.safetensors");
  const res = await runTraining(ctx, stage, {
    data: corpus.data,
    steps: r.steps,
    batchSize: r.batchSize,
    seqLen: r.seqLen,
    seed: ctx.seed,
    lr: r.lr,
    warmupSteps: r.warmupSteps,
    checkpointPath: ck,
  });
  const t0 = performance.now();
  await exportGguf(out, ctx.config, res.params);
  const probes = copyProbes(ctx.seed, ctx.recipe.copyProbes);
  const acc = await withModel(ctx.engine, ctx.config, res.params, (m) => copyAccuracy(m, probes));
  ctx.progress({
    stage,
    kind: "eval",
    message: `copy accuracy on ${probes.length} held-out items: ${acc.toFixed(3)}`,
  });
  await finishStage(ctx, stage, {
    seconds: res.seconds + (performance.now() - t0) / 1000,
    steps: r.steps,
    tokens: res.tokens,
    finalLoss: res.loss,
    copyAccuracy: acc,
    corpus: corpus.stats,
  });
  await rm(ck, { force: true });
}

async function stage2(ctx: Ctx): Promise<void> {
  const stage = "stage2";
  const out = join(ctx.work, "base.gguf");
  if (alreadyDone(ctx, stage, out)) return;
  const r = ctx.recipe.stage2;
  const snapshot = (step: number) => join(ctx.work, `stage2-step${step}.gguf`);
  const ck = join(ctx.work, "stage2.ckpt.safetensors");
  if (!ctx.state.stage2Evals.some((e) => e.accepted)) {
    ctx.progress({
      stage,
      kind: "start",
      message: `partial skills: up to ${r.steps} updates, ${Math.round(r.skillShare * 100)}% skill Q/A from the pretrain split`,
    });
    const { params: start } = await loadGguf(join(ctx.work, "stage1.gguf"));
    const corpus = stage2Corpus(ctx.seed, r.corpusTokens, ctx.skills, r.skillShare, r.form);
    const onCheckpoint = async (step: number, so?: StageProgress) => {
      if (step % r.evalEvery !== 0 && step !== r.steps) return;
      let ev = ctx.state.stage2Evals.find((e) => e.step === step);
      if (!ev) {
        const t0 = performance.now();
        const { params } = await loadCheckpoint(ck);
        await exportGguf(snapshot(step), ctx.config, params);
        const scores = await withModel(ctx.engine, ctx.config, params, (m) =>
          skillScores(m, ctx.skills, "opt", { runner: ctx.runner }),
        );
        ev = {
          step,
          scores,
          accepted: weakButNonZero(scores, ctx.recipe),
          loss: so?.loss ?? Number.NaN,
          tokens: so?.tokens ?? 0,
          seconds: (so?.seconds ?? 0) + (performance.now() - t0) / 1000,
        };
        ctx.state.stage2Evals.push(ev);
        await saveState(ctx.statePath, ctx.state);
        ctx.progress({
          stage,
          kind: "eval",
          step,
          message: `opt at update ${step}: ${fmtScores(scores)}${ev.accepted ? " (weak but non-zero: chosen)" : ""}`,
        });
      }
      if (ev.accepted) throw new StopTraining();
    };
    try {
      // A build killed between a checkpoint and its evaluation evaluates it now.
      if (existsSync(ck)) {
        const step = (await loadCheckpoint(ck)).adam.step;
        if (step > 0) await onCheckpoint(step);
      }
      await runTraining(
        ctx,
        stage,
        {
          data: corpus.data,
          params: start,
          steps: r.steps,
          batchSize: r.batchSize,
          seqLen: r.seqLen,
          seed: ctx.seed + 1000,
          lr: r.lr,
          // A flat rate: the stage is meant to be cut short at a checkpoint.
          minLr: r.lr,
          warmupSteps: r.warmupSteps,
          checkpointPath: ck,
          checkpointEvery: r.evalEvery,
        },
        onCheckpoint,
      );
    } catch (e) {
      if (!(e instanceof StopTraining)) throw e;
    }
  }
  const chosen = chooseStage2(ctx.state.stage2Evals, ctx.recipe);
  await copyFile(snapshot(chosen.step), `${out}.tmp`);
  await rename(`${out}.tmp`, out);
  await finishStage(ctx, stage, {
    // Training and evaluating up to the last checkpoint evaluated.
    seconds: Math.max(...ctx.state.stage2Evals.map((e) => e.seconds)),
    steps: chosen.step,
    tokens: chosen.tokens,
    finalLoss: chosen.loss,
    chosenStep: chosen.step,
    chosenScores: chosen.scores,
    accepted: chosen.accepted,
    evals: ctx.state.stage2Evals,
  });
  for (const e of ctx.state.stage2Evals) await rm(snapshot(e.step), { force: true });
  await rm(ck, { force: true });
}

async function expertStage(ctx: Ctx, skill: Skill, k: number): Promise<void> {
  const stage = `expert:${skill.name}`;
  const out = join(ctx.work, `${skill.name}.gguf`);
  if (alreadyDone(ctx, stage, out)) return;
  const r = ctx.recipe.expert;
  const own = expertExamples(skill);
  const wanted = Math.round((own.length * r.replayShare) / (1 - r.replayShare));
  const replay = wanted > 0 ? await baseAnswers(ctx, skill, wanted, r.seqLen) : [];
  ctx.progress({
    stage,
    kind: "start",
    message:
      `fine-tuning on ${skill.name}'s train split` +
      (wanted > 0 ? ` and ${replay.length} replayed base answers` : "") +
      `: ${r.steps} updates, lr ${r.lr}`,
  });
  const { params: base } = await loadGguf(join(ctx.work, "base.gguf"));
  const ck = join(ctx.work, `${skill.name}.ckpt.safetensors`);
  const res = await runTraining(ctx, stage, {
    data: { kind: "examples", examples: [...own, ...replay] },
    params: base,
    steps: r.steps,
    batchSize: r.batchSize,
    seqLen: r.seqLen,
    seed: ctx.seed + 2000 + k,
    lr: r.lr,
    warmupSteps: r.warmupSteps,
    checkpointPath: ck,
  });
  await exportGguf(out, ctx.config, res.params);
  await finishStage(ctx, stage, {
    seconds: res.seconds,
    steps: r.steps,
    tokens: res.tokens,
    finalLoss: res.loss,
  });
  await rm(ck, { force: true });
}

/**
 * The base's own greedy answers to `count` of the other skills' `pretrain` prompts, split
 * evenly between those skills: what an expert replays to keep the base's other skills.
 * Answers that never stopped, or that do not fit `seqLen`, are left out. Each skill's answers
 * are generated once per build and shared by every expert that replays them.
 */
async function baseAnswers(
  ctx: Ctx,
  skill: Skill,
  count: number,
  seqLen: number,
): Promise<Example[]> {
  const others = ctx.skills.filter((s) => s !== skill);
  const out: Example[] = [];
  for (const [k, other] of others.entries()) {
    const n = Math.floor(count / others.length) + (k < count % others.length ? 1 : 0);
    const answers = ctx.baseAnswers.get(other.name) ?? [];
    ctx.baseAnswers.set(other.name, answers);
    const problems = other.problems("pretrain").slice(answers.length, n);
    if (problems.length > 0) {
      const prompts = problems.map((p) => other.format(p));
      const model = await ctx.engine.loadModel(join(ctx.work, "base.gguf"));
      try {
        // One sequence at a time: greedy answers then cannot depend on batch composition.
        const generated = await model.generate(
          prompts.map((prompt) => ({ prompt, maxTokens: other.maxTokens, stop: other.stop })),
          { parallel: 1 },
        );
        prompts.forEach((prompt, i) => {
          const example = {
            prompt: encode(prompt, { bos: true }),
            answer: encode(`${generated[i].text}${other.terminator}`),
          };
          const fits = example.prompt.length + example.answer.length <= seqLen;
          answers.push(generated[i].finish !== "length" && fits ? example : undefined);
        });
      } finally {
        await model.dispose();
      }
    }
    for (const e of answers.slice(0, n)) if (e) out.push(e);
  }
  return out;
}

/** Writes the shipped files, scores each on every skill's opt and test split, writes the card. */
async function ship(ctx: Ctx, outDir: string): Promise<ZooCard> {
  const stage = "card";
  const t0 = performance.now();
  await mkdir(outDir, { recursive: true });
  const names = [BASE_NAME, ...ctx.skills.map((s) => s.name)];
  const models: ZooCard["models"] = {};
  const shipped: Record<string, Params> = {};
  for (const name of names) {
    const { params } = await loadGguf(join(ctx.work, `${name}.gguf`));
    const file = `${name}.gguf`;
    const path = join(outDir, file);
    await exportGguf(path, ctx.config, params, {
      dtype: ctx.recipe.dtype,
      name: `cycleqd-zoo-${name}`,
    });
    // Scores and task vectors are those of the file as shipped (after any rounding to F16).
    shipped[name] = (await loadGguf(path)).params;
    const model = await ctx.engine.loadModel(path);
    const scores: Record<string, SplitScores> = {};
    try {
      const opt = await skillScores(model, ctx.skills, "opt", { runner: ctx.runner });
      const test = await skillScores(model, ctx.skills, "test", { runner: ctx.runner });
      for (const s of ctx.skills) scores[s.name] = { opt: opt[s.name], test: test[s.name] };
    } finally {
      await model.dispose();
    }
    models[name] = { file, sha256: await sha256File(path), bytes: (await stat(path)).size, scores };
    ctx.progress({
      stage,
      kind: "eval",
      message: `${name}: ${ctx.skills
        .map((s) => `${s.name} ${scores[s.name].opt.toFixed(2)}/${scores[s.name].test.toFixed(2)}`)
        .join(" ")} (opt/test)`,
    });
  }
  const experts = Object.fromEntries(ctx.skills.map((s) => [s.name, shipped[s.name]]));
  const taskVectors = taskVectorStats(shipped[BASE_NAME], experts);
  const cardSeconds = (performance.now() - t0) / 1000;
  const stages = {
    ...ctx.state.done,
    card: { seconds: cardSeconds, steps: 0, tokens: 0, finalLoss: Number.NaN },
  };
  const card: ZooCard = {
    format: CARD_FORMAT,
    seed: ctx.seed,
    config: ctx.config,
    skills: ctx.skills.map((s) => s.name),
    recipe: ctx.recipe,
    models,
    build: {
      seconds: Object.values(stages).reduce((a, s) => a + s.seconds, 0),
      stages,
      loadAverage: loadavg()[0],
    },
    taskVectors,
  };
  const cardPath = join(outDir, CARD_FILE);
  await writeFile(`${cardPath}.tmp`, `${JSON.stringify(card, null, 2)}\n`);
  await rename(`${cardPath}.tmp`, cardPath);
  ctx.progress({ stage, kind: "done", message: `wrote ${cardPath}` });
  return card;
}

/** The card in `dir` when it is a finished zoo of these settings whose files are intact. */
async function finishedZoo(
  dir: string,
  seed: number,
  config: LlamaConfig,
  recipe: ZooRecipe,
  skills: string[],
): Promise<ZooCard | null> {
  const card = await readCard(dir).catch(() => null);
  if (!card) return null;
  const same =
    card.seed === seed &&
    JSON.stringify(card.config) === JSON.stringify(config) &&
    // A card written before a recipe field existed holds that field's default.
    JSON.stringify(resolveRecipe(card.recipe)) === JSON.stringify(recipe) &&
    JSON.stringify(card.skills) === JSON.stringify(skills);
  if (!same) return null;
  for (const m of Object.values(card.models)) {
    const path = join(dir, m.file);
    if (!existsSync(path) || (await sha256File(path)) !== m.sha256) return null;
  }
  return card;
}

/** The card so far, for a build stopped early (no models shipped yet). */
function partialCard(ctx: Ctx): ZooCard {
  return {
    format: CARD_FORMAT,
    seed: ctx.seed,
    config: ctx.config,
    skills: ctx.skills.map((s) => s.name),
    recipe: ctx.recipe,
    models: {},
    build: {
      seconds: Object.values(ctx.state.done).reduce((a, s) => a + s.seconds, 0),
      stages: { ...ctx.state.done },
    },
    taskVectors: { baseNorm: 0, norms: {}, relative: {}, cosines: {} },
  };
}

export function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return "?";
  const m = Math.floor(s / 60);
  const sec = Math.round(s - 60 * m);
  return m > 0 ? `${m}m${String(sec).padStart(2, "0")}s` : `${sec}s`;
}
