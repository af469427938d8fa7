/**
 * Multi-turn episodes as AgentBench runs them: the model acts, the environment answers with an
 * observation, and so on until the model commits (or the round limit is hit); then the
 * environment grades. Every round sends all live episodes to the engine in one generate() call.
 */
import type { ChatFormatter } from "./chat.ts";
import { defaultConcurrency, mapLimit } from "./pool.ts";
import type { Grade, SkillModel } from "./types.ts";

export type StepResult =
  | { done: false; observation: string }
  | { done: true; grade: Grade; observation?: string };

export interface Environment {
  /** The opening text of the transcript (instructions and the task). */
  start(): Promise<string>;
  /** Reacts to one model turn. `observation` is appended to the transcript after the turn. */
  step(action: string): Promise<StepResult>;
  /** Grades an episode that ran out of rounds; default: a fail saying so. */
  timeout?(): Promise<Grade>;
}

export interface EpisodeOptions {
  /** Most model turns per episode (AgentBench OS uses 8). */
  maxRounds: number;
  /** Most tokens per turn. */
  maxTokens: number;
  /** Stop strings that end a turn (e.g. the observation's prefix). */
  stop: string[];
  /** Appended after each turn's text in the transcript (e.g. "\n"). */
  turnEnd?: string;
  /** Environment steps running at once (default 2 × CPU cores). */
  concurrency?: number;
  /**
   * The model's chat template: the episode is then a conversation (the task and each
   * observation as user messages, each turn as the assistant's), and the template's
   * end-of-turn strings also stop a turn. Absent or null: one raw transcript.
   */
  chat?: ChatFormatter | null;
}

export interface Turn {
  action: string;
  observation: string;
}

export interface EpisodeResult extends Grade {
  rounds: number;
  turns: Turn[];
  /** The whole transcript, as the model saw it plus its last turn. */
  transcript: string;
}

interface Live {
  env: Environment;
  transcript: string;
  /** With a chat template: user, assistant, user, ... messages so far. */
  messages: string[];
  turns: Turn[];
  result?: EpisodeResult;
}

/** Cuts a turn at the earliest stop string (engines usually do this already). */
function cut(text: string, stop: readonly string[]): string {
  let end = text.length;
  for (const s of stop) {
    const i = s ? text.indexOf(s) : -1;
    if (i >= 0 && i < end) end = i;
  }
  return text.slice(0, end);
}

export async function runEpisodes(
  model: SkillModel,
  envs: Environment[],
  opts: EpisodeOptions,
): Promise<EpisodeResult[]> {
  if (!(Number.isInteger(opts.maxRounds) && opts.maxRounds >= 1)) {
    throw new Error(`maxRounds must be a positive integer, got ${opts.maxRounds}`);
  }
  const concurrency = opts.concurrency ?? defaultConcurrency();
  const turnEnd = opts.turnEnd ?? "";
  const chat = opts.chat ?? null;
  const stop = chat ? [...new Set([...opts.stop, ...chat.stops])] : opts.stop;
  const live: Live[] = await Promise.all(
    envs.map(async (env) => {
      const transcript = await env.start();
      return { env, transcript, messages: [transcript], turns: [] };
    }),
  );
  for (let round = 1; round <= opts.maxRounds; round++) {
    const active = live.filter((e) => !e.result);
    if (active.length === 0) break;
    const gens = await model.generate(
      active.map((e) =>
        chat
          ? {
              prompt: chat.conversation(e.messages),
              maxTokens: opts.maxTokens,
              stop,
              special: true,
            }
          : { prompt: e.transcript, maxTokens: opts.maxTokens, stop },
      ),
    );
    await mapLimit(active, concurrency, async (e, i) => {
      const action = cut(gens[i].text, stop);
      const r = await e.env.step(action);
      const observation = r.observation ?? "";
      e.turns.push({ action, observation });
      e.transcript += action + turnEnd + observation;
      e.messages.push(action, observation.trim());
      if (r.done) {
        e.result = { ...r.grade, rounds: round, turns: e.turns, transcript: e.transcript };
      }
    });
  }
  return Promise.all(
    live.map(async (e) => {
      if (e.result) return e.result;
      const g = e.env.timeout
        ? await e.env.timeout()
        : { pass: false, reason: `round limit (${opts.maxRounds}) reached` };
      return { ...g, rounds: opts.maxRounds, turns: e.turns, transcript: e.transcript };
    }),
  );
}
