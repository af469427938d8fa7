/**
 * A shell session over sandbox runs, with AgentBench OS's protocol
 * (src/server/tasks/os_interaction/task.py in THUDM/AgentBench):
 *
 * - setup runs once per episode: each `create.init` script in a fresh process (a failing one
 *   ends the episode), then `start` in the agent's shell;
 * - the agent's commands run in its shell, one after another: `cd`, variables, aliases and
 *   functions carry over from one command to the next;
 * - each check script runs in a fresh process (`bash -c CHECK -- ANSWER OUT0 ...` or
 *   `python3 -c CHECK ANSWER OUT0 ...`) with the sandbox's own clean environment, in the home
 *   directory, never in the agent's shell; each check's stdout is passed on to the next.
 *
 * A sandbox run is stateless, so a session that spans several runs (`exec` once per turn,
 * then `judge`) carries its state from one run to the next instead of replaying it: after
 * each run the home directory and /tmp (a tar archive, with every file's mode) and the agent
 * shell's state (variables, functions, aliases, options, working directory, umask) come back
 * on the wrapper's stderr, and the next run restores them before anything else. Setup
 * therefore runs once, and data it drew at random ($RANDOM, /dev/urandom, `date`) is the
 * data the agent saw and the checks judge. One-turn grading (`judge` with a command) is a
 * single run: setup, the command, then the checks.
 *
 * What a run cannot carry: processes still running at its end (AgentBench's container keeps
 * them), and anything outside the home directory and /tmp (read-only or absent here). With
 * the opt-in unsandboxed runner each run has a home directory of its own and the host's
 * /tmp: the home's files carry over, /tmp and absolute paths into the old home do not.
 *
 * The wrapper's own reports go to its stderr, each line tagged with a nonce that reaches it
 * on stdin, so neither the agent's commands (whose output goes to stdout or nowhere) nor the
 * checks can forge a verdict without it. Setup's success is reported before anything the
 * agent wrote runs, so an answer that kills the wrapper fails; it cannot pass itself off as
 * a failed setup (not gradable).
 */

import { SHELL_LIMITS } from "../limits.ts";
import { nonce, ranTooLong } from "../text.ts";
import type { Runner } from "../types.ts";

export interface Script {
  language: "bash" | "python";
  code: string;
}

export interface ShellSetup {
  /** Files written into the home directory before setup (relative paths). */
  files: Record<string, string>;
  /** Directories to create first (possibly empty). */
  dirs?: string[];
  /** Run once, each in a fresh process, before anything else (AgentBench `create.init`). */
  init?: Script[];
  /** Bash run once in the agent's shell after `init`, before its first command (AgentBench `start`). */
  start?: string;
}

/** Limits of one session run: setup, one command (at most `commandSeconds`) and the checks. */
export const SESSION_LIMITS = {
  ...SHELL_LIMITS,
  timeoutMs: 30_000,
  cpuSeconds: 10,
  maxProcesses: 64,
  maxFileBytes: 4 * 1024 * 1024,
  workdirBytes: 16 * 1024 * 1024,
  tmpBytes: 8 * 1024 * 1024,
  /** The session's state travels on stderr: room for the home directory and /tmp. */
  maxOutputBytes: 40 * 1024 * 1024,
};

export interface SessionOptions {
  /** Wall-clock seconds one command may run (default 5); setup and checks are not counted. */
  commandSeconds?: number;
  /** Bytes of a command's output kept (default 64 KiB). */
  outputBytes?: number;
}

/** Why the setup of a session failed: the problem cannot be graded here. */
export interface SetupFailure {
  /** `init`: a `create.init` script; `start`: the `start` script. */
  stage: "init" | "start";
  /** Which script of the stage (0-based). */
  index: number;
  /** Its exit status; null when it did not finish in time. */
  exitCode: number | null;
  /** The end of what it printed (stdout and stderr), at most ~2000 bytes. */
  output: string;
}

export interface ShellOutput {
  /** What the command printed (stdout, and stderr unless asked not to). */
  output: string;
  /** The command ran past its time limit (its output so far is in `output`). */
  timedOut: boolean;
  /** Set when setup failed; nothing else ran. */
  setupFailure?: SetupFailure;
  /** Set when the run itself went wrong (the sandbox's limits, a lost state). */
  error?: string;
}

export interface CheckResult {
  exitCode: number;
  /** The start of what it printed on stdout. */
  output: string;
}

