import { readdirSync, readFileSync } from "node:fs";
import { exitReason, signalName, signalReason, supervisorKill } from "./explain.ts";
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
  type SandboxOptions,
  type SandboxResult,
  type SandboxTool,
} from "./types.ts";
import { acquireSlot, releaseSlot, uidBase } from "./uids.ts";
import { type ResolvedOptions, resolveOptions } from "./validate.ts";

/**
 * Layout of one sandbox, whichever tool builds it:
 *
 *   launcher (unshare or bwrap, as root): new mount, PID, network, IPC, UTS and cgroup
 *   namespaces; host /usr, /bin, /lib* and a few /etc files bound read-only onto the
 *   skeleton (bubblewrap: a copy of it at /s in its own root); a size-capped tmpfs at /work
 *   and at /tmp; /proc of the new PID namespace.
 *   └ chroot into the skeleton. Being chrooted also stops the program from making user
 *     namespaces, in which it could mount a tmpfs without a size cap.
 *     └ sh, PID 1 of the namespace, root: unpacks the files, runs the program, reports its
 *       status and packs the collected files on fd 4. When it exits the kernel kills
 *       everything left in the namespace.
 *       └ setpriv: the slot's own uid, no groups, no capabilities, no_new_privs
 *         └ prlimit: NPROC, CPU, AS, FSIZE, NOFILE, CORE=0
 *           └ env -i PATH=... HOME=/work LANG=... (the caller's env only from here on:
 *             LD_PRELOAD and friends never reach a root-owned stage)
 *             └ the program, in /work
 *
 * Every root-owned stage runs a host program by absolute path with a fixed environment,
 * and the launcher itself starts with that environment too, so /proc/1/environ holds
 * nothing of the caller's.
 */

/** The environment of every root-owned stage. */
const LAUNCH_ENV = { PATH: "/usr/bin:/bin" };

