import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { exitReason, signalName, signalReason, supervisorKill } from "./explain.ts";
import { assertModeUsable, modeProblems, pickMode } from "./mode.ts";
import { bwrapMountArgs, extraBinds, fstabFor, getSkeleton } from "./skeleton.ts";
import { launch } from "./supervise.ts";
import { packTar, TarReader } from "./tar.ts";
import {
  BWRAP_TOOLS,
  COMMON_TOOLS,
  findTools,
  PACKAGE_OF,
  type Tools,
  UNSHARE_TOOLS,
} from "./tools.ts";
import {
  SandboxError,
  type SandboxMode,
  type SandboxOptions,
  type SandboxResult,
  type SandboxTool,
} from "./types.ts";
import { acquireSlot, releaseSlot, uidBase } from "./uids.ts";
import { type ResolvedOptions, resolveOptions } from "./validate.ts";

/**
 * Layout of one sandbox, whichever tool builds it:
 *
 *   launcher (unshare or bwrap; as root, or rootless in a new user namespace where the user
 *   is root only for building the mounts): new mount, PID, network, IPC, UTS and cgroup
 *   namespaces; host /usr, /bin, /lib* and a few /etc files bound read-only onto the
 *   skeleton (bubblewrap: a copy of it at /s in its own root); a size-capped tmpfs at /work
 *   and at /tmp; /proc of the new PID namespace.
 *   └ chroot into the skeleton. Being chrooted also stops the program from making user
 *     namespaces, in which it could mount a tmpfs without a size cap.
 *     └ sh, PID 1 of the namespace, root: unpacks the files, runs the program, reports its
 *       status and packs the collected files on fd 4. When it exits the kernel kills
 *       everything left in the namespace.
 *       └ setpriv: root mode, the slot's own uid and no groups; rootless mode, the
         namespace's root without any capability, and securebits that keep it so; both
         with no_new_privs
 *         └ prlimit: NPROC, CPU, AS, FSIZE, NOFILE, CORE=0
 *           └ env -i PATH=... HOME=/work LANG=... (the caller's env only from here on:
 *             LD_PRELOAD and friends never reach a root-owned stage)
 *             └ the program, in /work
 *
 * Every root-owned stage runs a host program by absolute path with a fixed environment,
 * and the launcher itself starts with that environment too, so /proc/1/environ holds
 * nothing of the caller's. In rootless mode the program shares its host uid with PID 1, but
 * holds none of PID 1's capabilities, so it can neither trace it nor read its /proc files,
 * and signals from inside a PID namespace reach its init only where init set a handler.
 */

/** Who the program runs as: a slot's uid (root mode), or the user namespace's root. */
export interface Identity {
  mode: SandboxMode;
  /** The uid inside the sandbox: the slot's in root mode, 0 in rootless mode. */
  uid: number;
}

/** The environment of every root-owned stage. */
export const LAUNCH_ENV = { PATH: "/usr/bin:/bin" };

