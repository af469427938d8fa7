/**
 * The zoo recipe: every number that shapes the build, with the defaults that produced the
 * shipped zoo. A build directory remembers its recipe, so a resumed build cannot silently
 * continue with other settings.
 */
import { CORPUS_FORMS, type CorpusForm } from "./corpus.ts";

export interface PretrainStage {
  /** Loss on the answers of Q/A documents, or on a whole token stream. */
  form: CorpusForm;
  /** Updates. */
  steps: number;
  batchSize: number;
  seqLen: number;
  lr: number;
  warmupSteps: number;
  /** Size of the generated token stream (windows are drawn from it at random). */
  corpusTokens: number;
}

export interface SkillStage extends PretrainStage {
  /** Share of documents that are skill Q/A from the `pretrain` split. */
  skillShare: number;
  /** Evaluate `opt` scores every this many updates and stop at the first weak-but-non-zero one. */
  evalEvery: number;
  /** Each skill's `opt` score must reach at least this... */
  minScore: number;
  /** ...and none may exceed this, for the base to count as weak but non-zero. */
  maxScore: number;
}

export interface ExpertStage {
  steps: number;
  batchSize: number;
  /** Longest prompt + answer in tokens. */
  seqLen: number;
  lr: number;
  warmupSteps: number;
  /**
   * Share of the expert's examples that replay the base's own greedy answers to the other
   * skills' `pretrain` prompts (0: the skill's `train` split only). Replay keeps the base's
   * partial skills, as instruct experts keep theirs, so a task vector refines one skill
   * instead of overwriting the others.
   */
  replayShare: number;
}

export interface ZooRecipe {
  stage1: PretrainStage;
  stage2: SkillStage;
  expert: ExpertStage;
  /** Held-out copy items scored after stage 1. */
  copyProbes: number;
  /** Storage type of the shipped weight matrices. */
  dtype: "F16" | "F32";
}

export const DEFAULT_RECIPE: Readonly<ZooRecipe> = Object.freeze<ZooRecipe>({
  stage1: {
    form: "answers",
    steps: 600,
    batchSize: 64,
    seqLen: 128,
    lr: 3e-3,
    warmupSteps: 50,
    corpusTokens: 3_000_000,
  },
  stage2: {
    form: "answers",
    steps: 600,
    batchSize: 32,
    seqLen: 128,
    lr: 1e-3,
    warmupSteps: 10,
    corpusTokens: 1_500_000,
    skillShare: 0.4,
    evalEvery: 25,
    // A base with real partial skill (about a third of each skill's opt problems), as an
    // instruct model has: experts then refine a skill the base half knows, and their task
    // vectors add up instead of each carrying a whole skill. A floor of 0.125 gave a base at
    // 0.1–0.2 whose experts' merges kept almost nothing (task arithmetic at λ = 1: 0.007).
    minScore: 0.35,
    maxScore: 0.6,
  },
  // Short, small-step fine-tunes that replay the base's own answers to the other skills:
  // experts stay below ceiling, keep the base's other skills, and ‖τ‖/‖θ₀‖ ≈ 0.02.
  expert: { steps: 100, batchSize: 16, seqLen: 160, lr: 2e-4, warmupSteps: 10, replayShare: 0.5 },
  copyProbes: 200,
  dtype: "F16",
});

export type RecipeOverrides = {
  [K in keyof ZooRecipe]?: ZooRecipe[K] extends object ? Partial<ZooRecipe[K]> : ZooRecipe[K];
};

function positiveInt(v: unknown, what: string): void {
  if (!(typeof v === "number" && Number.isInteger(v) && v > 0)) {
    throw new Error(`zoo recipe: ${what} must be a positive integer, got ${String(v)}`);
  }
}

function inUnit(v: unknown, what: string): void {
  if (!(typeof v === "number" && v >= 0 && v <= 1)) {
    throw new Error(`zoo recipe: ${what} must be a number in [0, 1], got ${String(v)}`);
  }
}

function positive(v: unknown, what: string): void {
  if (!(typeof v === "number" && Number.isFinite(v) && v > 0)) {
    throw new Error(`zoo recipe: ${what} must be a positive number, got ${String(v)}`);
  }
}

/** The default recipe with `overrides` applied, checked field by field. */
export function resolveRecipe(overrides: RecipeOverrides = {}): ZooRecipe {
  const r: ZooRecipe = {
    stage1: { ...DEFAULT_RECIPE.stage1, ...overrides.stage1 },
    stage2: { ...DEFAULT_RECIPE.stage2, ...overrides.stage2 },
    expert: { ...DEFAULT_RECIPE.expert, ...overrides.expert },
    copyProbes: overrides.copyProbes ?? DEFAULT_RECIPE.copyProbes,
    dtype: overrides.dtype ?? DEFAULT_RECIPE.dtype,
  };
  for (const stage of ["stage1", "stage2", "expert"] as const) {
    const s = r[stage];
    for (const k of ["steps", "batchSize", "seqLen"] as const) positiveInt(s[k], `${stage}.${k}`);
    positive(s.lr, `${stage}.lr`);
    if (!(Number.isInteger(s.warmupSteps) && s.warmupSteps >= 0)) {
      throw new Error(`zoo recipe: ${stage}.warmupSteps must be an integer ≥ 0`);
    }
  }
  for (const stage of ["stage1", "stage2"] as const) {
    if (!CORPUS_FORMS.includes(r[stage].form)) {
      throw new Error(`zoo recipe: ${stage}.form must be "stream" or "answers"`);
    }
  }
  positiveInt(r.stage1.corpusTokens, "stage1.corpusTokens");
  positiveInt(r.stage2.corpusTokens, "stage2.corpusTokens");
  positiveInt(r.stage2.evalEvery, "stage2.evalEvery");
  inUnit(r.stage2.skillShare, "stage2.skillShare");
  inUnit(r.stage2.minScore, "stage2.minScore");
  inUnit(r.stage2.maxScore, "stage2.maxScore");
  if (r.stage2.minScore > r.stage2.maxScore) {
    throw new Error("zoo recipe: stage2.minScore must not exceed stage2.maxScore");
  }
  if (
    !(
      typeof r.expert.replayShare === "number" &&
      r.expert.replayShare >= 0 &&
      r.expert.replayShare < 1
    )
  ) {
    throw new Error(
      `zoo recipe: expert.replayShare must be a number in [0, 1), got ${String(r.expert.replayShare)}`,
    );
  }
  positiveInt(r.copyProbes, "copyProbes");
  if (r.dtype !== "F16" && r.dtype !== "F32") {
    throw new Error(`zoo recipe: dtype must be "F16" or "F32", got ${String(r.dtype)}`);
  }
  return r;
}
