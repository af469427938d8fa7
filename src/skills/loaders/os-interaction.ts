/**
 * AgentBench OS (THUDM/AgentBench data/os_interaction/data/*.json) as a skill. Problems give
 * `description`, `create` (`local`/`image` and `init` scripts), an optional `start`, and
 * `evaluation`: `match` (the answer must equal a string, or match a regex) or `check`
 * scripts run with the answer (a `null` entry stands for the `example` script, whose output
 * is passed on). A `create` that is not an object (AgentBench's dev.json and data/5/new.json
 * hold one list) is read as AgentBench reads it: the default image, no setup.
 *
 * Grading follows AgentBench's protocol (src/server/tasks/os_interaction/task.py): setup
 * once per episode (a failing `init` script ends it), the agent's commands in its shell,
 * then each check in a fresh process (see os/session.ts).
 *
 * One turn (`grade`): the model writes bash (one line or several) in a ```bash block that
 * the prompt opens, and the code's stdout is the answer; an AgentBench-style turn
 * ("Act: answer(...)", "Act: bash" with a ```bash block, "Act: finish") is accepted too.
 * Many turns (`osEpisode` with `runEpisodes`): AgentBench's protocol.
 *
 * Differences from AgentBench: commands run in the sandbox's writable home directory
 * (/work) as an unprivileged user instead of root in a Docker container. A problem that
 * needs what the sandbox cannot give (its setup fails here, or its scripts need /root,
 * /home, useradd, package installs, the network, writes to /usr or /etc) is graded
 * `gradable: false` with the reason, and left out of the pass rate.
 */

import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Environment, StepResult } from "../agent.ts";
import { miniPrompt } from "../mini.ts";
import { sandboxLacks } from "../os/needs.ts";
import { type Answer, type Script, type SetupFailure, ShellSession } from "../os/session.ts";
import { clip, extractAnswer } from "../text.ts";
import type { Grade, Problem, Runner, Skill, Split } from "../types.ts";
import { DataError, Fields, type SourceRecord } from "./records.ts";
import { type LoadOptions, loadSplits, type SplitSources } from "./splits.ts";

export type Evaluation =
  | { kind: "match"; answer: string; strip: boolean }
  | { kind: "regex"; regex: string }
  | { kind: "check"; checks: Script[] };

export interface OsInteractionProblem extends Problem {
  /** AgentBench's image (`create.local`, or `create.image` in older files); "default" without one. */
  image?: string;
  init: Script[];
  start?: string;
  evaluation: Evaluation;
  labels: string[];
  /**
   * What the problem needs that the sandbox cannot give (absent paths, root, package
   * installs, the network), found from its text; non-empty: not gradable here.
   */
  needs?: string[];
}

/**
 * The one-turn answer format. `block` (default): the prompt opens a ```bash block, the
 * model writes bash (any number of lines) and closes it. `line`: the miniature skills'
 * "Q: ...\nA: " with a one-line command ended by a newline.
 */
export type OsAnswerFormat = "block" | "line";

