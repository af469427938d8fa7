/**
 * Scores a model on several skills at once: one batched generate() call for every problem of
 * every skill, each answer graded (in parallel) as soon as it is generated, and optionally one
 * batched score() call for the reference answers.
 */
import type { GenerateResult } from "../engine/types.ts";
import { runEpisodes } from "./agent.ts";
import type { ChatFormatter } from "./chat.ts";
import { defaultConcurrency, limiter } from "./pool.ts";
import { type Grader, openGrader, type RunnerOptions } from "./runner.ts";
import { extractAnswer } from "./text.ts";
import type {
  Problem,
  ProblemResult,
  Runner,
  Skill,
  SkillModel,
  SkillResult,
  Split,
} from "./types.ts";

export interface EvaluateOptions {
  /** Graders running at once (default 2 × CPU cores). */
  concurrency?: number;
  /** Run model output without a sandbox when none works (dangerous; default false). */
  unsafe?: boolean;
  /** Score the references' likelihood too (default true). */
  likelihood?: boolean;
  /** Use this runner instead of the sandbox (remote executors, tests). */
  runner?: Runner;
  /** Without a runner: lanes of long-lived sandboxes (default true) or one per answer. */
  batch?: boolean;
  /** The sandbox probe (default: checkSandbox). */
  check?: RunnerOptions["check"];
  /** At most this many problems per skill, from the start of the split. */
  limit?: number;
  /**
   * The model's chat template (`chatFormatter`, skills/chat.ts): each skill's prompt becomes
   * the user message, the template's end-of-turn strings join the skill's stops, and prompts
   * are generated and scored with special tokens read (`special: true`). Absent or null:
   * prompts stay as the skills write them (the tiny byte-vocabulary zoo).
   */
  chat?: ChatFormatter | null;
}

interface Job {
  skill: Skill;
  problem: Problem;
  prompt: string;
  /** The skill's stops, then the chat template's end-of-turn strings. */
  stop: string[];
}

/**
 * Scores `model` on every problem of `split` for each skill: pass rate in [0, 1] and mean
 * per-token log-likelihood (nats) of the references, by skill name. Throws for repeated skill
 * names, a `limit` that is not an integer ≥ 0, no working sandbox (unless `unsafe` or a
 * `runner`), a failed generation or scoring, and a grader that throws; a wrong answer is a
 * failed problem, never an error.
 */
export async function evaluateSkills(
  model: SkillModel,
  skills: Skill[],
  split: Split,
  opts: EvaluateOptions = {},
): Promise<Record<string, SkillResult>> {
  const names = new Set<string>();
  for (const s of skills) {
    if (names.has(s.name))
      throw new Error(`two skills are named "${s.name}"; names must be unique`);
    names.add(s.name);
  }
  if (opts.limit !== undefined && !(Number.isInteger(opts.limit) && opts.limit >= 0)) {
    throw new Error(`limit must be a non-negative integer, got ${opts.limit}`);
  }
  // Fail before the expensive generation when answers could not be graded safely.
  const grader = opts.runner
    ? null
    : await openGrader({ unsafe: opts.unsafe, check: opts.check, batch: opts.batch });
  try {
    return await evaluateWith(model, skills, split, opts, opts.runner ?? (grader as Grader).run);
  } finally {
    await grader?.close();
  }
}

