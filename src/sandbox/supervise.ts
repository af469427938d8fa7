import { spawn } from "node:child_process";
import type { Readable, Writable } from "node:stream";

/** One launch of a process tree: feeds its inputs, caps its outputs, enforces the wall clock. */
export interface LaunchSpec {
  argv: string[];
  env: Record<string, string>;
  cwd?: string;
  stdin: Buffer | null;
  /** Written to fd 3 (then closed) when given. */
  fd3: Buffer | null;
  /** Called with what the tree writes to fd 4, when given. */
  onFd4: ((chunk: Buffer) => void) | null;
  timeoutMs: number;
  maxOutputBytes: number;
  /** Kill the process group once the leader exits, for trees no namespace will reap. */
  killGroupOnExit: boolean;
  /** Called with the leader's pid just before the supervisor kills the tree. */
  onBeforeKill?: (pid: number) => void;
}

export interface LaunchOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: Buffer;
  timedOut: boolean;
  /** stdout or stderr went past the cap; the tree was killed for it. */
  outputKilled: boolean;
  durationMs: number;
}

/** Grace for pipes to close after the leader has gone and its group was killed. */
const CLOSE_GRACE_MS = 500;

export function launch(spec: LaunchSpec): Promise<LaunchOutcome> {
  return new Promise((resolve, reject) => {
    const stdio: ("pipe" | "ignore")[] = [spec.stdin ? "pipe" : "ignore", "pipe", "pipe"];
    if (spec.fd3 || spec.onFd4) stdio.push(spec.fd3 ? "pipe" : "ignore");
    if (spec.onFd4) stdio.push("pipe");
    const start = performance.now();
    const child = spawn(spec.argv[0], spec.argv.slice(1), {
      env: spec.env,
      cwd: spec.cwd,
      stdio,
      // A group of its own, so that one kill reaches every process that stayed in it.
      detached: true,
    });
    let spawned = false;
    let settled = false;
    let timedOut = false;
    let outputKilled = false;
    let exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
    const outs = [new Capture(spec.maxOutputBytes), new Capture(spec.maxOutputBytes)];

    const killGroup = () => {
      if (child.pid === undefined) return;
      if (!exit) spec.onBeforeKill?.(child.pid);
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {}
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, spec.timeoutMs);
    let graceTimer: NodeJS.Timeout | undefined;

    const finish = () => {
      if (settled || !exit) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(graceTimer);
      resolve({
        code: exit.code,
        signal: exit.signal,
        stdout: outs[0].buffer(),
        stderr: outs[1].buffer(),
        timedOut,
        outputKilled,
        durationMs: performance.now() - start,
      });
    };

    child.on("spawn", () => {
      spawned = true;
    });
    child.on("error", (err) => {
      if (spawned || settled) return;
      settled = true;
      clearTimeout(timer);
      reject(err);
    });

    const streams = child.stdio as (Readable | Writable | null)[];
    [streams[1], streams[2]].forEach((s, i) => {
      (s as Readable).on("data", (chunk: Buffer) => {
        if (outs[i].push(chunk) && !outputKilled) {
          outputKilled = true;
          killGroup();
        }
      });
    });
    if (spec.onFd4) {
      const onFd4 = spec.onFd4;
      (streams[4] as Readable).on("data", (chunk: Buffer) => onFd4(chunk));
    }
    const feed = (s: Writable | null, data: Buffer | null) => {
      if (!s || !data) return;
      // The tree may exit without reading; that is its business, not an error here.
      s.on("error", () => {});
      s.end(data);
    };
    feed(streams[0] as Writable | null, spec.stdin);
    if (spec.fd3) feed(streams[3] as Writable | null, spec.fd3);

    child.on("exit", (code, signal) => {
      exit = { code, signal };
      if (spec.killGroupOnExit) killGroup();
      graceTimer = setTimeout(() => {
        for (const s of streams) (s as Readable | null)?.destroy();
        finish();
      }, CLOSE_GRACE_MS);
    });
    child.on("close", (code, signal) => {
      exit ??= { code, signal };
      finish();
    });
  });
}

/** Keeps the first `max` bytes; push returns true once more than that arrived. */
class Capture {
  private chunks: Buffer[] = [];
  private kept = 0;
  overflow = false;

  constructor(private readonly max: number) {}

  push(chunk: Buffer): boolean {
    const room = this.max - this.kept;
    if (chunk.length > room) {
      if (room > 0) this.chunks.push(chunk.subarray(0, room));
      this.kept = this.max;
      this.overflow = true;
      return true;
    }
    this.chunks.push(chunk);
    this.kept += chunk.length;
    return false;
  }

  buffer(): Buffer {
    return Buffer.concat(this.chunks);
  }
}
