/**
 * What the queue costs and where the coordinator would saturate. On this machine, with a
 * real redis-server and real `cycleqd worker` processes on the embedded zoo:
 * - queue overhead per child: dispatch to result minus the worker's own evaluation time;
 * - Redis round trips (INFO commandstats) and bytes (INFO stats) per child;
 * - throughput with 1 and 2 workers, against the same children evaluated in process;
 * - the coordinator's own time per child: the run loop (ask, tell, one SQLite transaction)
 *   measured with an instant evaluator, plus the queue client's CPU per child;
 * and from those, on paper, its limit in children per second and how far it is from
 * saturation with 100 and 1,000 GPU workers.
 *
 * `npm run bench:queue [-- CHILDREN]` (default 16 children per measurement)
 */
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import type { Redis } from "ioredis";
import { combineGenomes, encodeGenome, type GenomeLayout, seedGenome } from "../src/qd/index.ts";
import { createQueueEvaluator, parseQueueUrl } from "../src/queue/index.ts";
import { createInProcessEvaluator, type Evaluator, run, validateConfig } from "../src/run/index.ts";
import { type EvalJob, evaluatorSetup } from "../src/run/model-evaluator.ts";
import { runFactors } from "../src/run/seed-factors.ts";
import { Rng } from "../src/util/rng.ts";
import { startRedis } from "../test/helpers/redis.ts";

const M = Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? 16);
const CLI = join(import.meta.dirname, "..", "bin", "cycleqd.js");
const work = await mkdtemp(join(tmpdir(), "cycleqd-bench-queue-"));
const redis = await startRedis();
const url = parseQueueUrl(redis.url);
const f = (x: number, d = 1) => x.toFixed(d);

const config = validateConfig({
  split: { opt: 2, test: 1 },
  engine: { threads: 1, parallel: 1 },
  mutation: { rank: 8, wMax: 0.5 },
  cacheDir: join(work, "factors"),
});
const experts = config.skills.map((s) => config.models.experts[s]);
const factors = await runFactors(config, config.models.base, experts);
const layout = factors.layout;
const tmp = join(work, "tmp");
await mkdir(tmp, { recursive: true });
const setup = evaluatorSetup(config, tmp, config.models.base, factors.dir);

/** M children: random convex mixes of the seeds, as crossover makes them. */
function children(layout: GenomeLayout): EvalJob[] {
  const rng = new Rng(1);
  return Array.from({ length: M }, (_, i) => {
    const w = config.skills.map(() => rng.uniform());
    const sum = w.reduce((a, b) => a + b, 0);
    const g = combineGenomes(w.map((x, k) => [x / sum, seedGenome(layout, k)] as const));
    return {
      name: `child-${i + 1}`,
      split: "opt" as const,
      target: { kind: "genome" as const, genome: encodeGenome(g, layout) },
    };
  });
}

/** Evaluates the jobs keeping `concurrency` in flight; wall seconds. */
async function drive(ev: Evaluator, jobs: EvalJob[]): Promise<number> {
  const t0 = performance.now();
  const queue = [...jobs];
  await Promise.all(
    Array.from({ length: ev.concurrency }, async () => {
      for (let j = queue.shift(); j; j = queue.shift()) await ev.evaluate(j);
    }),
  );
  return (performance.now() - t0) / 1000;
}

async function redisCounters(client: Redis): Promise<{ calls: number; bytes: number }> {
  const cmd = await client.info("commandstats");
  const calls = [...cmd.matchAll(/calls=(\d+)/g)].reduce((s, m) => s + Number(m[1]), 0);
  const stats = await client.info("stats");
  const num = (k: string) => Number(new RegExp(`${k}:(\\d+)`).exec(stats)?.[1] ?? 0);
  return { calls, bytes: num("total_net_input_bytes") + num("total_net_output_bytes") };
}

function startWorker(i: number): Promise<() => Promise<void>> {
  const proc = spawn(
    process.execPath,
    [CLI, "worker", "--queue", redis.url, "--cache", join(work, `w${i}`)],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: proc.stdout as NodeJS.ReadableStream });
    lines.on("line", (l) => {
      if (l.includes("taking jobs"))
        resolve(async () => {
          proc.kill("SIGTERM");
          await new Promise((r) => proc.once("exit", r));
        });
    });
    proc.once("exit", (code) => reject(new Error(`worker ${i} exited (${code})`)));
  });
}

