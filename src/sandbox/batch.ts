/**
 * Batched sandboxed execution: long-lived sandboxes ("lanes") that each run many jobs one
 * after another (lane-server.ts), so a job costs a fork and an exec instead of a whole
 * sandbox start. A BatchRunner has the signature of runSandboxed and gives the same results:
 * the same limits, environment, /work and /tmp per job, the same verdict texts.
 *
 * Isolation between jobs of one lane: they run one at a time; before the next starts, the
 * lane kills what the last left, empties /work and /tmp and removes IPC objects. A job that
 * breaks its lane (kills or stops it, changes its limits) loses nothing: the lane is
 * dropped and that job, and every later one routed to it, runs in a sandbox of its own
 * (counted in `stats().fallback`). Jobs that collect files or bind extra host paths always
 * run one sandbox per job.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { availableParallelism } from "node:os";
import type { Readable, Writable } from "node:stream";
import { supervisorKill } from "./explain.ts";
import { LANE_SERVER_PY } from "./lane-server.ts";
import { assertModeUsable, pickMode } from "./mode.ts";
import {
  howItEnded,
  type Identity,
  LAUNCH_ENV,
  launcherArgv,
  pickTool,
  processesOf,
  runSandboxed,
  type SandboxRunOptions,
} from "./run.ts";
import { extraBinds } from "./skeleton.ts";
import { findTools } from "./tools.ts";
import type { SandboxMode, SandboxOptions, SandboxResult, SandboxTool } from "./types.ts";
import { acquireSlot, releaseSlot, uidBase } from "./uids.ts";
import { type ResolvedOptions, resolveOptions } from "./validate.ts";

export interface BatchRunnerOptions {
  /** Lanes per size of /work and /tmp (default: the number of cores). */
  lanes?: number;
  mode?: SandboxMode | "auto";
  tool?: SandboxTool | "auto";
}

export interface BatchStats {
  /** Jobs run in a lane. */
  batched: number;
  /** Jobs run one sandbox per job because their lane broke. */
  fallback: number;
  /** Jobs that always run one sandbox per job (collect, readOnlyPaths). */
  single: number;
  /** Lanes dropped because a job broke them, with why. */
  broken: string[];
}

export interface BatchRunner {
  run(req: SandboxOptions): Promise<SandboxResult>;
  stats(): BatchStats;
  /** Ends every lane; later run() calls start new ones. */
  close(): Promise<void>;
}

/** Past a job's own wall clock, how long the host waits for the lane's reply. */
const WATCHDOG_GRACE_MS = 3000;

interface LaneReply {
  rc: number | null;
  left: number;
  timedOut: boolean;
  outputKilled: boolean;
  durationMs: number;
  stdout: string;
  stderr: string;
}

/** One long-lived sandbox running the lane server. */
class Lane {
  private readonly proc: ChildProcess;
  private readonly tag = randomBytes(16).toString("hex");
  private buffer = "";
  /** Replies that arrived while nobody waited (a start and a result often come together). */
  private readonly inbox: (Record<string, unknown> | null)[] = [];
  private waiter: ((line: Record<string, unknown> | null) => void) | null = null;
  private watchdog: NodeJS.Timeout | undefined;
  private dead = false;
  readonly exited: Promise<void>;
  /** Why the lane stopped, when a job broke it. */
  broken: string | null = null;

  constructor(
    o: ResolvedOptions,
    readonly mode: SandboxMode,
    readonly tool: SandboxTool,
    readonly id: Identity,
    private readonly slot: number,
  ) {
    const argv = launcherArgv(o, findTools(), tool, id, extraBinds([]), true);
    this.proc = spawn(argv[0], argv.slice(1), {
      env: LAUNCH_ENV,
      stdio: ["pipe", "pipe", "ignore", "ignore", "ignore"],
      detached: true,
    });
    (this.proc.stdin as Writable).on("error", () => {});
    (this.proc.stdin as Writable).write(`${this.tag}\n`);
    (this.proc.stdout as Readable).setEncoding("utf8");
    (this.proc.stdout as Readable).on("data", (chunk: string) => this.onData(chunk));
    this.exited = new Promise((resolve) => {
      this.proc.on("exit", () => {
        this.dead = true;
        this.deliver(null);
        resolve();
      });
      this.proc.on("error", () => {
        this.dead = true;
        this.deliver(null);
        resolve();
      });
    });
  }