export interface Judgement {
  /** The answer the checks saw. */
  answer: string;
  /** Each check script that ran, in order (the first failing one is the last). */
  checks: CheckResult[];
  /** True when every check ran and exited 0. */
  passed: boolean;
  /** The run went past its time limit (a command, or the checks). */
  timedOut: boolean;
  /** Set when setup failed: the problem cannot be graded here. */
  setupFailure?: SetupFailure;
  /** Set when the run itself went wrong (the sandbox's limits, a lost state). */
  error?: string;
}

/**
 * What the checks are given as the answer: a committed answer, `null` for AgentBench's
 * `finish` (its answer is Python's None, passed to checks as "None"), or a command to run
 * now in the agent's shell, whose stdout (trailing newlines removed) is the answer.
 */
export type Answer = string | null | { command: string };

/** Bash variables that belong to the shell itself, never saved or restored. */
const SHELL_OWN =
  "BASH|BASH_*|BASHOPTS|BASHPID|EUID|UID|PPID|SHELLOPTS|RANDOM|SRANDOM|SECONDS|LINENO|FUNCNAME|" +
  "GROUPS|HISTCMD|EPOCHSECONDS|EPOCHREALTIME|PIPESTATUS|_|DIRSTACK|COMP_WORDBREAKS|OPTIND|" +
  "OPTARG|OPTERR|SHLVL|PWD|HOSTNAME|HOSTTYPE|MACHTYPE|OSTYPE|__cqd_*";

/**
 * The agent's shell, one process per run: `bash --norc --noprofile -c '. /dev/fd/5' bash`,
 * this text on fd 5 (so that `ps` shows a plain bash, as AgentBench's `bash --login`).
 * fd 0: the shell state to restore (may be empty); fd 3: where its state goes when it exits;
 * fd 4: START's output; fd 6: MERGE ("0" or "1"), NUL, START; fd 7: the command; fd 8 and 9:
 * pipes to and from the wrapper. After START it says "start STATUS" on fd 8 and runs the
 * command only once the wrapper answers "go" on fd 9; then it says "done" and waits for fd 9
 * to close (the checks run meanwhile, with the agent's shell still there, as in AgentBench)
 * before it exits. "@{" stands for "${".
 */
const DRIVER = String.raw`IFS= read -r -d '' __cqd_m <&6
IFS= read -r -d '' __cqd_st <&6
IFS= read -r -d '' __cqd_c <&7
exec 5<&- 6<&- 7<&-
shopt -s expand_aliases
if [ -s /dev/stdin ]; then
  mapfile -t __cqd_v < <(compgen -v)
  for __cqd_n in "@{__cqd_v[@]}"; do
    case $__cqd_n in %SHELL_OWN%) ;; *) unset -v "$__cqd_n" 2>/dev/null ;; esac
  done
  . /dev/stdin >/dev/null 2>&1
fi
unset __cqd_v __cqd_n
exec </dev/null
trap '{
  builtin printf "builtin cd -- %q\n" "$PWD"
  builtin mapfile -t __cqd_v < <(builtin compgen -v)
  for __cqd_n in "@{__cqd_v[@]}"; do
    case $__cqd_n in %SHELL_OWN%) ;; *) builtin declare -p "$__cqd_n" ;; esac
  done
  builtin declare -f
  builtin alias -p
  builtin umask -p
  builtin shopt -p
  builtin set +o
} >&3 2>/dev/null' EXIT
trap 'exit 124' TERM
if [ -n "$__cqd_st" ]; then
  eval "unset __cqd_st; $__cqd_st" >&4 2>&4 3>&- 4>&- 8>&- 9>&-
  builtin printf 'start %d\n' "$?" >&8
  builtin read -r -u 9 __cqd_x
  [ "$__cqd_x" = go ] || exit
fi
unset __cqd_st __cqd_x
if [ -n "$__cqd_c" ]; then
  if [ "$__cqd_m" = 1 ]; then
    eval "unset __cqd_c __cqd_m; $__cqd_c" 2>&1 3>&- 4>&- 8>&- 9>&-
  else
    eval "unset __cqd_c __cqd_m; $__cqd_c" 2>/dev/null 3>&- 4>&- 8>&- 9>&-
  fi
fi
builtin printf 'done\n' >&8
builtin read -r -u 9 __cqd_x
exit`
  .replaceAll("%SHELL_OWN%", SHELL_OWN)
  .replaceAll("@{", "${");

