/**
 * AgentBench OS (THUDM/AgentBench data/os_interaction/data/*.json) as a skill. Problems give
 * `description`, `create.init` scripts, an optional background `start`, and `evaluation`:
 * `match` (the answer must equal a string, or match a regex) or `check` scripts run with the
 * answer (a `null` entry stands for the `example` script, whose output is passed on).
 *
 * One turn (`grade`): the model's line is a bash command, and its output is the answer; an
 * AgentBench-style turn ("Act: answer(...)", "Act: bash" with a ```bash block, "Act: finish")
 * is accepted too. Many turns (`osEpisode` with `runEpisodes`): AgentBench's protocol.
 *
 * Differences from AgentBench: commands run in the sandbox's writable work dir (HOME) as an
 * unprivileged user instead of a root Docker container, so tasks that need /root, useradd,
 * apt or a custom image cannot pass here.
 */

import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Environment, StepResult } from "../agent.ts";
import { MINI_STOP, miniPrompt } from "../mini.ts";
import { type Script, ShellSession } from "../os/session.ts";
import { clip, extractAnswer } from "../text.ts";
import type { Grade, Problem, Runner, Skill, Split } from "../types.ts";
import { DataError, Fields, type SourceRecord } from "./records.ts";
import { type LoadOptions, loadSplits, type SplitSources } from "./splits.ts";

export type Evaluation =
  | { kind: "match"; answer: string; strip: boolean }
  | { kind: "regex"; regex: string }
  | { kind: "check"; checks: Script[] };

export interface OsInteractionProblem extends Problem {
  init: Script[];
  start?: string;
  evaluation: Evaluation;
  labels: string[];
}

export interface OsInteractionOptions extends LoadOptions {
  name?: string;
  /** Where `{"file": ...}` scripts live (AgentBench's script_dir); default: the data file's folder. */
  scriptDir?: string;
  maxTokens?: number;
}

function scriptOf(f: Fields, at: string, v: unknown, dir: string): Script {
  if (typeof v === "string") return { language: "bash", code: v };
  if (v === null || typeof v !== "object" || Array.isArray(v)) {
    throw new DataError(`${f.where(at)} must be a string or an object with "code" or "file"`);
  }
  const o = v as Record<string, unknown>;
  const language = o.language === undefined ? "bash" : o.language;
  if (language !== "bash" && language !== "python") {
    throw new DataError(
      `${f.where(`${at}.language`)} is "${String(language)}"; only bash and python run here`,
    );
  }
  if (typeof o.code === "string") return { language, code: o.code };
  if (typeof o.file === "string") {
    const path = join(dir, o.file);
    try {
      return { language, code: readFileSync(path, "utf8") };
    } catch (e) {
      throw new DataError(`${f.where(`${at}.file`)}: cannot read ${path}: ${(e as Error).message}`);
    }
  }
  throw new DataError(`${f.where(at)} needs "code" or "file"`);
}

