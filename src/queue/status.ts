/**
 * What `cycleqd status RUN` shows of a queue run: the workers connected, the run's jobs in
 * flight, and each worker's throughput on this run. Read-only; an unreachable Redis is
 * reported, not waited for.
 */
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { liveWorkers } from "./heartbeat.ts";
import { QUEUE_NAME } from "./job.ts";
import { type QueueUrl, redisOptions } from "./url.ts";

export interface QueueStatus {
  url: string;
  /** Why Redis could not be read, or null. */
  error: string | null;
  /** The run's jobs waiting for a worker and being evaluated now. */
  waiting: number;
  active: number;
  workers: {
    id: string;
    concurrency: number;
    /** Jobs in hand now (of any run). */
    busy: number;
    /** This run's jobs it finished, children per minute from its first to its last. */
    done: number;
    perMinute: number | null;
    /** Mean evaluation seconds per job of this run. */
    meanEvalSeconds: number | null;
  }[];
}

/** The queue side of run `runId` on the Redis at `url`. */
export async function queueStatus(url: QueueUrl, runId: string): Promise<QueueStatus> {
  const out: QueueStatus = { url: url.display, error: null, waiting: 0, active: 0, workers: [] };
  const options = { ...redisOptions(url), maxRetriesPerRequest: 1, retryStrategy: () => null };
  const redis = new Redis({ ...options, lazyConnect: true, connectTimeout: 3000 });
  let queue: Queue | undefined;
  try {
    await redis.connect();
    out.workers = (await liveWorkers(redis)).map((w) => {
      const t = w.runs[runId];
      const minutes = t ? (t.last - t.first) / 60_000 : 0;
      return {
        id: w.id,
        concurrency: w.concurrency,
        busy: w.busy,
        done: t?.done ?? 0,
        perMinute: t && minutes > 0 ? t.done / minutes : null,
        meanEvalSeconds: t?.done ? t.evalMs / t.done / 1000 : null,
      };
    });
    queue = new Queue(QUEUE_NAME, { connection: redis });
    const mine = (jobs: { id?: string }[]) =>
      jobs.filter((j) => j?.id?.startsWith(`${runId}:`)).length;
    out.waiting = mine(await queue.getJobs(["waiting", "prioritized", "delayed"]));
    out.active = mine(await queue.getJobs(["active"]));
  } catch (e) {
    out.error = (e as Error).message;
  } finally {
    await queue?.close().catch(() => {});
    redis.disconnect();
  }
  return out;
}