/**
 * The session wrapper, run as `bash -c BOOT bash` with everything else on stdin (so that
 * `ps` shows none of it): this text, then NUL-terminated fields: TAG FLAGS NDIRS DIRS...
 * NINIT (LANG CODE)... START COMMAND ANSWER CAP SECONDS DRIVER NCHECKS (LANG CODE)...; then
 * (flag R) "LEN_SHELL LEN_MODES" on a line, the shell state, the modes and the archive.
 * FLAGS: S set up, R restore, C run COMMAND in the agent's shell, O with its stderr in its
 * output, A its stdout is the answer, J judge, V send the state back. Reports go to stderr as
 * lines "TAG WORD ..." (data base64); the command's output goes to stdout. "@{" is "${".
 */
const BOOT = `IFS= read -r -d '' __s || exit 3; eval "$__s"`;
const WRAPPER = String.raw`field() { IFS= read -r -d '' "$1" || exit 3; }
fields() { local __k __v; for ((__k = 0; __k < $2; __k++)); do field __v; eval "$1+=(\"\$__v\")"; done; }
field __t
[ @{#__t} -ge 16 ] || exit 3
field __flags
__dirs=(); field __n; fields __dirs "$__n"
__init=(); field __n; fields __init "$((2 * __n))"
field __start; field __cmd; field __answer; field __cap; field __secs; field __driver
__checks=(); field __n; fields __checks "$((2 * __n))"
__home=$PWD
__env=()
while IFS= read -r -d '' __kv; do
  case $__kv in _=*|SHLVL=*|OLDPWD=*|PWD=*) ;; *) __env+=("$__kv") ;; esac
done < <(env -0)
__priv=0; [ "$__home" = /work ] && __priv=1
__fds=()
say() { printf '\n%s %s\n' "$__t" "$*" >&2; }
has() { [[ $__flags == *"$1"* ]]; }
b64() { base64 -w0; }
# A scratch file nobody else can see: opened for writing (__w) and reading (__r), then unlinked.
scratch() {
  local p
  p=$(mktemp /tmp/.cqd.XXXXXXXX) || { say error scratch; exit 0; }
  exec {__w}>"$p" {__r}<"$p"
  rm -f -- "$p"
  __fds+=("$__w" "$__r")
}
# A fresh process: the sandbox's own environment, in the home directory, no scratch fds.
fresh_exec() {
  for __f in "@{__fds[@]}"; do eval "exec $__f>&-"; done
  cd "$__home" && exec env -i "@{__env[@]}" "$@"
}
fresh() { (fresh_exec "$@"); }
# Kills the agent's shell and everything it started (its process group), forks included.
kill_shell() {
  local k
  for ((k = 0; k < 50; k++)); do
    kill -KILL -- "-$__pid" 2>/dev/null || return 0
    IFS= read -r -t 0.02 -u "$__dout" __x
  done
}
__sir=
if has R; then
  IFS=' ' read -r __ls __lm || { say error restore; exit 0; }
  scratch; __siw=$__w __sir=$__r
  scratch; __mw=$__w __mr=$__r
  if [ "$__ls" -gt 0 ]; then dd bs="$__ls" count=1 iflag=fullblock status=none >&$__siw; fi
  if [ "$__lm" -gt 0 ]; then dd bs="$__lm" count=1 iflag=fullblock status=none >&$__mw; fi
  if [ $__priv = 1 ]; then __root=/; else __root=$__home; fi
  tar -xzpf - -C "$__root" --no-overwrite-dir 2>/dev/null || { say error restore; exit 0; }
  while IFS= read -r -d '' __e; do
    __m=@{__e%% *}; __e=@{__e#* }
    if [ "@{__e%% *}" = h ]; then __p=$__home/@{__e#* }; else __p=/tmp/@{__e#* }; fi
    chmod "$__m" -- "$__p" 2>/dev/null
  done <&$__mr
fi
if has S; then
  for __d in "@{__dirs[@]}"; do mkdir -p -- "$__d"; done
  for ((__i = 0; __i < @{#__init[@]} / 2; __i++)); do
    scratch
    if [ "@{__init[2 * __i]}" = python ]; then
      fresh python3 -c "@{__init[2 * __i + 1]}" </dev/null >&$__w 2>&1
    else
      fresh bash -c "@{__init[2 * __i + 1]}" </dev/null >&$__w 2>&1
    fi
    __rc=$?
    if [ $__rc -ne 0 ]; then say setup init $__i $__rc "$(tail -c 2000 <&$__r | b64)"; say end; exit 0; fi
  done
  say init-ok
  # Said before anything the agent wrote runs, so that nothing it does can look like this.
  [ -n "$__start" ] || say setup-ok
fi
__state=
__shell=0
if has C || has J || { has S && [ -n "$__start" ]; }; then
  __shell=1
  [ -n "$__sir" ] || { scratch; __sir=$__r; }
  scratch; __ow=$__w __or=$__r
  scratch; __sow=$__w __sor=$__r
  scratch; __pw=$__w __pr=$__r
  scratch; printf '%s' "$__driver" >&$__w; __dr=$__r
  scratch; __sr=$__r
  __merge=0; has O && __merge=1
  printf '%s\0' "$__merge" >&$__w
  has S && printf '%s' "$__start" >&$__w
  scratch; __cr=$__r
  has C && printf '%s' "$__cmd" >&$__w
  # The agent's shell: a process group of its own (setsid), so that a command past its time
  # limit is stopped with all it started; its fd 8 and 9 are pipes to and from here.
  coproc __drv {
    fresh_exec setsid bash --norc --noprofile -c '. /dev/fd/5' bash 8>&1 9<&0 \
      <&$__sir >&$__ow 2>&1 3>&$__sow 4>&$__pw 5<&$__dr 6<&$__sr 7<&$__cr
  }
  __pid=$__drv_PID
  exec {__dout}<&"@{__drv[0]}" {__din}>&"@{__drv[1]}"
  eval "exec @{__drv[0]}<&- @{__drv[1]}>&-"
  __fds+=("$__dout" "$__din")
  # START ran first: its status decides whether setup succeeded, before the command runs.
  if has S && [ -n "$__start" ]; then
    __x=
    IFS= read -r -t "$__secs" -u "$__dout" __x
    __srt=-
    [[ $__x == "start "* ]] && __srt=@{__x#start }
    if [ "$__srt" != 0 ]; then
      kill_shell
      say setup start 0 "$__srt" "$(tail -c 2000 <&$__pr | b64)"; say end; exit 0
    fi
    say setup-ok
    printf 'go\n' >&$__din
  fi
fi
if [ $__shell = 1 ]; then
  __x=
  IFS= read -r -t "$__secs" -u "$__dout" __x
  if [ $? -gt 128 ]; then
    say timeout
    kill -TERM -- "-$__pid" 2>/dev/null
    IFS= read -r -t 1 -u "$__dout" __x
    kill_shell
  fi
fi
finish_shell() {
  [ $__shell = 1 ] || return 0
  exec {__din}>&-
  while IFS= read -r -t 5 -u "$__dout" __x; do :; done
  kill_shell
  wait "$__pid" 2>/dev/null
  { __state=$(cat <&$__sor; printf x); } 2>/dev/null
  __state=@{__state%x}
}
__out=
if has C; then
  { __out=$(cat <&$__or; printf x); } 2>/dev/null
  __out=@{__out%x}
  printf '%s' "$__out" | head -c "$__cap"
fi
if has J; then
  if has A; then
    __ans=$__out
    while [[ $__ans == *$'\n' ]]; do __ans=@{__ans%$'\n'}; done
  else
    __ans=$__answer
  fi
  say answer "$(printf '%s' "$__ans" | b64)"
  __params=("$__ans")
  for ((__i = 0; __i < @{#__checks[@]} / 2; __i++)); do
    scratch
    if [ "@{__checks[2 * __i]}" = python ]; then
      fresh python3 -c "@{__checks[2 * __i + 1]}" "@{__params[@]}" </dev/null >&$__w 2>/dev/null
    else
      fresh bash -c "@{__checks[2 * __i + 1]}" -- "@{__params[@]}" </dev/null >&$__w 2>/dev/null
    fi
    __rc=$?
    { __o=$(cat <&$__r; printf x); } 2>/dev/null
    __o=@{__o%x}
    say check $__i $__rc "$(printf '%s' "$__o" | head -c 300 | b64)"
    [ $__rc -eq 0 ] || break
    __params+=("$__o")
  done
  say judged
fi
finish_shell
if has V; then
  scratch; __mfw=$__w __mfr=$__r
  {
    find "$__home" -depth ! -type l -printf '%m h %P\0'
    if [ $__priv = 1 ]; then find /tmp -mindepth 1 -depth ! -type l -printf '%m t %P\0'; fi
  } >&$__mfw 2>/dev/null
  chmod -R u+rwX -- "$__home" 2>/dev/null
  if [ $__priv = 1 ]; then find /tmp -mindepth 1 -maxdepth 1 -exec chmod -R u+rwX -- {} + 2>/dev/null; fi
  say state-shell "$(printf '%s' "$__state" | b64)"
  say state-modes "$(b64 <&$__mfr)"
  printf '\n%s state-fs ' "$__t" >&2
  if [ $__priv = 1 ]; then
    { find /work /tmp -mindepth 1 -maxdepth 1 -printf '%H/%P\0' | cut -z -c2- |
      tar -czf - -C / --null -T - 2>/dev/null | b64 >&2; __ts=@{PIPESTATUS[2]}; }
  else
    tar -czf - -C "$__home" . 2>/dev/null | b64 >&2; __ts=@{PIPESTATUS[0]}
  fi
  [ "$__ts" = 0 ] && say state-ok
fi
say end
exit 0`.replaceAll("@{", "${");

