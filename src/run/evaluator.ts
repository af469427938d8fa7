/**
 * Evaluation behind one interface: the runner hands over a job and gets scores back,
 * whether the model runs in this process, in a pool of worker processes, or on other
 * machines through a queue (src/queue/). Pool workers are child processes that each hold
 * their own engine and skills; a worker that dies is restarted and its job retried.
 */
import { type ChildProcess, fork } from "node:child_process";
import { readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  type EvalJob,
  type EvalResult,
  type EvaluatorSetup,
  ModelEvaluator,
} from "./model-evaluator.ts";

export interface EvalOutcome extends EvalResult {
  /** Which worker slot ran it (0 in process). */
  worker: number;
  /** 1, or more when a worker died during the job and it was retried. */
  attempts: number;
}

export interface Evaluator {
  /** Evaluations that can run at once (read before each dispatch: it may change). */
  readonly concurrency: number;
  /**
   * Its jobs outlive this process (a queue on Redis): the runner records every dispatched
   * child, and a resumed run takes the same children back instead of asking new ones.
   */
  readonly durable?: boolean;
  evaluate(job: EvalJob): Promise<EvalOutcome>;
  close(): Promise<void>;
}

/** One evaluation at a time, in this process. */
export async function createInProcessEvaluator(setup: EvaluatorSetup): Promise<Evaluator> {
  const ev = await ModelEvaluator.create(setup);
  let chain: Promise<unknown> = Promise.resolve();
  return {
    concurrency: 1,
    evaluate(job) {
      const p = chain.then(() => ev.evaluate(job));
      chain = p.catch(() => {});
      return p.then((r) => ({ ...r, worker: 0, attempts: 1 }));
    },
    async close() {
      await chain;
      await ev.close();
    },
  };
}

// ---------------------------------------------------------------- pool

export type WorkerRequest =
  | { type: "init"; setup: EvaluatorSetup }
  | { type: "job"; id: number; job: EvalJob }
  | { type: "close" };

export type WorkerReply =
  | { type: "ready" }
  | { type: "init-error"; message: string }
  | { type: "result"; id: number; result: EvalResult }
  | { type: "error"; id: number; message: string };

interface Pending {
  id: number;
  job: EvalJob;
  attempts: number;
  resolve: (r: EvalOutcome) => void;
  reject: (e: Error) => void;
}

interface Slot {
  index: number;
  proc: ChildProcess;
  ready: boolean;
  pending: Pending | null;
}

export interface PoolOptions {
  /** Tries per job before a crashing job fails the run (default 3). */
  maxAttempts?: number;
}

// From the sources (a checkout, run through tsx) workers load worker.ts through tsx, resolved
// here so they find it wherever the command is run from; the built package runs worker.js.
const FROM_SOURCE = import.meta.url.endsWith(".ts");
const WORKER = fileURLToPath(new URL(FROM_SOURCE ? "./worker.ts" : "./worker.js", import.meta.url));
const WORKER_ARGV = FROM_SOURCE ? ["--import", import.meta.resolve("tsx")] : [];

class PoolEvaluator implements Evaluator {
  private readonly slots: Slot[] = [];
  private readonly queue: Pending[] = [];
  private nextId = 0;
  private closed = false;
  private fatal: Error | null = null;
  private readonly maxAttempts: number;

  constructor(
    private readonly setup: EvaluatorSetup,
    readonly concurrency: number,
    opts: PoolOptions,
  ) {
    this.maxAttempts = opts.maxAttempts ?? 3;
  }

  /** Starts every worker and waits until all have loaded their engine and skills. */
  async start(): Promise<void> {
    const ready = Array.from({ length: this.concurrency }, (_, i) => this.spawn(i));
    try {
      await Promise.all(ready);
    } catch (e) {
      await this.close();
      throw e;
    }
  }

  /** Process ids of the live workers (for monitoring and tests). */
  pids(): number[] {
    return this.slots.map((s) => s.proc.pid).filter((p): p is number => p !== undefined);
  }

