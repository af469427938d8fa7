/**
 * What one evaluation worker holds and does: an engine, the skills, the base model and the
 * seed factors. A genome is materialised into a temporary GGUF, loaded by llama.cpp, scored
 * on every skill, and the file is deleted again, so disk use stays at one model per worker.
 * The in-process evaluator and each pool worker run exactly this code.
 */
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { createLlamaCppEngine } from "../engine/index.ts";
import type { Engine, EngineBase, EngineModel } from "../engine/types.ts";
import { createGemm } from "../linalg/index.ts";
import { createDotPool, type DotPool } from "../materialise/dot-pool.ts";
import {
  materialiseGguf,
  openFactors,
  type SeedFactors,
  writeLoraAdapter,
} from "../materialise/index.ts";
import { decodeGenome } from "../qd/index.ts";
import { type ChatConfig, type ChatFormatter, chatFormatterFor } from "../skills/chat.ts";
import { evaluateSkills } from "../skills/index.ts";
import { type Grader, openGrader } from "../skills/runner.ts";
import type { Skill, SkillModel } from "../skills/types.ts";
import { type GgufReader, gguf, openGguf } from "../tensors/gguf.ts";
import type { RunConfig } from "./config.ts";
import { buildSkills } from "./skill-sources.ts";
import type { Scores, Timings } from "./store.ts";

/** Everything a worker needs, as plain data (it crosses a process boundary). */
export interface EvaluatorSetup {
  /** Where temporary model files go (RUN/tmp). */
  tmpDir: string;
  /** The base model as GGUF. */
  basePath: string;
  /** The seed factors' cache entry (a directory). */
  factorsDir: string;
  skills: string[];
  skillSources: RunConfig["skillSources"];
  skillSeed: number;
  split: { opt: number; test: number };
  /** The model's chat template for prompts; absent (runs stored before it existed): none. */
  chat?: ChatConfig;
  engine: { threads?: number; parallel: number; contextSize?: number };
  unsafe: boolean;
  grading: RunConfig["grading"];
  likelihood: boolean;
  /** How matrices are summed (lowrank.ts); all give the same bytes. Benches set it. */
  materialiseKernel?: "certified" | "dot" | "axpy";
  /** "lowrank": children run as LoRA adapters on the base, loaded once (RunConfig.genome). */
  genome?: RunConfig["genome"];
  /** The engine's decode loop (engine/llama-cpp.ts); the same tokens. Benches set it. */
  decodeLoop?: "batch" | "evaluate";
}

/** The evaluator setup for a run's config, base model (GGUF) and seed factors. */
export function evaluatorSetup(
  config: RunConfig,
  tmpDir: string,
  basePath: string,
  factorsDir: string,
): EvaluatorSetup {
  return {
    tmpDir,
    basePath,
    factorsDir,
    skills: config.skills,
    skillSources: config.skillSources,
    skillSeed: config.skillSeed,
    split: config.split,
    chat: config.chat,
    engine: config.engine,
    unsafe: config.unsafe,
    grading: config.grading,
    likelihood: config.likelihood,
    genome: config.genome,
  };
}

/** A genome (encoded bytes, as `encodeGenome` writes) or a model file as it is. */
export type EvalTarget = { kind: "genome"; genome: Uint8Array } | { kind: "file"; path: string };

export interface EvalJob {
  /** Names the temporary file, e.g. "child-12". */
  name: string;
  target: EvalTarget;
  split: "opt" | "test";
}

export type EvalTimings = Pick<Timings, "materialise" | "load" | "generate" | "grade" | "evaluate">;

export interface EvalResult {
  scores: Scores;
  timings: EvalTimings;
  /** Answers re-run in a sandbox of their own because a grading lane broke (verdicts unchanged). */
  gradingFallbacks: number;
}

export class ModelEvaluator {
  private constructor(
    private readonly setup: EvaluatorSetup,
    private readonly engine: Engine,
    private readonly skills: Skill[],
    private readonly base: GgufReader,
    private readonly factors: SeedFactors,
    private readonly grader: Grader,
    private readonly gemm: Awaited<ReturnType<typeof createGemm>>,
    private readonly chat: ChatFormatter | null,
    /** Low-rank mode: the base, loaded once, that runs each child's adapter. */
    private readonly adapterBase: EngineBase | null,
    // Both cores are idle while a child is materialised (one worker): build tensors on both.
    private readonly pool: DotPool = createDotPool(),
  ) {}