/** The state a session carries from one run to the next. */
interface Carried {
  shell: Buffer;
  modes: Buffer;
  fs: Buffer;
}

interface Parsed {
  /** First value of each report (setup reports and the answer cannot be forged after it). */
  first: Map<string, string[]>;
  checks: CheckResult[];
  judged: boolean;
  timeout: boolean;
  end: boolean;
  state?: Carried;
}

function parse(stderr: string, tag: string): Parsed {
  const out: Parsed = { first: new Map(), checks: [], judged: false, timeout: false, end: false };
  const prefix = `\n${tag} `;
  let state: Partial<Record<"shell" | "modes" | "fs", string>> = {};
  let stateOk = false;
  let at = stderr.indexOf(prefix);
  while (at >= 0) {
    const start = at + prefix.length;
    let end = stderr.indexOf("\n", start);
    if (end < 0) end = stderr.length;
    const [word, ...rest] = stderr.slice(start, end).split(" ");
    if (!out.first.has(word)) out.first.set(word, rest);
    if (word === "check") {
      out.checks.push({
        exitCode: Number(rest[1]),
        output: Buffer.from(rest[2] ?? "", "base64").toString("utf8"),
      });
    } else if (word === "judged") out.judged = true;
    else if (word === "timeout") out.timeout = true;
    else if (word === "end") out.end = true;
    else if (word === "state-shell") state = { shell: rest[0] ?? "" };
    else if (word === "state-modes") state.modes = rest[0] ?? "";
    else if (word === "state-fs") state.fs = rest[0] ?? "";
    else if (word === "state-ok") stateOk = true;
    at = stderr.indexOf(prefix, end);
  }
  if (stateOk && state.shell !== undefined && state.modes !== undefined && state.fs) {
    out.state = {
      shell: Buffer.from(state.shell, "base64"),
      modes: Buffer.from(state.modes, "base64"),
      fs: Buffer.from(state.fs, "base64"),
    };
  }
  return out;
}