try {
  const jobs = children(layout);
  const genomeBytes = (jobs[0].target as { genome: Uint8Array }).genome.length;
  console.log(
    `bench:queue: ${M} children per measurement on the embedded zoo (opt ${config.split.opt} problems per skill), genome ${genomeBytes} bytes\n`,
  );

  // In process: the baseline a single local worker gives.
  const local = await createInProcessEvaluator(setup);
  await drive(local, jobs.slice(0, 2)); // warm-up
  const localS = await drive(local, jobs);
  await local.close();
  console.log(
    `in process, 1 worker: ${f(M / localS, 2)} children/s (${f((localS / M) * 1000, 0)} ms per child)`,
  );

  const rows: {
    w: number;
    perS: number;
    overheadMs: number;
    calls: number;
    bytes: number;
    cpuMs: number;
  }[] = [];
  const stops: (() => Promise<void>)[] = [];
  for (const w of [1, 2]) {
    while (stops.length < w) stops.push(await startWorker(stops.length));
    const ev = await createQueueEvaluator({
      url,
      runId: `bench-${w}`,
      setup,
      experts,
      log: () => {},
    });
    while (ev.concurrency < w) await new Promise((r) => setTimeout(r, 200));
    // Warm-up: each worker loads its engine and fetches the inputs once.
    await drive(ev, jobs.map((j) => ({ ...j, name: `warm-${j.name}` })).slice(0, 2 * w));
    const before = await redisCounters(redis.client);
    const stats0 = { ...ev.stats };
    const cpu0 = process.cpuUsage();
    const s = await drive(ev, jobs);
    const cpu = process.cpuUsage(cpu0);
    const after = await redisCounters(redis.client);
    const n = ev.stats.jobs - stats0.jobs;
    const overheadMs =
      (ev.stats.roundTripMs - stats0.roundTripMs - (ev.stats.evaluateMs - stats0.evaluateMs)) / n;
    rows.push({
      w,
      perS: M / s,
      overheadMs,
      // The counters' own INFO calls are left out.
      calls: (after.calls - before.calls - 2) / M,
      bytes: (after.bytes - before.bytes) / M,
      cpuMs: (cpu.user + cpu.system) / 1000 / M,
    });
    await ev.close();
  }
  for (const stop of stops) await stop();

  console.log("\nthrough the queue (workers are processes on this machine, Redis on 127.0.0.1):");
  console.log(
    "workers  children/s  vs in process  queue overhead/child  Redis calls/child  bytes/child  coordinator CPU/child",
  );
  for (const r of rows) {
    console.log(
      `${String(r.w).padEnd(7)}  ${f(r.perS, 2).padEnd(10)}  ${f(r.perS / (M / localS), 2).padEnd(13)}  ${`${f(r.overheadMs)} ms`.padEnd(20)}  ${f(r.calls).padEnd(17)}  ${f(r.bytes / 1024)} KiB`.padEnd(
        11,
      ) + `    ${f(r.cpuMs, 2)} ms`,
    );
  }

  // The run loop's own cost per child: ask, tell, metrics, one SQLite transaction (fsync),
  // with an evaluator that answers at once.
  const loopChildren = 200;
  const instant: Evaluator = {
    concurrency: 8,
    async evaluate(job) {
      const h =
        job.name.length +
        (job.target.kind === "genome" ? job.target.genome[job.target.genome.length >> 1] : 0);
      const scores = Object.fromEntries(
        config.skills.map((s, k) => [
          s,
          { score: ((h * (k + 3)) % 11) / 10, meanLogLikelihood: Number.NaN },
        ]),
      );
      const t = { materialise: 0, load: 0, generate: 0, grade: 0, evaluate: 0 };
      return { scores, timings: t, gradingFallbacks: 0, worker: 0, attempts: 1 };
    },
    async close() {},
  };
  let firstChild = 0;
  let lastChild = 0;
  await run(
    { ...config, generations: loopChildren, final: { evaluate: false, writeModel: false } },
    {
      out: join(work, "loop-run"),
      createEvaluator: async () => instant,
      onEvent: (e) => {
        if (e.type !== "child") return;
        if (e.finished === 1) firstChild = performance.now();
        lastChild = performance.now();
      },
    },
  );
  const loopMs = (lastChild - firstChild) / (loopChildren - 1);
  const q = rows[rows.length - 1];
  const perChildMs = loopMs + q.cpuMs;
  const limit = 1000 / perChildMs;
  console.log(
    `\nthe coordinator per child: run loop ${f(loopMs, 2)} ms (ask, tell, commit; ${loopChildren} children, instant evaluator) + queue client CPU ${f(q.cpuMs, 2)} ms = ${f(perChildMs, 2)} ms`,
  );
  console.log(
    `its limit: 1000 / ${f(perChildMs, 2)} = ${f(limit)} children/s (one core; the loop is sequential)`,
  );

  const evalHere = (localS / M) * 1000;
  console.log(
    "\non paper: W workers each taking T seconds per child ask for W / T children/s; the coordinator keeps up while W / T < its limit, so it saturates at W = limit × T.",
  );
  for (const T of [evalHere / 1000, 10, 60]) {
    const label =
      T === evalHere / 1000
        ? `T = ${f(T, 2)} s (the tiny zoo on this CPU)`
        : `T = ${T} s (an 8B model on one GPU, ${T === 10 ? "a short" : "a full"} opt split)`;
    console.log(
      `  ${label}: saturates at W = ${f(limit, 0)} × ${f(T, 2)} = ${f(limit * T, 0)} workers`,
    );
    for (const W of [100, 1000]) {
      const demand = W / T;
      const share = demand / limit;
      const mbps = (demand * q.bytes) / 1e6;
      console.log(
        `    ${String(W).padStart(4)} workers: ${f(demand, 1)} children/s demanded = ${f(share * 100, 0)}% of the limit${share > 1 ? ` (saturated: workers idle ${f((1 - 1 / share) * 100, 0)}% of the time)` : ""}; Redis ${f(demand * q.calls, 0)} calls/s, ${f(mbps, 1)} MB/s at ${f(q.bytes / 1024)} KiB per child`,
      );
    }
  }
  console.log(
    `\nbytes per child grow with the genome (sent once, read once): ${genomeBytes} bytes here; an 8B genome is 0.35 MB at rank 64, 17.5 MB at full rank (about ${f(((17.5e6 * 4) / 3 / 1e6) * 2)} MB per child in base64 both ways).`,
  );
} finally {
  await factors.close();
  await redis.stop();
  await rm(work, { recursive: true, force: true });
}
