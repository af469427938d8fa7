/**
 * The coordinator's side of the queue: an `Evaluator` (the runner's one interface to
 * evaluation) whose jobs are BullMQ jobs on Redis, taken by `cycleqd worker` processes on any
 * machine. Job ids are deterministic, so a job dispatched again (a resumed coordinator, a
 * retry) is the same job; a result is handed over once, to whoever waits for that id, and a
 * result nobody waits for is ignored. Completion arrives through BullMQ's queue events; a
 * periodic sweep reads the jobs' states as well, so an event lost in a Redis restart cannot
 * leave the run waiting.
 */

import { Job, Queue, QueueEvents } from "bullmq";
import type { Redis as RedisClient } from "ioredis";
import type { EvalOutcome, Evaluator } from "../run/evaluator.ts";
import type { EvalJob, EvalResult, EvaluatorSetup } from "../run/model-evaluator.ts";
import type { Scores } from "../run/store.ts";
import { connectRedis } from "./connect.ts";
import { liveWorkers } from "./heartbeat.ts";
import { jobData, jobId, QUEUE_NAME, type QueueJobData, type QueueJobResult } from "./job.ts";
import { publishRun, type RunSpec } from "./run-spec.ts";
import { type QueueUrl, redisOptions } from "./url.ts";

export interface QueueEvaluatorOptions {
  url: QueueUrl;
  /** The run's queue id (kept in the run store, so that a resumed run finds its jobs). */
  runId: string;
  setup: EvaluatorSetup;
  /** The seed experts' GGUF paths, in skill order (jobs name them by sha256). */
  experts: readonly string[];
  /** Input files up to this size go into Redis (default PUBLISH_MAX_BYTES, 256 MiB). */
  publishMaxBytes?: number;
  /** How often job states and workers are read besides the events (default 2000 ms). */
  sweepMs?: number;
  /** Where warnings go (default stderr). */
  log?: (line: string) => void;
}

interface Waiter {
  data: QueueJobData;
  sentAt: number;
  promise: Promise<EvalOutcome>;
  resolve: (r: EvalOutcome) => void;
  reject: (e: Error) => void;
}

/** Round trips seen by the coordinator (for bench:queue). */
export interface QueueStats {
  jobs: number;
  /** Dispatch to result, summed over jobs, ms. */
  roundTripMs: number;
  /** The workers' own evaluation time, summed, ms. */
  evaluateMs: number;
}

export class QueueEvaluator implements Evaluator {
  /** Jobs outlive this process: the runner records each dispatched child to take it back. */
  readonly durable = true;
  readonly stats: QueueStats = { jobs: 0, roundTripMs: 0, evaluateMs: 0 };
  private readonly waiting = new Map<string, Waiter>();
  private slots = 0;
  private sweeping: NodeJS.Timeout | undefined;
  private lonelySince: number | null = null;
  private closed = false;
  private readonly log: (line: string) => void;

  private constructor(
    private readonly opts: QueueEvaluatorOptions,
    readonly spec: RunSpec,
    private readonly redis: RedisClient,
    private readonly queue: Queue,
    private readonly events: QueueEvents,
    private readonly models: ReadonlyMap<string, string>,
  ) {
    this.log = opts.log ?? ((line) => console.error(line));
  }

  /** Publishes the run's inputs, connects, and counts the workers. */
  static async create(opts: QueueEvaluatorOptions): Promise<QueueEvaluator> {
    const connection = redisOptions(opts.url);
    const redis = await connectRedis(opts.url);
    const spec = await publishRun(
      redis,
      opts.runId,
      opts.setup,
      opts.experts,
      opts.publishMaxBytes,
    );
    const models = new Map<string, string>();
    for (const [k, path] of opts.experts.entries()) {
      const f = spec.files.find((x) => x.role === `expert:${k}`);
      if (f) models.set(path, f.sha256);
    }
    const queue = new Queue(QUEUE_NAME, { connection });
    const events = new QueueEvents(QUEUE_NAME, { connection });
    await events.waitUntilReady();
    const ev = new QueueEvaluator(opts, spec, redis, queue, events, models);
    events.on("completed", ({ jobId: id, returnvalue }) => {
      const rv = typeof returnvalue === "string" ? JSON.parse(returnvalue) : returnvalue;
      ev.settle(id, rv as QueueJobResult);
    });
    events.on("failed", ({ jobId: id, failedReason }) => ev.fail(id, failedReason));
    await ev.sweep();
    ev.sweeping = setInterval(() => void ev.sweep(), opts.sweepMs ?? 2000);
    return ev;
  }

  /** Evaluations that can run at once: the connected workers' slots (at least 1). */
  get concurrency(): number {
    return Math.max(1, this.slots);
  }