function setupFailureOf(p: Parsed): SetupFailure | undefined {
  const s = p.first.get("setup");
  if (!s) return undefined;
  const [stage, index, code, output] = s;
  return {
    stage: stage === "start" ? "start" : "init",
    index: Number(index),
    exitCode: code === "-" ? null : Number(code),
    output: Buffer.from(output ?? "", "base64").toString("utf8"),
  };
}

export class ShellSession {
  /** The commands run so far, in order. */
  readonly history: string[] = [];
  private carried: Carried | null = null;
  private failure: SetupFailure | null = null;
  private readonly secs: number;
  private readonly cap: number;

  constructor(
    private readonly run: Runner,
    private readonly setup: ShellSetup,
    opts: SessionOptions = {},
  ) {
    this.secs = opts.commandSeconds ?? 5;
    this.cap = opts.outputBytes ?? 64 * 1024;
    if (!(this.secs > 0)) throw new Error(`commandSeconds must be > 0, got ${this.secs}`);
  }

  /** Why setup failed, once a run has found out; null otherwise. */
  get setupFailure(): SetupFailure | null {
    return this.failure;
  }

  /**
   * Runs a command in the agent's shell (setting up first, on the first call) and returns
   * its output: stdout and stderr interleaved, or only stdout with `merge: false`.
   */
  async exec(command: string, opts: { merge?: boolean } = {}): Promise<ShellOutput> {
    if (this.failure) return { output: "", timedOut: false, setupFailure: this.failure };
    this.history.push(command);
    const flags = `C${opts.merge === false ? "" : "O"}V`;
    const { res, p } = await this.wrapper(flags, command, "");
    const setupFailure = this.setupFailureOf(res, p);
    if (setupFailure) {
      this.failure = setupFailure;
      return { output: "", timedOut: false, setupFailure };
    }
    const timedOut = p.timeout || ranTooLong(res);
    if (!p.state) return { output: res.stdout, timedOut, error: this.lost(res, p) };
    this.carried = p.state;
    return { output: res.stdout, timedOut };
  }