export function q(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

function missing(tools: Tools, names: (keyof Tools)[]): (keyof Tools)[] {
  return names.filter((n) => !tools[n]);
}

/** Why a tool cannot be used here; empty when it can. */
export function toolProblems(tool: SandboxTool): string[] {
  const problems: string[] = [];
  if (process.platform !== "linux") problems.push("the sandbox needs Linux namespaces");
  if (process.getuid?.() !== 0)
    problems.push(
      "the sandbox must be started as root: it switches each program to a uid of its own " +
        `(${uidBase}+), which only root can do`,
    );
  const tools = findTools();
  const lacking = missing(tools, [
    ...COMMON_TOOLS,
    ...(tool === "unshare" ? UNSHARE_TOOLS : BWRAP_TOOLS),
  ]);
  for (const n of lacking) problems.push(`${n} not found (apt package ${PACKAGE_OF[n]})`);
  return problems;
}

let autoTool: SandboxTool | null = null;

/** CYCLEQD_SANDBOX_TOOL picks one; otherwise unshare, which needs nothing installed. */
export function pickTool(requested?: SandboxTool | "auto"): SandboxTool {
  const want = requested && requested !== "auto" ? requested : process.env.CYCLEQD_SANDBOX_TOOL;
  if (want === "unshare" || want === "bwrap") {
    const p = toolProblems(want);
    if (p.length) throw new SandboxError(`sandbox (${want}) cannot run here: ${p.join("; ")}`);
    return want;
  }
  if (want !== undefined && want !== "" && want !== "auto")
    throw new Error(
      `sandbox: tool (or CYCLEQD_SANDBOX_TOOL) must be unshare, bwrap or auto, got "${want}"`,
    );
  if (autoTool) return autoTool;
  for (const t of ["unshare", "bwrap"] as const) {
    if (toolProblems(t).length === 0) {
      autoTool = t;
      return t;
    }
  }
  throw new SandboxError(
    `no sandbox can run here: ${toolProblems("unshare").join("; ")}. ` +
      "checkSandbox() says what to fix.",
  );
}

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

/** Becomes the slot's uid for good: no groups, no capabilities, no_new_privs. */
function dropArgs(tools: Tools, uid: number): string[] {
  return [
    tools.setpriv as string,
    `--reuid=${uid}`,
    `--regid=${uid}`,
    "--clear-groups",
    "--inh-caps=-all",
    "--bounding-set=-all",
    "--no-new-privs",
    "--",
  ];
}

function innerScript(o: ResolvedOptions, tools: Tools, uid: number, tool: SandboxTool): string {
  const drop = dropArgs(tools, uid).map(q).join(" ");
  const tar = q(tools.tar as string);
  const pages = Math.ceil(o.tmpBytes / 4096);
  const lines = [
    "umask 022",
    "cd /work || exit 1",
    // System V IPC memory lives outside every rlimit and tmpfs: cap it in this IPC
    // namespace to the size of /tmp, with few message queues and semaphores.
    `{ echo ${o.tmpBytes} > /proc/sys/kernel/shmmax && echo ${pages} > /proc/sys/kernel/shmall && echo 64 > /proc/sys/kernel/shmmni && echo 16 > /proc/sys/kernel/msgmni && echo '250 32000 32 128' > /proc/sys/kernel/sem; } 2>/dev/null || { echo 'err could not cap System V IPC memory (/proc/sys not writable)' >&4; exit 1; }`,
  ];
  // bubblewrap's tmpfs belongs to root; the unshare layout mounts it with uid= instead.
  if (tool === "bwrap") lines.push(`${q(tools.chown as string)} ${uid}:${uid} /work || exit 1`);
  if (o.files.length) {
    lines.push(
      `${drop} ${tar} -xf - --no-same-owner <&3 3<&- 4>&- || { echo 'err could not unpack the files into /work' >&4; exit 1; }`,
    );
  }
  lines.push('"$@" 3<&- 4>&-', COUNT_LEFT, 'echo "rc $rc left $n" >&4');
  // What the program left behind must not touch the files while they are read back.
  if (o.collect.length) lines.push('[ "$n" = 0 ] || kill -9 -1');

  if (o.collect.length)
    lines.push(
      `${drop} ${tar} -cf - --ignore-failed-read -- ${o.collect.map(q).join(" ")} 2>/dev/null >&4`,
    );
  return lines.join("\n");
}

/** argv of the program itself, as PID 1 starts it. */
function programArgv(o: ResolvedOptions, tools: Tools, uid: number): string[] {
  return [
    ...dropArgs(tools, uid),
    ...limitArgs(o, tools),
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

function launcherArgv(
  o: ResolvedOptions,
  tools: Tools,
  tool: SandboxTool,
  uid: number,
  extras: string[],
): string[] {
  const inner = innerScript(o, tools, uid, tool);
  const program = programArgv(o, tools, uid);
  const sh = tools.sh as string;
  if (tool === "unshare") {
    const fstab = fstabFor(uid, o.workdirBytes, o.tmpBytes, extras);
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

async function waitGone(uid: number, ms: number): Promise<boolean> {
  const until = performance.now() + ms;
  for (;;) {
    if (processesOf(uid).length === 0) return true;
    if (performance.now() > until) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
}

export interface SandboxRunOptions extends SandboxOptions {
  /** "auto" (default): CYCLEQD_SANDBOX_TOOL, else unshare, else bubblewrap. */
  tool?: SandboxTool | "auto";
}

/**
 * Runs an untrusted program in a throw-away sandbox and reports how it ended. A program
 * that fails, hits a limit or times out is a result, never an exception; SandboxError is
 * thrown only when the sandbox itself cannot be built.
 */
export async function runSandboxed(opts: SandboxRunOptions): Promise<SandboxResult> {
  const o = resolveOptions(opts);
  const tool = pickTool(opts.tool);
  const tools = findTools();
  const extras = extraBinds(o.readOnlyPaths);
  const slot = await acquireSlot();
  const uid = uidBase + slot;
  let release = true;
  try {
    let status: string | null = null;
    let head = Buffer.alloc(0);
    const reader = new TarReader(o.maxOutputBytes);
    const outcome = await launch({
      argv: launcherArgv(o, tools, tool, uid, extras),
      env: LAUNCH_ENV,
      stdin: o.stdin,
      fd3: o.files.length ? packTar(o.files) : null,
      onFd4: (chunk) => {
        if (status !== null) return reader.push(chunk);
        head = Buffer.concat([head, chunk]);
        const nl = head.indexOf(10);
        if (nl === -1) return;
        status = head.toString("utf8", 0, nl);
        reader.push(head.subarray(nl + 1));
      },
      timeoutMs: o.timeoutMs,
      maxOutputBytes: o.maxOutputBytes,
      killGroupOnExit: false,
    });
    const st = status as string | null;
    const m = st ? /^rc (\d+) left (\d+)$/.exec(st) : null;
    const left = m ? Number(m[2]) : 0;
    // unshare returns only once its PID 1, and so the whole namespace, is gone. Nothing
    // waited when the launcher was killed, and bubblewrap exits as soon as the program does.
    if (outcome.timedOut || outcome.outputKilled || (tool === "bwrap" && (left > 0 || !m)))
      release = await waitGone(uid, 2000);
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
      uid,
      ...(o.collect.length ? { files: reader.files } : {}),
    };
    const killed = supervisorKill(outcome, o);
    if (killed) return { ...base, ...killed };
    if (st?.startsWith("err ")) throw new SandboxError(`sandbox: ${st.slice(4)}`);
    if (!m) {
      const how = outcome.signal ? `signal ${outcome.signal}` : `exit ${outcome.code}`;
      throw new SandboxError(
        `sandbox setup failed (${tool}, ${how}): ${stderr.trim().slice(0, 2000) || "no message"}. ` +
          "Run checkSandbox() for what to fix.",
      );
    }
    const rc = Number(m[1]);
    const leftNote = left ? `; left ${left} process${left === 1 ? "" : "es"} running, killed` : "";
    // As in shells, 128+n means "killed by signal n".
    const sig = rc > 128 && rc < 128 + 65 ? signalName(rc - 128) : null;
    if (sig)
      return {
        ...base,
        leftover: left,
        exitCode: null,
        signal: sig,
        reason: signalReason(sig, o, stderr) + leftNote,
      };
    const reason = exitReason(rc, stderr, o) ?? (left ? "exit 0" : undefined);
    return {
      ...base,
      leftover: left,
      exitCode: rc,
      signal: null,
      ...(reason ? { reason: reason + leftNote } : {}),
    };
  } finally {
    // A uid whose processes outlived the kill stays out of the pool.
    if (release) releaseSlot(slot);
  }
}