export function q(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

function missing(tools: Tools, names: (keyof Tools)[]): (keyof Tools)[] {
  return names.filter((n) => !tools[n]);
}

/** Why a tool cannot be used here in a mode; empty when it can. */
export function toolProblems(tool: SandboxTool, mode: SandboxMode = pickMode()): string[] {
  const problems = modeProblems(mode);
  const tools = findTools();
  const lacking = missing(tools, [
    ...COMMON_TOOLS,
    ...(tool === "unshare" ? UNSHARE_TOOLS : BWRAP_TOOLS),
  ]);
  for (const n of lacking) problems.push(`${n} not found (apt package ${PACKAGE_OF[n]})`);
  return problems;
}

const autoTool = new Map<SandboxMode, SandboxTool>();

/** CYCLEQD_SANDBOX_TOOL picks one; otherwise unshare, which needs nothing installed. */
export function pickTool(
  requested?: SandboxTool | "auto",
  mode: SandboxMode = pickMode(),
): SandboxTool {
  const want = requested && requested !== "auto" ? requested : process.env.CYCLEQD_SANDBOX_TOOL;
  if (want === "unshare" || want === "bwrap") {
    const p = toolProblems(want, mode);
    if (p.length)
      throw new SandboxError(`sandbox (${want}, ${mode} mode) cannot run here: ${p.join("; ")}`);
    return want;
  }
  if (want !== undefined && want !== "" && want !== "auto")
    throw new Error(
      `sandbox: tool (or CYCLEQD_SANDBOX_TOOL) must be unshare, bwrap or auto, got "${want}"`,
    );
  const known = autoTool.get(mode);
  if (known) return known;
  for (const t of ["unshare", "bwrap"] as const) {
    if (toolProblems(t, mode).length === 0) {
      autoTool.set(mode, t);
      return t;
    }
  }
  throw new SandboxError(
    `no sandbox can run here (${mode} mode): ${toolProblems("unshare", mode).join("; ")}. ` +
      "checkSandbox() says what to fix.",
  );
}

/** Every catchable signal but SIGCHLD, which dash needs to reap its children. */
const TRAPPED_SIGNALS = Array.from({ length: 31 }, (_, i) => i + 1)
  .filter((n) => n !== 9 && n !== 17 && n !== 19)
  .join(" ");

/**
 * Counts what the program left running (zombies aside): the kernel kills it all when PID 1
 * exits, and the caller hears about it. Builtins only, so nothing new is forked.
 */
const COUNT_LEFT = [
  "rc=$? n=0",
  "for p in /proc/[0-9]*; do",
  "  case $p in /proc/1|/proc/$$) continue;; esac",
  '  read -r s < "$p/stat" 2>/dev/null || continue',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion
  '  s="${s##*) }"',
  '  case "$s" in Z*) continue;; esac',
  "  n=$((n+1))",
  "done",
].join("\n");

/**
 * Gives up every privilege for good: no capabilities, no_new_privs; in root mode the slot's
 * uid and no groups. The rootless user namespace maps one uid, so there the program stays
 * its root, and securebits stop that root from ever getting capabilities back through exec.
 */
function dropArgs(tools: Tools, id: Identity): string[] {
  const who =
    id.mode === "root"
      ? [`--reuid=${id.uid}`, `--regid=${id.uid}`, "--clear-groups"]
      : ["--securebits=+noroot,+noroot_locked,+no_setuid_fixup,+no_setuid_fixup_locked"];
  return [
    tools.setpriv as string,
    ...who,
    "--inh-caps=-all",
    "--bounding-set=-all",
    "--no-new-privs",
    "--",
  ];
}

function innerScript(o: ResolvedOptions, tools: Tools, id: Identity, tool: SandboxTool): string {
  const drop = dropArgs(tools, id).map(q).join(" ");
  const tar = q(tools.tar as string);
  const pages = Math.ceil(o.tmpBytes / 4096);
  const lines = [
    // PID 1 keeps running whatever the program signals it (rootless mode shares its uid):
    // a signal sent inside a PID namespace reaches init only through a handler, and this
    // handler does nothing. Unlike ignoring, a handler is reset to the default on exec, so
    // the program starts with default signal dispositions.
    `trap : ${TRAPPED_SIGNALS}`,
    "umask 022",
    "cd /work || exit 1",
    // System V IPC memory lives outside every rlimit and tmpfs: cap it in this IPC
    // namespace to the size of /tmp, with few message queues and semaphores.
    `{ echo ${o.tmpBytes} > /proc/sys/kernel/shmmax && echo ${pages} > /proc/sys/kernel/shmall && echo 64 > /proc/sys/kernel/shmmni && echo 16 > /proc/sys/kernel/msgmni && echo '250 32000 32 128' > /proc/sys/kernel/sem; } 2>/dev/null || { echo 'err could not cap System V IPC memory (/proc/sys not writable)' >&4; exit 1; }`,
  ];
  // bubblewrap's tmpfs belongs to root; the unshare layout mounts it with uid= instead.
  if (tool === "bwrap")
    lines.push(`${q(tools.chown as string)} ${id.uid}:${id.uid} /work || exit 1`);
  if (o.files.length) {
    lines.push(
      `${drop} ${tar} -xf - --no-same-owner <&3 3<&- 4>&- || { echo 'err could not unpack the files into /work' >&4; exit 1; }`,
    );
  }
  // "go": from here on, whatever goes wrong is the program's doing.
  lines.push("echo go >&4", '"$@" 3<&- 4>&-', COUNT_LEFT, 'echo "rc $rc left $n" >&4');
  // What the program left behind must not touch the files while they are read back.
  if (o.collect.length) lines.push('[ "$n" = 0 ] || kill -9 -1');

  if (o.collect.length)
    lines.push(
      `${drop} ${tar} -cf - --ignore-failed-read -- ${o.collect.map(q).join(" ")} 2>/dev/null >&4`,
    );
  return lines.join("\n");
}

/**
 * argv of the program itself, as PID 1 starts it: without any privilege, under its limits.
 * A `privileged` program (the batch lane server, our own code) keeps PID 1's privileges and
 * drops them itself in each job it forks.
 */
function programArgv(
  o: ResolvedOptions,
  tools: Tools,
  id: Identity,
  privileged: boolean,
): string[] {
  return [
    ...(privileged ? [] : [...dropArgs(tools, id), ...limitArgs(o, tools)]),
    tools.env as string,
    "-i",
    ...Object.entries(o.env).map(([k, v]) => `${k}=${v}`),
    ...o.command,
  ];
}

export function limitArgs(o: ResolvedOptions, tools: Tools): string[] {
  return [
    tools.prlimit as string,
    `--nproc=${o.maxProcesses}`,
    // SIGXCPU at the soft limit names the cause; SIGKILL a second later if it is ignored.
    `--cpu=${o.cpuSeconds}:${o.cpuSeconds + 1}`,
    `--as=${o.memoryBytes}`,
    `--fsize=${o.maxFileBytes}`,
    "--nofile=256",
    "--core=0",
    "--",
  ];
}

export function launcherArgv(
  o: ResolvedOptions,
  tools: Tools,
  tool: SandboxTool,
  id: Identity,
  extras: string[],
  privileged = false,
): string[] {
  const inner = innerScript(o, tools, id, tool);
  const program = programArgv(o, tools, id, privileged);
  const sh = tools.sh as string;
  if (tool === "unshare") {
    const fstab = fstabFor(id.uid, o.workdirBytes, o.tmpBytes, extras, id.mode === "rootless");
    const outer = [
      // Cosmetic: some containers mount /proc/sys read-only.
      "{ echo sandbox > /proc/sys/kernel/hostname; } 2>/dev/null || :",
      `${q(tools.mount as string)} -a -T "$1" || exit 1`,
      'cd "$2" || exit 1',
      "shift 2",
      `exec ${q(tools.chroot as string)} . ${q(sh)} -c "$@"`,
    ].join("\n");
    return [
      tools.setpriv as string,
      // The whole tree dies with the grader, even when the grader is SIGKILLed.
      "--pdeathsig=KILL",
      "--",
      tools.unshare as string,
      // Rootless: the user is root inside only, for building the mounts.
      ...(id.mode === "rootless" ? ["--user", "--map-root-user"] : []),
      "--mount",
      "--propagation=private",
      "--pid",
      "--fork",
      "--kill-child",
      "--net",
      "--ipc",
      "--uts",
      "--cgroup",
      "--",
      sh,
      "-c",
      outer,
      "sh",
      fstab,
      getSkeleton().root,
      inner,
      "sh",
      ...program,
    ];
  }
  return [
    tools.bwrap as string,
    ...(id.mode === "rootless"
      ? ["--unshare-user", "--uid", "0", "--gid", "0", "--cap-add", "ALL"]
      : []),
    "--unshare-pid",
    "--unshare-net",
    "--unshare-ipc",
    "--unshare-uts",
    "--unshare-cgroup-try",
    "--hostname",
    "sandbox",
    "--die-with-parent",
    ...bwrapMountArgs(o.workdirBytes, o.tmpBytes, extras),
    "--chdir",
    "/",
    "--",
    tools.chroot as string,
    "/s",
    sh,
    "-c",
    inner,
    "sh",
    ...program,
  ];
}

/**
 * The result fields of a program that ended on its own with shell status `rc` (128+n: killed
 * by signal n), having left `left` processes running.
 */
export function howItEnded(
  rc: number,
  left: number,
  stderr: string,
  o: ResolvedOptions,
): Pick<SandboxResult, "exitCode" | "signal" | "reason" | "leftover"> {
  const leftNote = left ? `; left ${left} process${left === 1 ? "" : "es"} running, killed` : "";
  const sig = rc > 128 && rc < 128 + 65 ? signalName(rc - 128) : null;
  if (sig)
    return {
      leftover: left,
      exitCode: null,
      signal: sig,
      reason: signalReason(sig, o, stderr) + leftNote,
    };
  const reason = exitReason(rc, stderr, o) ?? (left ? "exit 0" : undefined);
  return {
    leftover: left,
    exitCode: rc,
    signal: null,
    ...(reason ? { reason: reason + leftNote } : {}),
  };
}

/** Processes whose real uid is `uid`, from /proc. */
export function processesOf(uid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const status = readFileSync(`/proc/${name}/status`, "utf8");
      const m = /^Uid:\s+(\d+)/m.exec(status);
      if (m && Number(m[1]) === uid) out.push(Number(name));
    } catch {}
  }
  return out;
}

