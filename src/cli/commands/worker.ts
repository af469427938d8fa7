import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { parseQueueUrl } from "../../queue/url.ts";
import { startQueueWorker } from "../../queue/worker.ts";
import { type Command, UsageError } from "../command.ts";

function positiveInt(v: unknown, flag: string, def: number): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1)
    throw new UsageError(`${flag} must be a positive integer; got "${v}"`);
  return n;
}

/** The worker's input cache: cycleqd/inputs under $XDG_CACHE_HOME or ~/.cache. */
function defaultCache(): string {
  const xdg = process.env.XDG_CACHE_HOME || join(homedir(), ".cache");
  return join(xdg, "cycleqd", "inputs");
}

export const worker: Command = {
  name: "worker",
  summary: "Evaluate children for runs on other machines, taking jobs from a Redis queue.",
  usage: "--queue redis://HOST:PORT [--concurrency N] [--cache DIR] [--stall-seconds S]",
  help: `
A long-lived evaluation worker for \`cycleqd run CONFIG --queue URL\`, on this machine or any
other. It takes jobs from the BullMQ queue on that Redis, rebuilds each child from its
genome, scores it with the same engine and sandboxed graders as a local run, and returns
the scores. The run's base model, seed experts, seed factors and skill data are fetched
once into a local cache, checked by sha256: from the coordinator's paths where this machine
can read them (a shared filesystem), else from Redis, where the coordinator puts files up
to 256 MiB. A worker whose cycleqd or node-llama-cpp version or inputs differ from the
run's refuses its jobs, and the run stops with the reason. Stop it with Ctrl-C: it
finishes the jobs in hand first; a killed worker's job goes to another worker.

Redis on this machine (127.0.0.1, localhost) needs nothing more. Another machine's Redis
must need a password, given in the URL: redis://:PASSWORD@HOST:6379 (rediss:// for TLS).

Options:
  --queue URL          the Redis that the coordinator uses
  --concurrency N      evaluations at once (default 1; more runs a pool of processes)
  --cache DIR          the input cache (default ~/.cache/cycleqd/inputs)
  --stall-seconds S    how long the job of a worker that died waits before another worker
                       takes it (default 30)`,
  options: {
    queue: { type: "string" },
    concurrency: { type: "string" },
    cache: { type: "string" },
    "stall-seconds": { type: "string" },
  },
  async run(args) {
    if (args.positionals.length) throw new UsageError("takes no arguments besides its options");
    const text = args.values.queue as string | undefined;
    if (!text) throw new UsageError("needs --queue redis://HOST:PORT (the coordinator's Redis)");
    let url: ReturnType<typeof parseQueueUrl>;
    try {
      url = parseQueueUrl(text);
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
    const w = await startQueueWorker({
      url,
      concurrency: positiveInt(args.values.concurrency, "--concurrency", 1),
      cacheDir: resolve((args.values.cache as string | undefined) ?? defaultCache()),
      stallSeconds: positiveInt(args.values["stall-seconds"], "--stall-seconds", 30),
    });
    // The first Ctrl-C (or SIGTERM) finishes the jobs in hand; a second stops at once (the
    // queue hands those jobs to other workers).
    let stopping = false;
    await new Promise<void>((done) => {
      const stop = () => {
        if (stopping) process.exit(130);
        stopping = true;
        console.log(`${w.id}: stopping after the jobs in hand (again to stop now)`);
        done();
      };
      process.on("SIGINT", stop);
      process.on("SIGTERM", stop);
    });
    await w.close();
    return 0;
  },
};