function parseOsRecord(
  rec: SourceRecord,
  id: string,
  split: Split,
  scriptDir?: string,
): OsInteractionProblem {
  const f = new Fields(rec);
  const dir = scriptDir ?? dirname(rec.file);
  const description = f.string("description");
  const init: Script[] = [];
  if (f.has("create")) {
    const create = f.object("create");
    const raw = create.init;
    if (raw !== undefined && raw !== null) {
      const items = Array.isArray(raw) ? raw : [raw];
      items.forEach((s, i) => {
        if (s !== null)
          init.push(scriptOf(f, `create.init${Array.isArray(raw) ? `[${i}]` : ""}`, s, dir));
      });
    }
  }
  const start = f.has("start") ? scriptOf(f, "start", f.raw("start"), dir) : undefined;
  if (start && start.language !== "bash") f.fail("start", "must be a bash script");
  const ev = f.object("evaluation");
  let evaluation: Evaluation;
  let reference = "";
  const example = ev.example ?? f.raw("example");
  if (ev.match !== undefined) {
    const m = ev.match;
    if (typeof m === "string") evaluation = { kind: "match", answer: m, strip: true };
    else if (
      m &&
      typeof m === "object" &&
      typeof (m as Record<string, unknown>).answer === "string"
    ) {
      const mo = m as Record<string, unknown>;
      evaluation = { kind: "match", answer: mo.answer as string, strip: mo.strip !== false };
    } else if (
      m &&
      typeof m === "object" &&
      typeof (m as Record<string, unknown>).regex === "string"
    ) {
      evaluation = { kind: "regex", regex: (m as Record<string, unknown>).regex as string };
    } else {
      throw new DataError(
        `${f.where("evaluation.match")} must be a string or {"answer"} or {"regex"}`,
      );
    }
  } else if (ev.check !== undefined) {
    const raw = ev.check;
    const items = Array.isArray(raw) ? raw : [raw];
    const ex = example === undefined ? undefined : scriptOf(f, "evaluation.example", example, dir);
    const checks = items.map((s, i) => {
      if (s !== null) return scriptOf(f, `evaluation.check[${i}]`, s, dir);
      if (!ex)
        throw new DataError(
          `${f.where(`evaluation.check[${i}]`)} is null but there is no example script`,
        );
      return ex;
    });
    evaluation = { kind: "check", checks };
    if (ex?.language === "bash") reference = ex.code.trim();
  } else {
    throw new DataError(`${f.where("evaluation")} needs "match" or "check"`);
  }
  if (!reference && example !== undefined && example !== null) {
    const ex = scriptOf(f, "example", example, dir);
    if (ex.language === "bash") reference = ex.code.trim();
  }
  const labels = f.has("labels") ? f.stringArray("labels") : [];
  return {
    id,
    split,
    template: labels[0] ?? "os",
    key: `os:${description}\n${JSON.stringify(init)}\n${start?.code ?? ""}`,
    instruction: description,
    reference,
    init,
    start: start?.code,
    evaluation,
    labels,
  };
}

function setupOf(p: OsInteractionProblem) {
  return { files: {}, init: p.init, start: p.start };
}

/** Judges an answer (or, with `fromOutput`, the last command's stdout) after the session's commands. */
async function judgeOs(
  session: ShellSession,
  p: OsInteractionProblem,
  answer: string | { fromOutput: true },
): Promise<Grade> {
  const ev = p.evaluation;
  const j = await session.judge(answer, ev.kind === "check" ? ev.checks : []);
  if (j.timedOut) return { pass: false, reason: "timeout" };
  if (ev.kind === "check") {
    if (j.passed) return { pass: true, reason: "ok" };
    const failed = j.checks.findIndex((c) => c !== 0);
    return {
      pass: false,
      reason:
        failed >= 0
          ? `check script ${failed} failed (exit ${j.checks[failed]}) for answer "${clip(j.answer, 40)}"`
          : "the checks did not finish",
    };
  }
  if (ev.kind === "regex") {
    return new RegExp(ev.regex).test(j.answer)
      ? { pass: true, reason: "ok" }
      : { pass: false, reason: `answer "${clip(j.answer, 40)}" does not match /${ev.regex}/` };
  }
  const got = ev.strip ? j.answer.trim() : j.answer;
  return got === ev.answer
    ? { pass: true, reason: "ok" }
    : {
        pass: false,
        reason: `wrong answer: got "${clip(got, 40)}", expected "${clip(ev.answer, 40)}"`,
      };
}

export type AgentAction =
  | { action: "bash"; content: string }
  | { action: "answer"; content: string }
  | { action: "finish" }
  | { action: "invalid"; why: string };

