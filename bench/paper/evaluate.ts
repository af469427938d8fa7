/**
 * Scoring model files for the table, keeping every problem's pass or fail (the paired
 * bootstrap needs them). Results are cached under OUT/evals by the file's bytes and the
 * split, so a restarted bench does not evaluate a model twice.
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createLlamaCppEngine } from "../../src/engine/index.ts";
import type { Engine } from "../../src/engine/types.ts";
import type { RunConfig } from "../../src/run/config.ts";
import { createMiniSkills, evaluateSkills, resolveRunner } from "../../src/skills/index.ts";
import type { Runner, Skill } from "../../src/skills/types.ts";
import { sha256File } from "../../src/zoo/card.ts";

export type EvalSplit = "opt" | "test";

/** One model on one split. */
export interface SplitResult {
  /** Pass rate per skill. */
  scores: Record<string, number>;
  /** Mean of the skills' pass rates. */
  mean: number;
  /** Per skill, one character per problem in split order: "1" passed, "0" failed. */
  passes: Record<string, string>;
}

export interface ModelResult {
  opt: SplitResult;
  test: SplitResult;
}

export class PassEvaluator {
  private constructor(
    private readonly engine: Engine,
    private readonly skills: Skill[],
    private readonly runner: Runner,
    private readonly config: RunConfig,
    private readonly cacheDir: string,
  ) {}

  /** Skills, splits and engine settings as in the runs' config. */
  static async create(config: RunConfig, cacheDir: string): Promise<PassEvaluator> {
    const all = createMiniSkills({ seed: config.skillSeed, sizes: config.split });
    const skills = config.skills.map((n) => all.find((s) => s.name === n) as Skill);
    // Refuses before any work when answers could not be graded safely.
    const runner = await resolveRunner({ unsafe: config.unsafe });
    const engine = await createLlamaCppEngine({
      threads: config.engine.threads,
      parallel: config.engine.parallel,
      contextSize: config.engine.contextSize,
    });
    await mkdir(cacheDir, { recursive: true });
    return new PassEvaluator(engine, skills, runner, config, cacheDir);
  }

  /** The problem ids of a split, per skill, in the order of `passes`. */
  problemIds(split: EvalSplit): Record<string, string[]> {
    return Object.fromEntries(this.skills.map((s) => [s.name, s.problems(split).map((p) => p.id)]));
  }

  async evaluate(path: string, split: EvalSplit): Promise<SplitResult> {
    const key = JSON.stringify({
      model: await sha256File(path),
      split,
      size: this.config.split[split],
      skills: this.config.skills,
      skillSeed: this.config.skillSeed,
    });
    const file = join(
      this.cacheDir,
      `${createHash("sha256").update(key).digest("hex").slice(0, 24)}.json`,
    );
    if (existsSync(file)) {
      const cached = JSON.parse(await readFile(file, "utf8")) as {
        key: string;
        result: SplitResult;
      };
      if (cached.key === key) return cached.result;
    }
    const model = await this.engine.loadModel(path);
    let result: SplitResult;
    try {
      const res = await evaluateSkills(model, this.skills, split, {
        runner: this.runner,
        likelihood: false,
      });
      const scores: Record<string, number> = {};
      const passes: Record<string, string> = {};
      for (const s of this.skills) {
        scores[s.name] = res[s.name].score;
        passes[s.name] = res[s.name].details.map((d) => (d.pass ? "1" : "0")).join("");
      }
      const xs = Object.values(scores);
      result = { scores, mean: xs.reduce((a, b) => a + b, 0) / xs.length, passes };
    } finally {
      await model.dispose();
    }
    await writeFile(`${file}.tmp`, JSON.stringify({ key, result }));
    await rename(`${file}.tmp`, file);
    return result;
  }

  async both(path: string): Promise<ModelResult> {
    return { opt: await this.evaluate(path, "opt"), test: await this.evaluate(path, "test") };
  }

  async close(): Promise<void> {
    await this.engine.dispose();
  }
}
