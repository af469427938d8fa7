/**
 * The data-mixing baseline of the paper's table: the base fine-tuned on every skill's
 * `train` split at once, with the token budget the K experts used together (the sum of their
 * updates, at their batch size, learning rate and sequence length). CycleQD is meant to beat
 * it without choosing mixing ratios; here the mix is simply the union of the skills' data.
 */
import type { Gemm } from "../linalg/gemm.ts";
import type { Example } from "../llm/batches.ts";
import type { LlamaConfig } from "../llm/config.ts";
import type { Params } from "../llm/model.ts";
import { type StepInfo, train } from "../llm/train.ts";
import type { Skill } from "../skills/types.ts";
import { expertExamples } from "./build.ts";
import type { ZooCard } from "./card.ts";
import type { ExpertStage } from "./recipe.ts";

/** Seed offset of the mixed fine-tune: apart from stage 2 (+1000) and the experts (+2000 + k). */
export const MIXED_SEED_OFFSET = 3000;

export interface MixedBudget {
  /** Updates: the experts' updates summed. */
  steps: number;
  /** Tokens the experts trained on, summed (B·T per update, padding included). */
  tokens: number;
  perExpert: Record<string, { steps: number; tokens: number }>;
}

/** The budget the zoo's K experts used together, read from the card's build record. */
export function mixedBudget(card: ZooCard): MixedBudget {
  const perExpert: MixedBudget["perExpert"] = {};
  for (const s of card.skills) {
    const stage = card.build.stages[`expert:${s}`];
    // A card without the stage record (hand-made zoos) falls back to the recipe's updates.
    perExpert[s] = { steps: stage?.steps ?? card.recipe.expert.steps, tokens: stage?.tokens ?? 0 };
  }
  const all = Object.values(perExpert);
  return {
    steps: all.reduce((a, e) => a + e.steps, 0),
    tokens: all.reduce((a, e) => a + e.tokens, 0),
    perExpert,
  };
}

/** Every skill's `train` examples together: each skill's share is its share of the data. */
export function mixedExamples(skills: Skill[]): Example[] {
  return skills.flatMap((s) => expertExamples(s));
}

export interface MixedFinetuneOptions {
  /** θ₀; copied, never modified. */
  base: Params;
  config: LlamaConfig;
  /** The skills whose `train` splits are mixed (seeded as the zoo's were). */
  skills: Skill[];
  /** The experts' settings (the card's `recipe.expert`); replay is not used. */
  recipe: ExpertStage;
  /** Updates (the experts' summed updates for the paper's comparison). */
  steps: number;
  seed: number;
  gemm: Gemm;
  /** Resumable training: checkpoints go here. */
  checkpointPath?: string;
  checkpointEvery?: number;
  onStep?: (s: StepInfo) => void | Promise<void>;
}

/** Fine-tunes the base on all skills' `train` data mixed; returns the weights. */
export async function mixedFinetune(o: MixedFinetuneOptions): Promise<Params> {
  const r = o.recipe;
  const res = await train({
    config: o.config,
    gemm: o.gemm,
    data: { kind: "examples", examples: mixedExamples(o.skills) },
    params: o.base,
    steps: o.steps,
    batchSize: r.batchSize,
    seqLen: r.seqLen,
    seed: o.seed,
    lr: r.lr,
    // A run shorter than the warmup (a smoke test) still reaches its peak rate.
    warmupSteps: Math.min(r.warmupSteps, o.steps),
    checkpointPath: o.checkpointPath,
    checkpointEvery: o.checkpointEvery,
    onStep: o.onStep,
  });
  return res.params;
}
