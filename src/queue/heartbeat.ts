/**
 * Worker heartbeats: each worker writes its state into one Redis hash every few seconds and
 * after every job, which tells the coordinator how many evaluations can run at once and
 * `cycleqd status` who is connected and how fast each worker goes.
 */
import type { Redis } from "ioredis";
import { keys } from "./job.ts";

/** How often a worker beats; one silent for three beats counts as gone. */
export const BEAT_MS = 2000;
const GONE_MS = 3 * BEAT_MS;

export interface RunTally {
  /** Jobs of the run this worker finished, and their evaluation milliseconds. */
  done: number;
  evalMs: number;
  /** Wall-clock ms (epoch) of its first job's start and last job's end. */
  first: number;
  last: number;
}

export interface WorkerBeat {
  /** `w3@host:pid`. */
  id: string;
  number: number;
  host: string;
  pid: number;
  /** Evaluations it runs at once. */
  concurrency: number;
  startedAt: number;
  seenAt: number;
  /** Jobs in hand now, and finished since it started. */
  busy: number;
  done: number;
  /** Per run id. */
  runs: Record<string, RunTally>;
}

export async function writeBeat(redis: Redis, beat: WorkerBeat): Promise<void> {
  await redis.hset(keys.workers, beat.id, JSON.stringify({ ...beat, seenAt: Date.now() }));
}

export async function removeBeat(redis: Redis, id: string): Promise<void> {
  await redis.hdel(keys.workers, id);
}

/** Workers that beat recently; entries of workers long gone are deleted on the way. */
export async function liveWorkers(redis: Redis): Promise<WorkerBeat[]> {
  const all = await redis.hgetall(keys.workers);
  const now = Date.now();
  const live: WorkerBeat[] = [];
  for (const [id, text] of Object.entries(all)) {
    const beat = JSON.parse(text) as WorkerBeat;
    if (now - beat.seenAt <= GONE_MS) live.push(beat);
    else if (now - beat.seenAt > 100 * GONE_MS) await redis.hdel(keys.workers, id);
  }
  return live.sort((a, b) => a.number - b.number);
}