  /**
   * Judges the episode: runs the check scripts, each in a fresh process, with the answer
   * (see `Answer`) and the outputs of the checks before it as arguments.
   */
  async judge(answer: Answer, checks: Script[]): Promise<Judgement> {
    const given = typeof answer === "string" ? answer : answer === null ? "None" : "";
    if (this.failure) {
      return {
        answer: given,
        checks: [],
        passed: false,
        timedOut: false,
        setupFailure: this.failure,
      };
    }
    const command = typeof answer === "object" && answer !== null ? answer.command : "";
    if (command) this.history.push(command);
    const flags = `${command ? "CA" : ""}J`;
    const { res, p } = await this.wrapper(flags, command, given, checks);
    const setupFailure = this.setupFailureOf(res, p);
    if (setupFailure) this.failure = setupFailure;
    const got = p.first.get("answer");
    const timedOut = p.timeout || ranTooLong(res);
    const j: Judgement = {
      answer: got ? Buffer.from(got[0] ?? "", "base64").toString("utf8") : given,
      checks: p.checks,
      passed:
        p.judged &&
        p.end &&
        p.checks.length === checks.length &&
        p.checks.every((c) => c.exitCode === 0) &&
        res.exitCode === 0,
      timedOut,
    };
    if (setupFailure) return { ...j, passed: false, setupFailure };
    if (!p.end && !timedOut) j.error = this.lost(res, p);
    return j;
  }

  /**
   * The setup failure a run reported, or found by its silence: a first run that never said
   * "setup-ok" did not get through setup (nothing the agent wrote runs before that).
   */
  private setupFailureOf(res: Awaited<ReturnType<Runner>>, p: Parsed): SetupFailure | undefined {
    const reported = setupFailureOf(p);
    if (reported || this.carried !== null || p.first.has("setup-ok")) return reported;
    const init = this.setup.init?.length ?? 0;
    const stage = p.first.has("init-ok") ? "start" : "init";
    return {
      stage,
      index: stage === "init" ? Math.max(0, init - 1) : 0,
      exitCode: null,
      output: this.lost(res, p),
    };
  }

  /** Why a run did not report what it should have. */
  private lost(res: Awaited<ReturnType<Runner>>, p: Parsed): string {
    if (ranTooLong(res)) return "the run went past its time limit";
    if (res.outputTruncated) return "the session's state outgrew what a run may send back";
    if (p.first.has("error")) return `the session could not ${p.first.get("error")?.[0] ?? "run"}`;
    return `the session's wrapper ended unexpectedly (${res.reason ?? `exit ${res.exitCode}`})`;
  }

  /** Runs WRAPPER: setup on the first run of the session, a restore of its state after. */
  private async wrapper(mode: string, command: string, answer: string, checks: Script[] = []) {
    const tag = nonce();
    const first = this.carried === null;
    const flags = `${first ? "S" : "R"}${mode}`;
    const init = first ? (this.setup.init ?? []) : [];
    const dirs = first ? (this.setup.dirs ?? []) : [];
    const fields = [
      WRAPPER,
      tag,
      flags,
      String(dirs.length),
      ...dirs,
      String(init.length),
      ...init.flatMap((x) => [x.language, x.code]),
      first ? (this.setup.start ?? "") : "",
      command,
      answer,
      String(this.cap),
      String(this.secs),
      DRIVER,
      String(checks.length),
      ...checks.flatMap((c) => [c.language, c.code]),
    ];
    for (const f of fields) {
      if (f.includes("\0")) throw new Error("session scripts and commands cannot hold NUL bytes");
    }
    let stdin = Buffer.from(fields.map((f) => `${f}\0`).join(""));
    if (!first) {
      const c = this.carried as Carried;
      stdin = Buffer.concat([
        stdin,
        Buffer.from(`${c.shell.length} ${c.modes.length}\n`),
        c.shell,
        c.modes,
        c.fs,
      ]);
    }
    const res = await this.run({
      command: ["bash", "-c", BOOT, "bash"],
      files: first ? this.setup.files : {},
      stdin,
      ...SESSION_LIMITS,
    });
    return { res, p: parse(res.stderr, tag) };
  }
}
