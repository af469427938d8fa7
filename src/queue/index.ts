/**
 * Evaluation on many machines through BullMQ on Redis: the URL policy, the job format, the
 * run's published inputs, a worker's input cache, worker heartbeats, the coordinator's
 * queue-backed evaluator and the worker.
 */
export { BEAT_MS, liveWorkers, type WorkerBeat } from "./heartbeat.ts";
export { InputCache, Refusal } from "./inputs-cache.ts";
export { jobId, QUEUE_NAME, type QueueJobData, type QueueJobResult, REFUSED } from "./job.ts";
export {
  createQueueEvaluator,
  QueueEvaluator,
  type QueueEvaluatorOptions,
  type QueueStats,
} from "./queue-evaluator.ts";
export { localVersions, publishRun, type RunSpec, readRunSpec, type Versions } from "./run-spec.ts";
export { type QueueStatus, queueStatus } from "./status.ts";
export { isLoopback, parseQueueUrl, type QueueUrl, redisOptions } from "./url.ts";
export { type QueueWorker, type QueueWorkerOptions, startQueueWorker } from "./worker.ts";
