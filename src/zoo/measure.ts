/**
 * Measurements the zoo build makes on real model files through llama.cpp: copy accuracy on
 * held-out copy items and skill scores. Weights in memory are written to a GGUF first, so
 * what is measured is exactly what a user of the file gets.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Engine, EngineModel } from "../engine/types.ts";
import type { LlamaConfig } from "../llm/config.ts";
import { exportGguf } from "../llm/export.ts";
import type { Params } from "../llm/model.ts";
import { type EvaluateOptions, evaluateSkills } from "../skills/evaluate.ts";
import type { Skill, SkillResult, Split } from "../skills/types.ts";
import type { FloatDType } from "../tensors/dtype.ts";

/** Fraction of copy probes answered exactly (generation stops at the newline). */
export async function copyAccuracy(
  model: EngineModel,
  probes: { prompt: string; answer: string }[],
): Promise<number> {
  const out = await model.generate(
    probes.map((p) => ({ prompt: p.prompt, maxTokens: p.answer.length + 8, stop: ["\n"] })),
  );
  let ok = 0;
  out.forEach((g, i) => {
    if (g.text.trim() === probes[i].answer) ok++;
  });
  return probes.length ? ok / probes.length : 0;
}

/** Runs `fn` on the weights loaded by llama.cpp from a temporary GGUF. */
export async function withModel<T>(
  engine: Engine,
  config: LlamaConfig,
  params: Params,
  fn: (m: EngineModel) => Promise<T>,
  dtype: FloatDType = "F32",
): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), "cycleqd-zoo-"));
  try {
    const path = join(dir, "model.gguf");
    await exportGguf(path, config, params, { dtype });
    const model = await engine.loadModel(path);
    try {
      return await fn(model);
    } finally {
      await model.dispose();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Pass rate per skill on one split. */
export async function skillScores(
  model: EngineModel,
  skills: Skill[],
  split: Split,
  opts: EvaluateOptions = {},
): Promise<Record<string, number>> {
  const res = await evaluateSkills(model, skills, split, { likelihood: false, ...opts });
  return scoresOf(res);
}

export function scoresOf(res: Record<string, SkillResult>): Record<string, number> {
  return Object.fromEntries(Object.entries(res).map(([k, r]) => [k, r.score]));
}