  get alive(): boolean {
    return !this.dead && this.broken === null;
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    for (;;) {
      const nl = this.buffer.indexOf("\n");
      if (nl === -1) return;
      const line = this.buffer.slice(0, nl);
      this.buffer = this.buffer.slice(nl + 1);
      // Only the lane server knows the tag; anything else on this stream is not a reply.
      if (!line.startsWith(this.tag)) continue;
      try {
        this.deliver(JSON.parse(line.slice(this.tag.length)));
      } catch {
        this.deliver(null);
      }
    }
  }

  private deliver(msg: Record<string, unknown> | null): void {
    const w = this.waiter;
    this.waiter = null;
    if (w) w(msg);
    else this.inbox.push(msg);
  }

  private next(timeoutMs: number | null): Promise<Record<string, unknown> | null> {
    if (this.inbox.length) return Promise.resolve(this.inbox.shift() ?? null);
    if (this.dead) return Promise.resolve(null);
    return new Promise((resolve) => {
      this.waiter = resolve;
      if (timeoutMs !== null)
        this.watchdog = setTimeout(() => {
          this.broken ??= `a job did not finish within ${timeoutMs} ms of its start`;
          this.kill();
          this.deliver(null);
        }, timeoutMs);
    }).finally(() => clearTimeout(this.watchdog)) as Promise<Record<string, unknown> | null>;
  }

  /** Runs one job; null when the lane broke (the job's result is then unknown). */
  async exec(o: ResolvedOptions): Promise<LaneReply | null> {
    if (!this.alive) return null;
    const job = {
      argv: o.command,
      env: o.env,
      envPath: findTools().env,
      // `python3 -I SCRIPT` runs in a fork of the lane's own interpreter, without a new one.
      inProcess:
        o.command.length === 3 &&
        o.command[0] === "python3" &&
        o.command[1] === "-I" &&
        o.files.some((f) => f.path === o.command[2] && f.path.endsWith(".py")),
      files: Object.fromEntries(o.files.map((f) => [f.path, f.data.toString("base64")])),
      stdin: o.stdin ? o.stdin.toString("base64") : null,
      timeoutMs: o.timeoutMs,
      maxOutputBytes: o.maxOutputBytes,
      // Who the job becomes: root mode, the lane's slot uid; rootless, the namespace's root
      // without capabilities. Either way, as in a sandbox of its own, it cannot touch the lane.
      drop: this.mode === "root" ? { uid: this.id.uid } : { uid: null },
      limits: {
        // Rootless, the lane counts against the job's process limit (as PID 1 does, alone).
        nproc: o.maxProcesses + (this.mode === "rootless" ? 1 : 0),
        cpu: o.cpuSeconds,
        as: o.memoryBytes,
        fsize: o.maxFileBytes,
      },
    };
    const started = this.next(WATCHDOG_GRACE_MS);
    (this.proc.stdin as Writable).write(`${JSON.stringify(job)}\n`);
    const start = await started;
    if (!start?.start) return this.fail(start);
    const reply = await this.next(o.timeoutMs + WATCHDOG_GRACE_MS);
    if (!reply || !("rc" in reply)) return this.fail(reply);
    return reply as unknown as LaneReply;
  }

  private fail(msg: Record<string, unknown> | null): null {
    this.broken ??= typeof msg?.broken === "string" ? msg.broken : "the lane stopped";
    this.kill();
    return null;
  }

  private kill(): void {
    if (this.proc.pid === undefined || this.dead) return;
    try {
      process.kill(-this.proc.pid, "SIGKILL");
    } catch {}
  }

  /** Ends the lane and waits until nothing of it is left. */
  async close(): Promise<void> {
    (this.proc.stdin as Writable).end();
    const timer = setTimeout(() => this.kill(), 5000);
    await this.exited;
    clearTimeout(timer);
    if (this.slot < 0) return;
    // A uid whose processes outlived the lane stays out of the pool.
    const until = performance.now() + 2000;
    while (processesOf(this.id.uid).length > 0 && performance.now() < until)
      await new Promise((r) => setTimeout(r, 10));
    if (processesOf(this.id.uid).length === 0) releaseSlot(this.slot);
  }
}

/** The lane's own limits: room for every job's, which each job then lowers for itself. */
function laneOptions(workdirBytes: number, tmpBytes: number): ResolvedOptions {
  return resolveOptions({
    command: ["python3", "-I", "-c", LANE_SERVER_PY],
    timeoutMs: 2 ** 31 - 1,
    cpuSeconds: 1_000_000,
    memoryBytes: 4 * 2 ** 30,
    maxProcesses: 4096,
    maxFileBytes: 1 * 2 ** 30,
    workdirBytes,
    tmpBytes,
    maxOutputBytes: 1,
  });
}

