/**
 * The skill interface: a set of problems in disjoint splits, a prompt format, and a grader
 * that really executes what the model wrote (in the sandbox).
 */
import type { EngineModel } from "../engine/types.ts";
import type { SandboxOptions, SandboxResult } from "../sandbox/index.ts";
import type { Environment } from "./agent.ts";

export const SPLITS = ["pretrain", "train", "opt", "test"] as const;

/**
 * `pretrain`: skill data a base model may see; `train`: expert fine-tuning; `opt`: the
 * split CycleQD optimises on; `test`: held out, only for final tables. Pairwise disjoint.
 */
export type Split = (typeof SPLITS)[number];

export interface Problem {
  /** Unique within a skill, e.g. "code/opt/0007". */
  id: string;
  split: Split;
  /** Template id (for loaded data sets: the source's type or task id). */
  template: string;
  /** Canonical identity of (template, values): never shared by two splits. */
  key: string;
  /** The request in English, as shown to the model inside the prompt. */
  instruction: string;
  /** One correct answer, without the terminator; "" when the source has none. */
  reference: string;
}

export interface Grade {
  pass: boolean;
  /** "ok" on a pass, otherwise what went wrong, e.g. "syntax error". */
  reason: string;
  /**
   * false when the problem cannot be graded here at all, whatever the answer (its setup
   * failed, or it needs what the sandbox cannot give, such as root-owned paths): it is then
   * reported and left out of the pass rate, never counted as a failure. Default true.
   */
  gradable?: boolean;
}

/** Runs one command in a fresh, isolated working directory (the sandbox, or not). */
export type Runner = (req: SandboxOptions) => Promise<SandboxResult>;

export interface GradeContext {
  run: Runner;
}

/**
 * A task the search scores models on: problems in four disjoint splits, the prompt format,
 * and a grader that executes the answer. A model's score on a skill is its pass rate in
 * [0, 1] over a split (`evaluateSkills`).
 */
export interface Skill<P extends Problem = Problem> {
  /** Unique among the skills of a run: the task name (e.g. "code"). */
  name: string;
  /** The problems of one split, generated (or loaded) once and cached. */
  problems(split: Split): P[];
  /** The full prompt for a problem; the model's answer follows it directly. */
  format(problem: P): string;
  /** Generation stops at the first of these; they are not part of the answer. */
  stop: string[];
  /** Appended to the reference when its likelihood is scored (the answer's end marker). */
  terminator: string;
  /** Most tokens the model may generate per answer. */
  maxTokens: number;
  /** Executes the answer and judges it. Never throws for a bad answer. */
  grade(problem: P, output: string, ctx: GradeContext): Promise<Grade>;
  /** Records of the skill's data files that were left out as malformed (loaded skills). */
  skipped?: readonly SkippedRecord[];
  /**
   * Set when the skill is judged as multi-turn episodes (AgentBench's protocol): the model
   * acts, the environment answers, until the model commits or `maxRounds` turns are used;
   * then the environment grades. `format` and `grade` are then not used for scoring.
   */
  episodes?: EpisodeSkill<P>;
}

/** How a skill runs as multi-turn episodes (`runEpisodes` in agent.ts). */
export interface EpisodeSkill<P extends Problem = Problem> {
  /** The environment of one problem; model-written commands run only through `run`. */
  environment(problem: P, run: Runner): Environment;
  /** Most model turns per episode. */
  maxRounds: number;
  /** Stop strings that end a turn. */
  stop: string[];
}

/** A data-set record left out of a skill: where it is and why. */
export interface SkippedRecord {
  file: string;
  /** 1-based line of the record in its file. */
  line: number;
  reason: string;
}

/** What skills need of a model: batched greedy generation and likelihood scoring. */
export type SkillModel = Pick<EngineModel, "generate" | "score">;

export interface ProblemResult {
  id: string;
  prompt: string;
  output: string;
  pass: boolean;
  reason: string;
  /** false: the problem could not be graded here and is left out of the pass rate. */
  gradable: boolean;
}

export interface SkillResult {
  /** Pass rate in [0, 1] over the gradable problems (0 when none is gradable). */
  score: number;
  /** Problems that could not be graded here, left out of the pass rate. */
  ungradable: number;
  /** Mean per-token log-likelihood of the reference answers (NaN when not scored). */
  meanLogLikelihood: number;
  details: ProblemResult[];
}