async function evaluateWith(
  model: SkillModel,
  skills: Skill[],
  split: Split,
  opts: EvaluateOptions,
  run: Runner,
): Promise<Record<string, SkillResult>> {
  const concurrency = opts.concurrency ?? defaultConcurrency();
  const chat = opts.chat ?? null;
  // Raw prompts keep their requests exactly as before.
  const special = chat ? { special: true } : {};

  const jobs: Job[] = [];
  for (const skill of skills) {
    if (skill.episodes) continue; // multi-turn: run as episodes below
    const stop = chat ? [...new Set([...skill.stop, ...chat.stops])] : skill.stop;
    const ps = skill.problems(split);
    for (const problem of opts.limit === undefined ? ps : ps.slice(0, opts.limit)) {
      const text = skill.format(problem);
      jobs.push({ skill, problem, prompt: chat ? chat.format(text) : text, stop });
    }
  }

  // Each answer is graded as soon as it is generated, on the cores decoding leaves free.
  const gate = limiter(concurrency);
  const grading = new Array<Promise<ProblemResult> | undefined>(jobs.length);
  const grade = (i: number, text: string) => {
    if (grading[i]) return;
    const j = jobs[i];
    const p = gate(async () => {
      const output = extractAnswer(text, j.stop);
      const g = await j.skill.grade(j.problem, output, { run });
      const gradable = g.gradable !== false;
      return {
        id: j.problem.id,
        prompt: j.prompt,
        output,
        pass: gradable && g.pass,
        reason: g.reason,
        gradable,
      };
    });
    // Failures surface from the Promise.all below, not as unhandled rejections meanwhile.
    p.catch(() => {});
    grading[i] = p;
  };
  let generations: GenerateResult[];
  try {
    generations = await model.generate(
      jobs.map((j) => ({
        prompt: j.prompt,
        maxTokens: j.skill.maxTokens,
        stop: j.stop,
        ...special,
      })),
      { onResult: (i, r) => grade(i, r.text) },
    );
    if (generations.length !== jobs.length) {
      throw new Error(
        `the model returned ${generations.length} generations for ${jobs.length} prompts`,
      );
    }
  } catch (e) {
    // Let graders already started finish before reporting, so none outlives the call.
    await Promise.allSettled(grading);
    throw e;
  }
  for (let i = 0; i < jobs.length; i++) grade(i, generations[i].text);

  const scored = opts.likelihood === false ? [] : jobs.filter((j) => j.problem.reference !== "");
  const likelihoods = scored.length
    ? model.score(
        scored.map((j) => ({
          prompt: j.prompt,
          continuation: j.problem.reference + j.skill.terminator,
          ...special,
        })),
      )
    : Promise.resolve([]);

  const grades = Promise.all(grading as Promise<ProblemResult>[]);
  const [details, scores] = await Promise.all([grades, likelihoods]);
  const episodic = new Map<Skill, ProblemResult[]>();
  for (const skill of skills) {
    if (skill.episodes) episodic.set(skill, await episodes(model, skill, split, run, opts));
  }

  const out: Record<string, SkillResult> = {};
  for (const skill of skills) {
    const mine: ProblemResult[] =
      episodic.get(skill) ?? details.filter((_, i) => jobs[i].skill === skill);
    let sum = 0;
    let count = 0;
    scored.forEach((j, i) => {
      if (j.skill !== skill) return;
      for (const lp of scores[i].logprobs) sum += lp;
      count += scores[i].logprobs.length;
    });
    const graded = mine.filter((d) => d.gradable);
    out[skill.name] = {
      score: graded.length ? graded.filter((d) => d.pass).length / graded.length : 0,
      ungradable: mine.length - graded.length,
      meanLogLikelihood: count ? sum / count : Number.NaN,
      details: mine,
    };
  }
  return out;
}

/** A multi-turn skill's problems as AgentBench episodes (a conversation with a chat template). */
async function episodes(
  model: SkillModel,
  skill: Skill,
  split: Split,
  run: Runner,
  opts: EvaluateOptions,
): Promise<ProblemResult[]> {
  const e = skill.episodes as NonNullable<Skill["episodes"]>;
  const ps = skill.problems(split);
  const problems = opts.limit === undefined ? ps : ps.slice(0, opts.limit);
  const results = await runEpisodes(
    model,
    problems.map((p) => e.environment(p, run)),
    {
      maxRounds: e.maxRounds,
      maxTokens: skill.maxTokens,
      stop: e.stop,
      concurrency: opts.concurrency,
      chat: opts.chat,
    },
  );
  return results.map((r, i) => {
    const gradable = r.gradable !== false;
    return {
      id: problems[i].id,
      // The whole episode as the model saw it, and its last turn.
      prompt: r.transcript,
      output: r.turns.at(-1)?.action ?? "",
      pass: gradable && r.pass,
      reason: `${r.reason} (${r.rounds} turn${r.rounds === 1 ? "" : "s"})`,
      gradable,
    };
  });
}