export function createBatchRunner(opts: BatchRunnerOptions = {}): BatchRunner {
  const width = opts.lanes ?? availableParallelism();
  if (!(Number.isInteger(width) && width >= 1))
    throw new Error(`batch runner: lanes must be a positive integer, got ${width}`);
  const mode = pickMode(opts.mode);
  assertModeUsable(mode);
  const tool = pickTool(opts.tool, mode);
  const single: Pick<SandboxRunOptions, "mode" | "tool"> = { mode, tool };
  const stats: BatchStats = { batched: 0, fallback: 0, single: 0, broken: [] };
  /** Idle lanes and lane counts per /work and /tmp size; callers waiting for one. */
  const idle = new Map<string, Lane[]>();
  const count = new Map<string, number>();
  const waiting = new Map<string, ((lane: Lane) => void)[]>();
  const all = new Set<Lane>();

  async function openLane(o: ResolvedOptions): Promise<Lane> {
    const slot = mode === "root" ? await acquireSlot() : -1;
    const id: Identity = { mode, uid: mode === "root" ? uidBase + slot : 0 };
    const lane = new Lane(laneOptions(o.workdirBytes, o.tmpBytes), mode, tool, id, slot);
    all.add(lane);
    return lane;
  }

  async function acquire(key: string, o: ResolvedOptions): Promise<Lane> {
    const free = idle.get(key) ?? [];
    while (free.length) {
      const lane = free.pop() as Lane;
      if (lane.alive) return lane;
    }
    if ((count.get(key) ?? 0) < width) {
      count.set(key, (count.get(key) ?? 0) + 1);
      return openLane(o);
    }
    return new Promise((resolve) => {
      const q = waiting.get(key) ?? [];
      q.push(resolve);
      waiting.set(key, q);
    });
  }

  function release(key: string, lane: Lane, o: ResolvedOptions): void {
    if (!lane.alive) {
      if (lane.broken) stats.broken.push(lane.broken);
      all.delete(lane);
      void lane.close();
      count.set(key, (count.get(key) ?? 1) - 1);
      // A waiter gets a new lane in place of the broken one.
      const w = waiting.get(key)?.shift();
      if (w) {
        count.set(key, (count.get(key) ?? 0) + 1);
        void openLane(o).then(w);
      }
      return;
    }
    const w = waiting.get(key)?.shift();
    if (w) {
      w(lane);
      return;
    }
    const free = idle.get(key) ?? [];
    free.push(lane);
    idle.set(key, free);
  }

  return {
    async run(req) {
      const o = resolveOptions(req);
      if (o.collect.length || o.readOnlyPaths.length) {
        stats.single++;
        return runSandboxed({ ...req, ...single });
      }
      const key = `${o.workdirBytes}:${o.tmpBytes}`;
      const lane = await acquire(key, o);
      let reply: LaneReply | null;
      try {
        reply = await lane.exec(o);
      } finally {
        release(key, lane, o);
      }
      if (!reply) {
        stats.fallback++;
        return runSandboxed({ ...req, ...single });
      }
      stats.batched++;
      const stdout = Buffer.from(reply.stdout, "base64").toString("utf8");
      const stderr = Buffer.from(reply.stderr, "base64").toString("utf8");
      const base = {
        leftover: 0,
        stdout,
        stderr,
        timedOut: reply.timedOut,
        outputTruncated: reply.outputKilled,
        durationMs: reply.durationMs,
        tool,
        mode,
        uid: mode === "root" ? lane.id.uid : (process.getuid?.() ?? -1),
      };
      const killed = supervisorKill(reply, o);
      if (killed) return { ...base, ...killed };
      // The job's init could not report: the job broke it, as runSandboxed says of PID 1.
      if (reply.rc === null)
        return {
          ...base,
          exitCode: null,
          signal: null,
          reason: "the program broke its sandbox: PID 1 could not report how it ended",
        };
      return { ...base, ...howItEnded(reply.rc, reply.left, stderr, o) };
    },
    stats: () => ({ ...stats, broken: [...stats.broken] }),
    async close() {
      const lanes = [...all];
      all.clear();
      idle.clear();
      count.clear();
      await Promise.all(lanes.map((l) => l.close()));
    },
  };
}
