/**
 * What travels through the queue: data only. A job names a run, one individual (a child's
 * compact genome, or one of the run's own model files by sha256), the split and the run's
 * config digest; its result is the scores and timings of `ModelEvaluator.evaluate`. Nothing
 * in a job is ever run as code: answers the model writes go to the sandboxed graders only.
 */
import { createHash } from "node:crypto";
import type { EvalJob, EvalResult } from "../run/model-evaluator.ts";

/** The BullMQ queue every coordinator and worker on one Redis shares. */
export const QUEUE_NAME = "cycleqd-eval";

/** Redis keys of cycleqd's own (BullMQ keeps its keys under `bull:`). */
export const keys = {
  /** A run's published inputs and evaluator setup (JSON, `RunSpec`). */
  run: (runId: string) => `cycleqd:run:${runId}`,
  /** A file's bytes, by sha256: content-addressed, shared by runs. */
  blob: (sha256: string) => `cycleqd:blob:${sha256}`,
  /** Worker heartbeats: worker id → JSON `WorkerBeat`. */
  workers: "cycleqd:workers",
  /** Numbers the workers (the store's worker column). */
  workerSeq: "cycleqd:worker-seq",
};

export interface QueueJobData {
  runId: string;
  /** "child-12", "seed-0", "aggregate-test": the runner's job name. */
  name: string;
  split: "opt" | "test";
  /** The run's config digest (`RunSpec.digest`); a worker with another refuses the job. */
  digest: string;
  /** A genome as `encodeGenome` writes it, base64. */
  genome?: string;
  /** Or one of the run's model files, by sha256 (a seed expert). */
  model?: string;
  /** sha256 of the genome bytes or the model: a result is matched to exactly this input. */
  input: string;
}

export interface QueueJobResult {
  result: EvalResult;
  /** The worker's number and id (`w3@host:pid`). */
  worker: number;
  workerId: string;
  /** `QueueJobData.input`, echoed. */
  input: string;
  /** Times the job was started (more than 1 after a worker died holding it). */
  attempts: number;
}

/** A worker's refusal starts with this, so the coordinator can tell it from a crash. */
export const REFUSED = "refused by worker";

/**
 * The deterministic BullMQ job id of an evaluation: `${runId}:${split}:${childIndex}` for
 * child g, the job name for seeds and final models. Adding a job whose id exists returns the
 * existing job, so dispatching a child twice never evaluates it twice.
 */
export function jobId(runId: string, job: Pick<EvalJob, "name" | "split">): string {
  const child = /^child-(\d+)$/.exec(job.name);
  return `${runId}:${job.split}:${child ? child[1] : job.name}`;
}

/** The job's data for an evaluation; `models` maps the run's model files to their sha256. */
export function jobData(
  runId: string,
  digest: string,
  job: EvalJob,
  models: ReadonlyMap<string, string>,
): QueueJobData {
  const base = { runId, name: job.name, split: job.split, digest };
  if (job.target.kind === "genome") {
    const bytes = job.target.genome;
    return { ...base, genome: Buffer.from(bytes).toString("base64"), input: sha256(bytes) };
  }
  const sha = models.get(job.target.path);
  if (!sha) {
    throw new Error(
      `queue: ${job.name} names ${job.target.path}, which is not one of the run's models; remote workers evaluate genomes and the run's own models only`,
    );
  }
  return { ...base, model: sha, input: sha };
}

export function sha256(bytes: Uint8Array | string): string {
  return createHash("sha256").update(bytes).digest("hex");
}