/** Processes in the PID namespace `ns` ("pid:[inode]"), from /proc. */
export function processesIn(ns: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readlinkSync(`/proc/${name}/ns/pid`) === ns) out.push(Number(name));
    } catch {}
  }
  return out;
}

/**
 * The PID namespace a launcher made: unshare's children's, or, for bubblewrap, whose own
 * stays the host's, the one its child (the sandbox's init) lives in. Null when not found.
 */
function sandboxPidNs(launcher: number): string | null {
  try {
    const host = readlinkSync("/proc/self/ns/pid");
    const own = readlinkSync(`/proc/${launcher}/ns/pid_for_children`);
    if (own !== host) return own;
    const children = readFileSync(`/proc/${launcher}/task/${launcher}/children`, "utf8").trim();
    for (const child of children.split(/\s+/).filter(Boolean)) {
      const ns = readlinkSync(`/proc/${child}/ns/pid`);
      if (ns !== host) return ns;
    }
  } catch {}
  return null;
}

/**
 * Waits until nothing of a sandbox is left. Rootless sandboxes run as the user, so what
 * lingers can be killed by pid; a root-mode slot's uid is only watched.
 */
async function waitGone(find: () => number[], kill: boolean, ms: number): Promise<boolean> {
  const until = performance.now() + ms;
  for (;;) {
    const left = find();
    if (left.length === 0) return true;
    if (performance.now() > until) return false;
    if (kill)
      for (const pid of left)
        try {
          process.kill(pid, "SIGKILL");
        } catch {}
    await new Promise((r) => setTimeout(r, 10));
  }
}