  static async create(setup: EvaluatorSetup): Promise<ModelEvaluator> {
    const skills = buildSkills(setup);
    // Fail before loading anything when answers could not be graded safely.
    const grader = await openGrader({ unsafe: setup.unsafe, batch: setup.grading === "batch" });
    const base = await openGguf(setup.basePath);
    let factors: SeedFactors | undefined;
    try {
      factors = await openFactors(setup.factorsDir);
      const gemm = await createGemm({ threads: setup.engine.threads ?? 1, warn: () => {} });
      const engine = await createLlamaCppEngine({
        threads: setup.engine.threads,
        parallel: setup.engine.parallel,
        contextSize: setup.engine.contextSize,
        decodeLoop: setup.decodeLoop,
      });
      const chat = setup.chat ? chatFormatterFor(setup.chat, base.metadata, setup.basePath) : null;
      const adapterBase = setup.genome === "lowrank" ? await engine.loadBase(setup.basePath) : null;
      return new ModelEvaluator(
        setup,
        engine,
        skills,
        base,
        factors,
        grader,
        gemm,
        chat,
        adapterBase,
      );
    } catch (e) {
      await grader.close();
      await factors?.close();
      await base.close();
      throw e;
    }
  }

  async evaluate(job: EvalJob): Promise<EvalResult> {
    const t0 = performance.now();
    let path: string;
    let materialise = 0;
    let temporary = false;
    let open = (p: string) => this.engine.loadModel(p);
    if (job.target.kind === "genome" && this.adapterBase) {
      const genome = decodeGenome(job.target.genome, this.factors.layout);
      // Its own path per child: llama.cpp keeps an adapter by path while it is in use.
      path = join(this.setup.tmpDir, `${job.name}-${process.pid}.lora.gguf`);
      temporary = true;
      const arch = this.base.metadata.get("general.architecture")?.value;
      await writeLoraAdapter(genome, this.factors, path, {
        ...(typeof arch === "string" ? { architecture: arch } : {}),
      });
      materialise = performance.now() - t0;
      const base = this.adapterBase;
      open = (p) => base.withAdapter(p);
    } else if (job.target.kind === "genome") {
      const genome = decodeGenome(job.target.genome, this.factors.layout);
      path = join(this.setup.tmpDir, `${job.name}-${process.pid}.gguf`);
      temporary = true;
      await materialiseGguf(path, genome, this.base, this.factors, {
        gemm: this.gemm,
        kernel: this.setup.materialiseKernel,
        pool: this.setup.materialiseKernel === "axpy" ? undefined : this.pool,
        // general.name stays the base's: llama.cpp picks some tokenizer rules by it (phi-3).
        metadata: { "cycleqd.child": gguf.str(job.name) },
      });
      materialise = performance.now() - t0;
    } else {
      path = job.target.path;
    }
    let model: EngineModel | undefined;
    try {
      const t1 = performance.now();
      model = await open(path);
      const load = performance.now() - t1;
      let generate = 0;
      const m = model;
      const timed: SkillModel = {
        generate: async (reqs, opts) => {
          const t = performance.now();
          try {
            return await m.generate(reqs, opts);
          } finally {
            generate += performance.now() - t;
          }
        },
        score: (reqs) => m.score(reqs),
      };
      const t2 = performance.now();
      const before = this.grader.stats();
      const results = await evaluateSkills(timed, this.skills, job.split, {
        runner: this.grader.run,
        likelihood: this.setup.likelihood,
        chat: this.chat,
      });
      const after = this.grader.stats();
      if (before && after && after.fallback > before.fallback)
        // Verdicts are unaffected (those answers ran alone), but a hostile answer is worth a look.
        console.warn(
          `grading ${job.name}: ${after.fallback - before.fallback} answer(s) re-run in a sandbox of their own: ` +
            after.broken.slice(before.broken.length).join("; "),
        );
      const evalMs = performance.now() - t2;
      const scores: Scores = {};
      for (const s of this.skills) {
        scores[s.name] = {
          score: results[s.name].score,
          meanLogLikelihood: results[s.name].meanLogLikelihood,
        };
      }
      return {
        scores,
        gradingFallbacks: before && after ? after.fallback - before.fallback : 0,
        timings: {
          materialise,
          load,
          generate,
          grade: evalMs - generate,
          evaluate: performance.now() - t0,
        },
      };
    } finally {
      await model?.dispose();
      if (temporary) await rm(path, { force: true });
    }
  }

  async close(): Promise<void> {
    await this.grader.close();
    await this.engine.dispose();
    await this.factors.close();
    await this.base.close();
    await this.gemm.dispose();
    await this.pool.dispose();
  }
}