  evaluate(job: EvalJob): Promise<EvalOutcome> {
    if (this.closed) return Promise.reject(new Error("the evaluator is closed"));
    const id = jobId(this.opts.runId, job);
    const same = this.waiting.get(id);
    if (same) return same.promise;
    let data: QueueJobData;
    try {
      data = jobData(this.opts.runId, this.spec.digest, job, this.models);
    } catch (e) {
      return Promise.reject(e);
    }
    const w = { data, sentAt: performance.now() } as Waiter;
    w.promise = new Promise<EvalOutcome>((resolve, reject) => {
      w.resolve = resolve;
      w.reject = reject;
    });
    this.waiting.set(id, w);
    this.dispatch(id, data).catch((e: Error) =>
      this.fail(id, `dispatching ${job.name}: ${e.message}`),
    );
    return w.promise;
  }

  /**
   * Adds the job, unless the queue holds it already: a finished one (of a coordinator that
   * was killed) is taken back as it is; a failed one, or one for other inputs, is replaced.
   */
  private async dispatch(id: string, data: QueueJobData): Promise<void> {
    const existing = await Job.fromId<QueueJobData, QueueJobResult>(this.queue, id);
    if (existing) {
      const state = await existing.getState();
      const same = existing.data.input === data.input && existing.data.digest === data.digest;
      if (same && state === "completed") {
        this.settle(id, existing.returnvalue, existing);
        return;
      }
      if (same && state !== "failed") return; // in flight: its result will come
      await existing.remove();
    }
    await this.queue.add(data.name, data, {
      jobId: id,
      // Results are kept a day, for a coordinator that was down while workers finished.
      removeOnComplete: { age: 24 * 3600 },
      removeOnFail: { age: 7 * 24 * 3600 },
    });
  }

  private settle(id: string, rv: QueueJobResult, job?: Job): void {
    const w = this.waiting.get(id);
    if (!w) return; // nobody waits: committed already, or another run's
    if (!rv || rv.input !== w.data.input) {
      this.fail(id, `the result of job ${id} is for other inputs than were sent`);
      return;
    }
    this.waiting.delete(id);
    const result = fromJson(rv.result);
    this.stats.jobs++;
    this.stats.roundTripMs += performance.now() - w.sentAt;
    this.stats.evaluateMs += result.timings.evaluate;
    w.resolve({ ...result, worker: rv.worker, attempts: job?.attemptsStarted ?? rv.attempts ?? 1 });
  }

  private fail(id: string, reason: string): void {
    const w = this.waiting.get(id);
    if (!w) return;
    this.waiting.delete(id);
    w.reject(new Error(reason));
  }

  /** Reads every awaited job's state and the workers: the safety net under the events. */
  private async sweep(): Promise<void> {
    try {
      const workers = await liveWorkers(this.redis);
      this.slots = workers.reduce((n, w) => n + w.concurrency, 0);
      for (const [id, w] of [...this.waiting]) {
        const job = await Job.fromId<QueueJobData, QueueJobResult>(this.queue, id);
        if (!job) {
          // Redis lost it (a restart without persistence): send it again.
          await this.dispatch(id, w.data);
          continue;
        }
        const state = await job.getState();
        if (state === "completed") this.settle(id, job.returnvalue, job);
        else if (state === "failed") this.fail(id, job.failedReason);
      }
      if (workers.length === 0 && this.waiting.size > 0) {
        this.lonelySince ??= Date.now();
        if (Date.now() - this.lonelySince > 15_000) {
          this.log(
            `waiting for workers: none is connected to ${this.opts.url.display}; start one with \`cycleqd worker --queue ${this.opts.url.display}\``,
          );
          this.lonelySince = Date.now();
        }
      } else this.lonelySince = null;
    } catch {
      // Redis is away (restarting, say): the next sweep tries again.
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweeping);
    for (const id of [...this.waiting.keys()]) this.fail(id, "the evaluator was closed");
    await this.events.close().catch(() => {});
    await this.queue.close().catch(() => {});
    this.redis.disconnect();
  }
}

/** Creates the queue evaluator of a run (see `QueueEvaluator`). */
export function createQueueEvaluator(opts: QueueEvaluatorOptions): Promise<QueueEvaluator> {
  return QueueEvaluator.create(opts);
}

/** JSON has no NaN: a likelihood that was not scored travels as null. */
function fromJson(r: EvalResult): EvalResult {
  const scores: Scores = {};
  for (const [k, v] of Object.entries(r.scores)) {
    scores[k] = { score: v.score, meanLogLikelihood: v.meanLogLikelihood ?? Number.NaN };
  }
  return { ...r, scores };
}