export interface SandboxRunOptions extends SandboxOptions {
  /** "auto" (default): CYCLEQD_SANDBOX_TOOL, else unshare, else bubblewrap. */
  tool?: SandboxTool | "auto";
  /** "auto" (default): CYCLEQD_SANDBOX_MODE, else root when run as root, else rootless. */
  mode?: SandboxMode | "auto";
}

/**
 * Runs an untrusted program in a throw-away sandbox and reports how it ended. A program
 * that fails, hits a limit or times out is a result, never an exception; SandboxError is
 * thrown only when the sandbox itself cannot be built (no usable tool or mode, setup failed),
 * and an Error for invalid options, tool or mode (also from CYCLEQD_SANDBOX_TOOL/_MODE).
 */
export async function runSandboxed(opts: SandboxRunOptions): Promise<SandboxResult> {
  const o = resolveOptions(opts);
  const mode = pickMode(opts.mode);
  assertModeUsable(mode);
  const tool = pickTool(opts.tool, mode);
  const tools = findTools();
  const extras = extraBinds(o.readOnlyPaths);
  const slot = mode === "root" ? await acquireSlot() : -1;
  const id: Identity = { mode, uid: mode === "root" ? uidBase + slot : 0 };
  const hostUid = mode === "root" ? id.uid : (process.getuid?.() ?? -1);
  // The PID namespace a rootless sandbox's leftovers would be found in, read before a kill.
  let pidNs: string | null = null;
  let release = true;
  try {
    let status: string | null = null;
    let started = false;
    let head = Buffer.alloc(0);
    const reader = new TarReader(o.maxOutputBytes);
    const outcome = await launch({
      argv: launcherArgv(o, tools, tool, id, extras),
      env: LAUNCH_ENV,
      stdin: o.stdin,
      fd3: o.files.length ? packTar(o.files) : null,
      onFd4: (chunk) => {
        if (status !== null) return reader.push(chunk);
        head = Buffer.concat([head, chunk]);
        for (let nl = head.indexOf(10); nl !== -1 && status === null; nl = head.indexOf(10)) {
          const line = head.toString("utf8", 0, nl);
          head = head.subarray(nl + 1);
          if (line === "go") started = true;
          else status = line;
        }
        if (status !== null) reader.push(head);
      },
      timeoutMs: o.timeoutMs,
      maxOutputBytes: o.maxOutputBytes,
      killGroupOnExit: false,
      onBeforeKill: (pid) => {
        if (mode !== "rootless") return;
        pidNs = sandboxPidNs(pid);
      },
    });
    const st = status as string | null;
    const m = st ? /^rc (\d+) left (\d+)$/.exec(st) : null;
    const left = m ? Number(m[2]) : 0;
    // unshare returns only once its PID 1, and so the whole namespace, is gone. Nothing
    // waited when the launcher was killed, and bubblewrap exits as soon as the program does.
    if (outcome.timedOut || outcome.outputKilled || (tool === "bwrap" && (left > 0 || !m))) {
      const ns = pidNs as string | null;
      if (mode === "root") release = await waitGone(() => processesOf(id.uid), false, 2000);
      else if (ns) await waitGone(() => processesIn(ns), true, 2000);
    }
    const stdout = outcome.stdout.toString("utf8");
    const stderr = outcome.stderr.toString("utf8");
    const base = {
      leftover: 0,
      stdout,
      stderr,
      timedOut: outcome.timedOut,
      outputTruncated: outcome.outputKilled || reader.truncated,
      durationMs: outcome.durationMs,
      tool,
      mode,
      uid: hostUid,
      ...(o.collect.length ? { files: reader.files } : {}),
    };
    const killed = supervisorKill(outcome, o);
    if (killed) return { ...base, ...killed };
    if (st?.startsWith("err ")) throw new SandboxError(`sandbox: ${st.slice(4)}`);
    // Rootless, the program shares PID 1's uid and can, say, lower its limits until it
    // cannot report: that is the program's failure, not the sandbox's.
    if (!m && started && !st?.startsWith("err "))
      return {
        ...base,
        exitCode: null,
        signal: null,
        reason: "the program broke its sandbox: PID 1 could not report how it ended",
      };
    if (!m) {
      const how = outcome.signal ? `signal ${outcome.signal}` : `exit ${outcome.code}`;
      throw new SandboxError(
        `sandbox setup failed (${tool}, ${mode} mode, ${how}): ${stderr.trim().slice(0, 2000) || "no message"}. ` +
          "Run checkSandbox() for what to fix.",
      );
    }
    return { ...base, ...howItEnded(Number(m[1]), left, stderr, o) };
  } finally {
    // A uid whose processes outlived the kill stays out of the pool.
    if (release && slot >= 0) releaseSlot(slot);
  }
}