export interface OsInteractionOptions extends LoadOptions {
  name?: string;
  /** Where `{"file": ...}` scripts live (AgentBench's script_dir); default: the data file's folder. */
  scriptDir?: string;
  maxTokens?: number;
  answerFormat?: OsAnswerFormat;
  /** Seconds one command may run (default 5). */
  commandSeconds?: number;
  /**
   * Grade problems whose text shows they need what the sandbox cannot give, instead of
   * reporting them as not gradable here (default false; for measuring the classifier).
   */
  gradeUnsupported?: boolean;
  /**
   * Judge as multi-turn episodes of at most this many model turns (AgentBench's protocol:
   * commands, observations, then `answer` or `finish`; AgentBench uses 8, the CycleQD authors
   * 5). Default: one turn, the answer a command.
   */
  turns?: number;
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

/** The one-turn reference: the example's bash code, when the answer format can hold it. */
function referenceOf(code: string, format: OsAnswerFormat): string {
  const r = code.trim();
  if (format === "line") return r.includes("\n") ? "" : r;
  return r.includes("```") ? "" : r;
}

function parseOsRecord(
  rec: SourceRecord,
  id: string,
  split: Split,
  scriptDir: string | undefined,
  format: OsAnswerFormat,
): OsInteractionProblem {
  const f = new Fields(rec);
  const dir = scriptDir ?? dirname(rec.file);
  const description = f.string("description");
  const init: Script[] = [];
  let image = "default";
  // AgentBench: `"local" in create` / `"init" in create` on a list is false, so a `create`
  // that is not an object means the default image and no setup.
  const create = f.raw("create");
  if (create !== null && typeof create === "object" && !Array.isArray(create)) {
    const c = create as Record<string, unknown>;
    const img = c.local ?? c.image;
    if (typeof img === "string") image = img;
    const raw = c.init;
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
  let example: Script | undefined;
  const rawExample = ev.example ?? f.raw("example");
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
    example =
      rawExample === undefined || rawExample === null
        ? undefined
        : scriptOf(f, "evaluation.example", rawExample, dir);
    const checks = items.map((s, i) => {
      if (s !== null) return scriptOf(f, `evaluation.check[${i}]`, s, dir);
      if (!example)
        throw new DataError(
          `${f.where(`evaluation.check[${i}]`)} is null but there is no example script`,
        );
      return example;
    });
    evaluation = { kind: "check", checks };
  } else {
    throw new DataError(`${f.where("evaluation")} needs "match" or "check"`);
  }
  if (!example && rawExample !== undefined && rawExample !== null)
    example = scriptOf(f, "example", rawExample, dir);
  const reference = example?.language === "bash" ? referenceOf(example.code, format) : "";
  const labels = f.has("labels") ? f.stringArray("labels") : [];
  const scripts = [
    ...init,
    ...(start ? [start] : []),
    ...(example ? [example] : []),
    ...(evaluation.kind === "check" ? evaluation.checks : []),
  ];
  return {
    id,
    split,
    template: labels[0] ?? "os",
    key: `os:${description}\n${JSON.stringify(init)}\n${start?.code ?? ""}`,
    instruction: description,
    reference,
    image,
    init,
    start: start?.code,
    evaluation,
    labels,
    needs: sandboxLacks({ description, scripts }),
  };
}

function sessionOf(run: Runner, p: OsInteractionProblem, commandSeconds?: number): ShellSession {
  return new ShellSession(run, { files: {}, init: p.init, start: p.start }, { commandSeconds });
}

/** A grade that says the problem cannot be graded here, and why. */
function notGradable(why: string): Grade {
  return { pass: false, gradable: false, reason: `not gradable here: ${why}` };
}

/** What kind of thing a failed setup lacked, from its output. */
export function setupFailureKind(f: SetupFailure): string {
  const out = f.output;
  if (f.exitCode === null) return "timed out";
  if (/Read-only file system/.test(out)) return "read-only path";
  if (/\/(root|home|var|opt|srv|mnt|media|boot|snap)\b[^\n]*No such file or directory/.test(out))
    return "absent path";
  if (/Permission denied|Operation not permitted|must be run as root|are not root/i.test(out))
    return "needs root";
  if (/command not found|: not found|No module named/.test(out)) return "missing program";
  if (/Could not resolve|Temporary failure in name resolution|Network is unreachable/.test(out))
    return "no network";
  return "failed";
}

function setupReason(f: SetupFailure): string {
  const which = f.stage === "start" ? "start" : `create.init[${f.index}]`;
  const status = f.exitCode === null ? "did not finish in time" : `exit ${f.exitCode}`;
  const tail = f.output.trim().split("\n").slice(-3).join(" / ");
  return `setup failed (${setupFailureKind(f)}): ${which} ${status}${tail ? `: ${clip(tail, 200)}` : ""}`;
}

/**
 * Judges an answer after the session's commands: `answer` is the committed answer, `null`
 * for `finish`, or `{command}` to run the command now and take its stdout.
 */
async function judgeOs(
  session: ShellSession,
  p: OsInteractionProblem,
  answer: Answer,
): Promise<Grade> {
  const ev = p.evaluation;
  const j = await session.judge(answer, ev.kind === "check" ? ev.checks : []);
  if (j.setupFailure) return notGradable(setupReason(j.setupFailure));
  if (j.timedOut) return { pass: false, reason: "timeout" };
  if (j.error) return { pass: false, reason: j.error };
  if (ev.kind === "check") {
    if (j.passed) return { pass: true, reason: "ok" };
    const failed = j.checks.findIndex((c) => c.exitCode !== 0);
    return {
      pass: false,
      reason:
        failed >= 0
          ? `check script ${failed} failed (exit ${j.checks[failed].exitCode}) for answer "${clip(j.answer, 40)}"`
          : "the checks did not finish",
    };
  }
  // AgentBench: `finish` commits None, which equals no string and makes re.search fail.
  if (answer === null) return { pass: false, reason: "finish instead of an answer" };
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
  "Think: ...\nAct: bash\n```bash\n# put your bash code here\n```\n" +
  "or, when the question is answered:\nThink: ...\nAct: answer(<the answer>)\n" +
  "or, when the requested change is done:\nThink: ...\nAct: finish\n\n";

export interface OsEpisodeOptions {
  /** Characters of a command's output shown to the agent (AgentBench: 800). */
  maxOutput?: number;
  /** Seconds one command may run (default 5). */
  commandSeconds?: number;
  /** Grade a problem whose `needs` is non-empty anyway (default false). */
  gradeUnsupported?: boolean;
}

/**
 * AgentBench's multi-turn protocol, for `runEpisodes`: setup once (with the first command),
 * each command in the agent's shell, the checks in fresh processes after `answer` or
 * `finish`. A problem that cannot be graded here ends at its first step, `gradable: false`.
 */
export function osEpisode(
  run: Runner,
  p: OsInteractionProblem,
  opts: OsEpisodeOptions | number = {},
): Environment {
  const o = typeof opts === "number" ? { maxOutput: opts } : opts;
  const maxOutput = o.maxOutput ?? 800;
  const session = sessionOf(run, p, o.commandSeconds);
  return {
    start: async () => `${AGENT_INTRO}Problem: ${p.instruction}\nAgent: `,
    step: async (text): Promise<StepResult> => {
      if (p.needs?.length && !o.gradeUnsupported)
        return { done: true, grade: notGradable(p.needs.join("; ")) };
      const a = parseAgentAction(text);
      if (a.action === "invalid") {
        // Still set up: whether the problem can be graded here does not depend on the answer.
        const j = await session.judge("", []);
        if (j.setupFailure) return { done: true, grade: notGradable(setupReason(j.setupFailure)) };
        return { done: true, grade: { pass: false, reason: `invalid action: ${a.why}` } };
      }
      if (a.action === "answer") return { done: true, grade: await judgeOs(session, p, a.content) };
      if (a.action === "finish") return { done: true, grade: await judgeOs(session, p, null) };
      const r = await session.exec(a.content);
      if (r.setupFailure) return { done: true, grade: notGradable(setupReason(r.setupFailure)) };
      if (r.error) return { done: true, grade: { pass: false, reason: r.error } };
      let out = r.output;
      if (out.length > maxOutput)
        out = `${out.slice(0, maxOutput - 20)}\n[truncated because the output is too long]`;
      const obs = r.timedOut
        ? `The command timed out.${out ? ` The output so far:\n${out}` : ""}`
        : out
          ? `The output of the OS:\n${out}`
          : "The output of the OS is empty.";
      return { done: false, observation: `\nOS: ${obs}\nAgent: ` };
    },
  };
}

/** Stop strings for `runEpisodes` with `osEpisode`. */
export const OS_EPISODE_STOP = ["\nOS:"];

/** The code of a one-turn answer: fences around it removed. */
function codeOf(output: string, format: OsAnswerFormat): string {
  if (format === "line") return extractAnswer(output, ["\n"]);
  let t = extractAnswer(output, ["\n```"]);
  t = t.replace(/^```(?:bash|sh|shell)?[ \t]*\n/, "").replace(/\n?```\s*$/, "");
  return t.trim();
}

export type OsInteractionSkill = Skill<OsInteractionProblem>;

/**
 * AgentBench OS files as the skill `os` (or `opts.name`): bash in a ```bash block (or one
 * line, `answerFormat: "line"`, or an AgentBench "Act:" turn), at most `maxTokens` tokens
 * (default 256), judged in the sandbox. Reads every file now (JSON, JSON array or JSONL,
 * per split or one pool divided by `assign`); throws a DataError naming file, line and field
 * for an unreadable file, one with no records, a malformed record (unless it is skipped), or
 * a problem in two splits, and an Error for an unknown split or no files at all.
 */
export function loadOsInteractionSkill(
  sources: SplitSources,
  opts: OsInteractionOptions = {},
): OsInteractionSkill {
  const format = opts.answerFormat ?? "block";
  const { problems, skipped } = loadSplits(
    "os-interaction",
    sources,
    (rec, id, split) => parseOsRecord(rec, id, split, opts.scriptDir, format),
    opts,
  );
  const block = format === "block";
  return {
    name: opts.name ?? "os",
    problems,
    skipped,
    format: (p) => `${miniPrompt(p.instruction)}${block ? "```bash\n" : ""}`,
    stop: block ? ["\n```"] : ["\n"],
    terminator: block ? "\n```" : "\n",
    maxTokens: opts.maxTokens ?? 256,
    ...(opts.turns === undefined
      ? {}
      : {
          episodes: {
            environment: (p: OsInteractionProblem, run: Runner) =>
              osEpisode(run, p, {
                commandSeconds: opts.commandSeconds,
                gradeUnsupported: opts.gradeUnsupported,
              }),
            maxRounds: opts.turns,
            stop: OS_EPISODE_STOP,
          },
        }),
    grade: async (p, output, ctx) => {
      if (p.needs?.length && !opts.gradeUnsupported) return notGradable(p.needs.join("; "));
      const session = sessionOf(ctx.run, p, opts.commandSeconds);
      if (/Act:/.test(output)) {
        const a = parseAgentAction(output);
        if (a.action === "answer") return judgeOs(session, p, a.content);
        if (a.action === "finish") return judgeOs(session, p, null);
        if (a.action === "bash") return judgeOs(session, p, { command: a.content });
        const g = await judgeOs(session, p, "");
        return g.gradable === false ? g : { pass: false, reason: `invalid action: ${a.why}` };
      }
      const code = codeOf(output, format);
      const g = await judgeOs(session, p, { command: code });
      if (code === "" && g.gradable !== false && !g.pass)
        return { pass: false, reason: "empty answer" };
      return g;
    },
  };
}
