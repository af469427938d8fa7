/**
 * A queue worker (`cycleqd worker`): a long-lived process on any machine that takes
 * evaluation jobs from the BullMQ queue, rebuilds the child from its genome and scores it
 * with the same evaluator as a local run (`createEvaluator`: `ModelEvaluator` in process, or a
 * pool of worker processes for --concurrency > 1), with the same sandboxed graders.
 *
 * Before it evaluates anything for a run it checks that its versions and the run's agree
 * and that every input it fetched has the run's sha256; if not, it refuses the job with
 * the reason, which the coordinator reports. A worker killed mid-job loses nothing: BullMQ
 * sees the job's lock expire and hands the job to another worker.
 */
import { hostname } from "node:os";
import { type Job, UnrecoverableError, Worker } from "bullmq";
import { createEvaluator, type Evaluator } from "../run/evaluator.ts";
import type { EvalTarget } from "../run/model-evaluator.ts";
import { connectRedis } from "./connect.ts";
import { BEAT_MS, removeBeat, type WorkerBeat, writeBeat } from "./heartbeat.ts";
import { InputCache, Refusal } from "./inputs-cache.ts";
import {
  keys,
  QUEUE_NAME,
  type QueueJobData,
  type QueueJobResult,
  REFUSED,
  sha256,
} from "./job.ts";
import { localVersions, type RunSpec, readRunSpec, specDigest } from "./run-spec.ts";
import { type QueueUrl, redisOptions } from "./url.ts";

export interface QueueWorkerOptions {
  url: QueueUrl;
  /** Evaluations at once (1: in this process; more: a pool of processes). */
  concurrency: number;
  /** The content-addressed input cache. */
  cacheDir: string;
  /**
   * Seconds a job's lock lasts without renewal: how long the job of a worker that died
   * waits before another worker takes it (default 30).
   */
  stallSeconds?: number;
  /** One line per event (default stdout). */
  log?: (line: string) => void;
}

export interface QueueWorker {
  /** `w3@host:pid`. */
  readonly id: string;
  /** Stops taking jobs, finishes those in hand, and disconnects. */
  close(): Promise<void>;
}

/** The evaluator of the run whose jobs the worker is taking now. */
interface Current {
  digest: string;
  evaluator: Promise<Evaluator>;
  users: number;
  idle: Promise<void>;
  release: () => void;
}