/** AgentBench's action parser: the last "Act:" line decides; bash code comes from ```bash blocks. */
export function parseAgentAction(raw: string): AgentAction {
  const acts = [...raw.matchAll(/Act:\s*(.+)/g)].map((m) => m[1]).reverse();
  for (const act of acts) {
    const a = act.toLowerCase();
    if (a.startsWith("bash")) {
      const blocks = [...raw.matchAll(/```bash\n([\s\S]*?)\n```/g)].map((m) => m[1]);
      if (blocks.length === 0)
        return { action: "invalid", why: "Act: bash without a ```bash block" };
      return { action: "bash", content: blocks.join("\n\n") };
    }
    if (a.startsWith("finish")) return { action: "finish" };
    if (a.startsWith("answer")) {
      const rest = act.slice(6).trim();
      const l = rest.indexOf("(");
      const r = rest.lastIndexOf(")");
      if (l === -1 || r === -1) continue;
      return { action: "answer", content: rest.slice(l + 1, r) };
    }
  }
  return { action: "invalid", why: "no Act: bash, Act: answer(...) or Act: finish" };
}

const AGENT_INTRO =
  "You act on a Linux shell to solve the problem below. Each turn, think, then take exactly one action:\n" +
  "Think: ...\nAct: bash\n```bash\n<one command>\n```\n" +
  "or, when the question is answered:\nThink: ...\nAct: answer(<the answer>)\n" +
  "or, when the requested change is done:\nThink: ...\nAct: finish\n\n";

/** AgentBench's multi-turn protocol over a replayed shell session, for `runEpisodes`. */
export function osEpisode(run: Runner, p: OsInteractionProblem, maxOutput = 800): Environment {
  const session = new ShellSession(run, setupOf(p));
  return {
    start: async () => `${AGENT_INTRO}Problem: ${p.instruction}\nAgent: `,
    step: async (text): Promise<StepResult> => {
      const a = parseAgentAction(text);
      if (a.action === "invalid")
        return { done: true, grade: { pass: false, reason: `invalid action: ${a.why}` } };
      if (a.action === "answer") return { done: true, grade: await judgeOs(session, p, a.content) };
      if (a.action === "finish") return { done: true, grade: await judgeOs(session, p, "") };
      const r = await session.exec(a.content);
      let out = r.output;
      if (out.length > maxOutput)
        out = `${out.slice(0, maxOutput - 20)}\n[truncated because the output is too long]`;
      const obs = r.timedOut
        ? "The command timed out."
        : out
          ? `The output of the OS:\n${out}`
          : "The output of the OS is empty.";
      return { done: false, observation: `\nOS: ${obs}\nAgent: ` };
    },
  };
}

/** Stop strings for `runEpisodes` with `osEpisode`. */
export const OS_EPISODE_STOP = ["\nOS:"];

/**
 * AgentBench OS files as the skill `os` (or `opts.name`): one bash command (or an
 * AgentBench "Act:" turn), at most `maxTokens` tokens (default 256), judged in the sandbox.
 * Reads every file now (JSON, JSON array or JSONL, per split or one pool divided by
 * `assign`); throws a DataError naming file, line and field for an unreadable file, one
 * with no records, a malformed record, or a problem in two splits, and an Error for an
 * unknown split or no files at all.
 */
export function loadOsInteractionSkill(
  sources: SplitSources,
  opts: OsInteractionOptions = {},
): Skill<OsInteractionProblem> {
  const { problems, skipped } = loadSplits(
    "os-interaction",
    sources,
    (rec, id, split) => parseOsRecord(rec, id, split, opts.scriptDir),
    opts,
  );
  return {
    name: opts.name ?? "os",
    problems,
    skipped,
    format: (p) => miniPrompt(p.instruction),
    stop: MINI_STOP,
    terminator: "\n",
    maxTokens: opts.maxTokens ?? 256,
    grade: async (p, output, ctx) => {
      const text = extractAnswer(output, MINI_STOP);
      const session = new ShellSession(ctx.run, setupOf(p));
      if (/Act:/.test(output)) {
        const a = parseAgentAction(output);
        if (a.action === "invalid") return { pass: false, reason: `invalid action: ${a.why}` };
        if (a.action === "answer") return judgeOs(session, p, a.content);
        if (a.action === "finish") return judgeOs(session, p, "");
        session.history.push(a.content);
        return judgeOs(session, p, { fromOutput: true });
      }
      if (text === "") return { pass: false, reason: "empty answer" };
      session.history.push(text);
      return judgeOs(session, p, { fromOutput: true });
    },
  };
}
