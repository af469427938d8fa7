/**
 * A shell session over stateless sandbox runs. Each run rebuilds the directory, runs the
 * setup scripts, replays the earlier commands silently in one bash process (so `cd` and
 * variables carry over) and then runs the new command. Commands whose effects depend on time
 * or chance may replay differently; AgentBench's tasks rarely do.
 *
 * The same wrapper judges an episode AgentBench's way: after the replay, each check script
 * runs with the answer and the earlier scripts' outputs as arguments and must exit 0.
 */

import { SHELL_LIMITS } from "../limits.ts";
import { nonce, ranTooLong } from "../text.ts";
import type { Runner } from "../types.ts";

export interface Script {
  language: "bash" | "python";
  code: string;
}

export interface ShellSetup {
  files: Record<string, string>;
  /** Directories to create first (possibly empty). */
  dirs?: string[];
  /** Run once, each in its own process, before anything else (AgentBench `create.init`). */
  init?: Script[];
  /** Bash run in the session's shell before the commands (AgentBench `start`). */
  start?: string;
}

/** Bash; "@{" stands for a parameter expansion. Positional layout: mode tag nd dirs... ni (lang code)... start nc cmds... [answer-or-- nk (lang code)...] */
const WRAPPER = String.raw`__cqd_mode=$1; __cqd_tag=$2; shift 2
__cqd_home=$PWD
__cqd_n=$1; shift
for ((__cqd_i = 0; __cqd_i < __cqd_n; __cqd_i++)); do mkdir -p -- "$1"; shift; done
__cqd_n=$1; shift
for ((__cqd_i = 0; __cqd_i < __cqd_n; __cqd_i++)); do
  if [ "$1" = python ]; then python3 -c "$2"; else bash -c "$2"; fi </dev/null >/dev/null 2>&1
  shift 2
done
__cqd_start=$1; shift
__cqd_n=$1; shift
__cqd_cmds=()
for ((__cqd_i = 0; __cqd_i < __cqd_n; __cqd_i++)); do __cqd_cmds+=("$1"); shift; done
__cqd_rest=("$@")
set --
if [ -n "$__cqd_start" ]; then eval "$__cqd_start" </dev/null >/dev/null 2>&1; fi
__cqd_last=$((@{#__cqd_cmds[@]} - 1))
for ((__cqd_i = 0; __cqd_i < __cqd_last; __cqd_i++)); do
  eval "@{__cqd_cmds[__cqd_i]}" </dev/null >/dev/null 2>&1
done
if [ "$__cqd_mode" = observe ]; then
  if [ $__cqd_last -ge 0 ]; then eval "@{__cqd_cmds[__cqd_last]}" </dev/null 2>&1; fi
  exit 0
fi
__cqd_answer=@{__cqd_rest[0]}
if [ $__cqd_last -ge 0 ]; then
  eval "@{__cqd_cmds[__cqd_last]}" </dev/null >/tmp/.cqd_out 2>/dev/null
  if [ "$__cqd_answer" = "--from-output" ]; then __cqd_answer=$(cat /tmp/.cqd_out); fi
fi
cd "$__cqd_home" || exit 97
printf '\n%s answer\n%s\n%s end\n' "$__cqd_tag" "$__cqd_answer" "$__cqd_tag"
__cqd_params=("$__cqd_answer")
__cqd_n=@{__cqd_rest[1]:-0}
for ((__cqd_i = 0; __cqd_i < __cqd_n; __cqd_i++)); do
  __cqd_lang=@{__cqd_rest[2 + 2 * __cqd_i]}
  __cqd_code=@{__cqd_rest[3 + 2 * __cqd_i]}
  if [ "$__cqd_lang" = python ]; then
    __cqd_out=$(python3 -c "$__cqd_code" "@{__cqd_params[@]}" </dev/null 2>/dev/null)
  else
    __cqd_out=$(bash -c "$__cqd_code" -- "@{__cqd_params[@]}" </dev/null 2>/dev/null)
  fi
  __cqd_rc=$?
  printf '\n%s check %d exit %d\n' "$__cqd_tag" "$__cqd_i" "$__cqd_rc"
  [ $__cqd_rc -eq 0 ] || exit 0
  __cqd_params+=("$__cqd_out")
done
printf '\n%s done\n' "$__cqd_tag"`.replaceAll("@{", "${");

function setupArgs(s: ShellSetup): string[] {
  const dirs = s.dirs ?? [];
  const init = s.init ?? [];
  return [
    String(dirs.length),
    ...dirs,
    String(init.length),
    ...init.flatMap((x) => [x.language, x.code]),
    s.start ?? "",
  ];
}

export interface ShellOutput {
  output: string;
  timedOut: boolean;
}

export interface Judgement {
  /** The answer the checks saw. */
  answer: string;
  /** Exit status of each check script that ran, in order. */
  checks: number[];
  /** True when every check ran and exited 0. */
  passed: boolean;
  timedOut: boolean;
}

export class ShellSession {
  readonly history: string[] = [];

  constructor(
    private readonly run: Runner,
    private readonly setup: ShellSetup,
  ) {}

  /** Runs a command after the earlier ones and returns its output (stdout and stderr). */
  async exec(command: string): Promise<ShellOutput> {
    const cmds = [...this.history, command];
    this.history.push(command);
    const res = await this.wrapper("observe", nonce(), [String(cmds.length), ...cmds]);
    return { output: res.stdout, timedOut: ranTooLong(res) };
  }

  /**
   * Replays the session and runs the check scripts. `answer` is the committed answer, or
   * `{fromOutput: true}` to take the last command's stdout as the answer.
   */
  async judge(answer: string | { fromOutput: true }, checks: Script[]): Promise<Judgement> {
    const tag = nonce();
    const ans = typeof answer === "string" ? answer : this.history.length ? "--from-output" : "";
    const res = await this.wrapper("judge", tag, [
      String(this.history.length),
      ...this.history,
      ans,
      String(checks.length),
      ...checks.flatMap((c) => [c.language, c.code]),
    ]);
    const out = res.stdout;
    const a0 = out.lastIndexOf(`\n${tag} answer\n`);
    const a1 = out.lastIndexOf(`\n${tag} end\n`);
    const got = a0 >= 0 && a1 > a0 ? out.slice(a0 + tag.length + 9, a1) : "";
    const statuses = [...out.matchAll(new RegExp(`\\n${tag} check \\d+ exit (\\d+)\\n`, "g"))].map(
      (m) => Number(m[1]),
    );
    const done = out.includes(`\n${tag} done\n`);
    return {
      answer: got,
      checks: statuses,
      passed: done && statuses.length === checks.length && statuses.every((s) => s === 0),
      timedOut: ranTooLong(res),
    };
  }

  /** Runs WRAPPER in `mode` on the setup, with the mode's own arguments after it. */
  private wrapper(mode: "observe" | "judge", tag: string, args: string[]) {
    return this.run({
      command: ["bash", "-c", WRAPPER, "session", mode, tag, ...setupArgs(this.setup), ...args],
      files: this.setup.files,
      ...SHELL_LIMITS,
    });
  }
}