/** Starts a worker; it runs until `close` (or the process ends). */
export async function startQueueWorker(opts: QueueWorkerOptions): Promise<QueueWorker> {
  const log = opts.log ?? ((line: string) => console.log(line));
  const connection = redisOptions(opts.url);
  const redis = await connectRedis(opts.url);
  const mine = await localVersions();
  const number = await redis.incr(keys.workerSeq);
  const id = `w${number}@${hostname()}:${process.pid}`;
  const cache = new InputCache(opts.cacheDir);
  const specs = new Map<string, RunSpec>();
  const beat: WorkerBeat = {
    id,
    number,
    host: hostname(),
    pid: process.pid,
    concurrency: opts.concurrency,
    startedAt: Date.now(),
    seenAt: Date.now(),
    busy: 0,
    done: 0,
    runs: {},
  };
  const sendBeat = () => writeBeat(redis, beat).catch(() => {});
  let current: Current | null = null;
  let switching: Promise<void> = Promise.resolve();

  /** The run's spec, checked against this worker; a Refusal says what does not match. */
  async function specFor(d: QueueJobData): Promise<RunSpec> {
    let spec = specs.get(d.runId);
    if (!spec || spec.digest !== d.digest) {
      const read = await readRunSpec(redis, d.runId);
      if (!read) {
        throw new Refusal(
          `run ${d.runId} published no inputs on this Redis; resume the run from its coordinator`,
        );
      }
      spec = read;
      specs.set(d.runId, spec);
    }
    const v = spec.versions;
    if (v.cycleqd !== mine.cycleqd || v.nodeLlamaCpp !== mine.nodeLlamaCpp) {
      throw new Refusal(
        `this worker runs cycleqd ${mine.cycleqd} with node-llama-cpp ${mine.nodeLlamaCpp}, but run ${d.runId} was made by cycleqd ${v.cycleqd} with node-llama-cpp ${v.nodeLlamaCpp}; ` +
          "install the coordinator's versions on this worker and start it again",
      );
    }
    if (specDigest(spec) !== spec.digest) {
      throw new Refusal(
        `run ${d.runId}'s published setup does not match its own digest; resume the run to publish it again`,
      );
    }
    if (d.digest !== spec.digest) {
      throw new Refusal(
        `job ${d.name} was made for config digest ${d.digest.slice(0, 12)}, but run ${d.runId} now has ${spec.digest.slice(0, 12)}; the coordinator will send it again`,
      );
    }
    return spec;
  }

  /** Takes a use of the run's evaluator, first closing another run's once it is idle. */
  async function acquire(spec: RunSpec): Promise<Evaluator> {
    const run = async () => {
      if (current && current.digest !== spec.digest) {
        const old = current;
        current = null;
        if (old.users === 0) old.release();
        await old.idle;
        await (await old.evaluator).close();
      }
      if (!current) {
        const setup = await cache.setupFor(spec, redis);
        let release = () => {};
        const idle = new Promise<void>((r) => {
          release = r;
        });
        const evaluator = createEvaluator(setup, opts.concurrency);
        current = { digest: spec.digest, evaluator, users: 0, idle, release };
        evaluator.catch(() => {
          if (current?.evaluator === evaluator) current = null;
        });
      }
      current.users++;
    };
    switching = switching.then(run, run);
    await switching;
    const c = current as unknown as Current;
    try {
      return await c.evaluator;
    } catch (e) {
      release(c);
      throw e;
    }
  }

  function release(c: Current): void {
    if (--c.users === 0 && current !== c) c.release();
  }

  async function evaluateJob(job: Job<QueueJobData>): Promise<QueueJobResult> {
    const d = job.data;
    beat.busy++;
    void sendBeat();
    const started = Date.now();
    log(`${id}: ${job.id} started (attempt ${job.attemptsStarted})`);
    let used: Current | null = null;
    try {
      const spec = await specFor(d);
      let target: EvalTarget;
      if (d.genome !== undefined) {
        const genome = new Uint8Array(Buffer.from(d.genome, "base64"));
        if (sha256(genome) !== d.input)
          throw new Refusal(`job ${job.id}: the genome's bytes do not match its sha256`);
        target = { kind: "genome", genome };
      } else if (d.model !== undefined) {
        target = { kind: "file", path: await cache.model(spec, d.model, redis) };
      } else throw new Refusal(`job ${job.id} carries neither a genome nor a model`);
      const evaluator = await acquire(spec);
      used = current;
      const {
        worker: _w,
        attempts: _a,
        ...result
      } = await evaluator.evaluate({
        name: d.name,
        target,
        split: d.split,
      });
      const tally = beat.runs[d.runId] ?? { done: 0, evalMs: 0, first: started, last: 0 };
      beat.runs[d.runId] = tally;
      tally.done++;
      tally.evalMs += result.timings.evaluate;
      tally.last = Date.now();
      beat.done++;
      log(`${id}: ${job.id} done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      return {
        result,
        worker: number,
        workerId: id,
        input: d.input,
        attempts: job.attemptsStarted,
      };
    } catch (e) {
      const why = (e as Error).message;
      log(`${id}: ${job.id} ${e instanceof Refusal ? "refused" : "failed"}: ${why}`);
      // Neither is retried: a refusal or a failing evaluation would only repeat.
      throw new UnrecoverableError(
        e instanceof Refusal
          ? `${REFUSED} ${id}: ${why}`
          : `worker ${id} failed evaluating ${d.name}: ${why}`,
      );
    } finally {
      if (used) release(used);
      beat.busy--;
      void sendBeat();
    }
  }

  const lockDuration = (opts.stallSeconds ?? 30) * 1000;
  const worker = new Worker<QueueJobData, QueueJobResult>(QUEUE_NAME, evaluateJob, {
    connection,
    concurrency: opts.concurrency,
    name: id,
    lockDuration,
    stalledInterval: lockDuration,
    // A job whose worker died is handed on; only a job that kills worker after worker fails.
    maxStalledCount: 5,
    autorun: false,
  });
  worker.on("error", (e) => log(`${id}: queue connection: ${e.message}`));
  await sendBeat();
  const beating = setInterval(() => void sendBeat(), BEAT_MS);
  void worker.run();
  await worker.waitUntilReady();
  log(
    `${id}: taking jobs from ${opts.url.display} (concurrency ${opts.concurrency}, cache ${opts.cacheDir})`,
  );
  return {
    id,
    async close() {
      await worker.close();
      clearInterval(beating);
      const c = current as Current | null;
      if (c) await (await c.evaluator.catch(() => null))?.close();
      await removeBeat(redis, id).catch(() => {});
      redis.disconnect();
    },
  };
}