  private spawn(index: number): Promise<void> {
    const proc = fork(WORKER, [], {
      execArgv: WORKER_ARGV,
      serialization: "advanced",
      stdio: ["ignore", "pipe", "pipe", "ipc"],
    });
    // Worker output goes to stderr so that the runner's stdout (--json) stays clean.
    proc.stdout?.pipe(process.stderr, { end: false });
    proc.stderr?.pipe(process.stderr, { end: false });
    const slot: Slot = { index, proc, ready: false, pending: null };
    this.slots[index] = slot;
    return new Promise<void>((resolve, reject) => {
      proc.on("message", (msg: WorkerReply) => {
        switch (msg.type) {
          case "ready":
            slot.ready = true;
            resolve();
            this.pump();
            break;
          case "init-error":
            reject(new Error(msg.message));
            this.fail(new Error(msg.message));
            break;
          case "result":
          case "error": {
            const p = slot.pending;
            slot.pending = null;
            if (p && p.id === msg.id) {
              if (msg.type === "result") {
                p.resolve({ ...msg.result, worker: index, attempts: p.attempts });
              } else p.reject(new Error(msg.message));
            }
            this.pump();
            break;
          }
        }
      });
      proc.on("error", (e) => {
        if (!slot.ready) reject(e);
      });
      proc.on("exit", (code, signal) => {
        if (this.closed || this.slots[index] !== slot) return;
        const why = signal ? `signal ${signal}` : `exit code ${code}`;
        if (!slot.ready) {
          const e = new Error(`evaluation worker ${index} died while starting (${why})`);
          reject(e);
          this.fail(e);
          return;
        }
        // The dead worker's temporary model is nobody's now.
        removeTemporaries(this.setup.tmpDir, proc.pid);
        const p = slot.pending;
        if (p) {
          if (p.attempts >= this.maxAttempts) {
            p.reject(
              new Error(
                `evaluating ${p.job.name} killed its worker ${p.attempts} times (last: ${why})`,
              ),
            );
          } else {
            p.attempts++;
            this.queue.unshift(p);
          }
        }
        // A fresh worker takes the slot; its job waits in the queue until it is ready.
        this.spawn(index).catch(() => {});
      });
      proc.send({ type: "init", setup: this.setup } satisfies WorkerRequest);
    });
  }

  evaluate(job: EvalJob): Promise<EvalOutcome> {
    if (this.fatal) return Promise.reject(this.fatal);
    if (this.closed) return Promise.reject(new Error("the evaluator is closed"));
    return new Promise((resolve, reject) => {
      this.queue.push({ id: this.nextId++, job, attempts: 1, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    for (const slot of this.slots) {
      if (!slot?.ready || slot.pending || this.queue.length === 0) continue;
      const p = this.queue.shift() as Pending;
      slot.pending = p;
      slot.proc.send({ type: "job", id: p.id, job: p.job } satisfies WorkerRequest);
    }
  }

  private fail(e: Error): void {
    if (this.fatal) return;
    this.fatal = e;
    for (const p of this.queue.splice(0)) p.reject(e);
    for (const s of this.slots) {
      s?.pending?.reject(e);
      if (s) s.pending = null;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const stopped = new Error("the evaluator was closed");
    for (const p of this.queue.splice(0)) p.reject(stopped);
    await Promise.all(
      this.slots.filter(Boolean).map(
        (s) =>
          new Promise<void>((resolve) => {
            if (s.proc.exitCode !== null || s.proc.signalCode !== null) return resolve();
            const timer = setTimeout(() => s.proc.kill("SIGKILL"), 10_000);
            s.proc.once("exit", () => {
              clearTimeout(timer);
              s.pending?.reject(stopped);
              resolve();
            });
            if (s.proc.connected) s.proc.send({ type: "close" } satisfies WorkerRequest);
            else s.proc.kill("SIGKILL");
          }),
      ),
    );
  }
}

function removeTemporaries(dir: string, pid: number | undefined): void {
  if (pid === undefined) return;
  readdir(dir)
    .then((files) =>
      Promise.all(
        files
          .filter((f) => f.endsWith(`-${pid}.gguf`))
          .map((f) => rm(join(dir, f), { force: true })),
      ),
    )
    .catch(() => {});
}

/** W worker processes, each evaluating one job at a time. */
export async function createPoolEvaluator(
  setup: EvaluatorSetup,
  workers: number,
  opts: PoolOptions = {},
): Promise<Evaluator & { pids(): number[] }> {
  if (!(Number.isInteger(workers) && workers >= 1)) {
    throw new Error(`createPoolEvaluator: workers must be a positive integer, got ${workers}`);
  }
  const pool = new PoolEvaluator(setup, workers, opts);
  await pool.start();
  return pool;
}

/** In process for one worker, a pool of processes for more. */
export function createEvaluator(setup: EvaluatorSetup, workers: number): Promise<Evaluator> {
  return workers === 1 ? createInProcessEvaluator(setup) : createPoolEvaluator(setup, workers);
}
