/**
 * The build's memory between runs: which stages are done, what they measured, and the
 * settings they ran with. Written atomically after every change, so a killed build resumes
 * from its last checkpoint instead of starting over.
 */
import { existsSync } from "node:fs";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import type { LlamaConfig } from "../llm/config.ts";
import type { StageRecord } from "./card.ts";
import type { ZooRecipe } from "./recipe.ts";

const STATE_FORMAT = "cycleqd-zoo-build-v1";

/** A stage under way: what it has spent and reached at its last checkpoint. */
export interface StageProgress {
  seconds: number;
  /** Tokens of the batches trained on (padding included). */
  tokens: number;
  /** Loss of the last update. */
  loss: number;
}

export interface Stage2Eval extends StageProgress {
  step: number;
  /** `opt` pass rate per skill. */
  scores: Record<string, number>;
  accepted: boolean;
}

export interface BuildState {
  format: typeof STATE_FORMAT;
  seed: number;
  config: LlamaConfig;
  recipe: ZooRecipe;
  skills: string[];
  /** Finished stages. */
  done: Record<string, StageRecord>;
  /** Stages under way (kept across a kill). */
  partial: Record<string, StageProgress>;
  stage2Evals: Stage2Eval[];
}

export function newState(
  seed: number,
  config: LlamaConfig,
  recipe: ZooRecipe,
  skills: string[],
): BuildState {
  return {
    format: STATE_FORMAT,
    seed,
    config,
    recipe,
    skills,
    done: {},
    partial: {},
    stage2Evals: [],
  };
}

/** Loads the state in `path`, or a fresh one; refuses a state made with other settings. */
export async function loadState(path: string, fresh: BuildState): Promise<BuildState> {
  if (!existsSync(path)) return fresh;
  const old = JSON.parse(await readFile(path, "utf8")) as BuildState;
  if (old.format !== STATE_FORMAT) throw new Error(`${path} is not a zoo build state`);
  for (const k of ["seed", "config", "recipe", "skills"] as const) {
    if (JSON.stringify(old[k]) !== JSON.stringify(fresh[k])) {
      throw new Error(
        `${dirname(path)} holds an unfinished zoo build with another ${k} ` +
          `(${JSON.stringify(old[k])}); resume it with the same settings, or delete ${dirname(path)}`,
      );
    }
  }
  return old;
}

export async function saveState(path: string, state: BuildState): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp`;
  await writeFile(tmp, `${JSON.stringify(state, null, 2)}\n`);
  await rename(tmp, path);
}
