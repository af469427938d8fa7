/**
 * The queue under faults, with real processes and a real Redis: three `cycleqd worker`
 * processes and a coordinator (`cycleqd run --queue`) on the embedded zoo. One worker is
 * killed with SIGKILL in the middle of a job, the coordinator is killed with SIGKILL and
 * resumed, and Redis is restarted (append-only, so the queue survives). Afterwards every
 * child 1..N is in the run store exactly once, with the scores a local evaluation of its
 * genome gives.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, before, test } from "node:test";
import { stringify } from "yaml";
import { createInProcessEvaluator, RunStore } from "../src/run/index.ts";
import { evaluatorSetup } from "../src/run/model-evaluator.ts";
import { runFactors } from "../src/run/seed-factors.ts";
import { startRedis, type TestRedis } from "./helpers/redis.ts";

const N = 30;
const CLI = join(import.meta.dirname, "..", "bin", "cycleqd.js");

let dir: string;
let redis: TestRedis;
const procs: ChildProcess[] = [];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "cycleqd-queue-fault-"));
  redis = await startRedis({ appendonly: true });
});

after(async () => {
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
  await redis.stop();
  await rm(dir, { recursive: true, force: true });
});

interface Proc {
  proc: ChildProcess;
  lines: string[];
  /** Resolves with the first line (from now on) that matches. */
  next(re: RegExp): Promise<string>;
  exit: Promise<number | null>;
}

/** `cycleqd ARGS` in a process of its own, its stdout read line by line. */
function cycleqd(args: string[]): Proc {
  const proc = spawn(process.execPath, [CLI, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  procs.push(proc);
  const lines: string[] = [];
  const waiters: { re: RegExp; resolve: (l: string) => void }[] = [];
  let stderr = "";
  proc.stderr?.on("data", (d) => {
    stderr += d;
  });
  createInterface({ input: proc.stdout as NodeJS.ReadableStream }).on("line", (line) => {
    lines.push(line);
    for (const w of waiters.splice(0)) {
      if (w.re.test(line)) w.resolve(line);
      else waiters.push(w);
    }
  });
  const exit = new Promise<number | null>((r) =>
    proc.on("close", (code) => {
      for (const w of waiters.splice(0))
        w.resolve(`(exited ${code}; stderr: ${stderr.slice(-2000)})`);
      r(code);
    }),
  );
  return {
    proc,
    lines,
    exit,
    next: (re) => new Promise((resolve) => waiters.push({ re, resolve })),
  };
}

/** Waits until the coordinator has committed `n` children (its --json child events). */
async function committed(c: Proc, n: number): Promise<void> {
  const count = () => c.lines.filter((l) => l.startsWith('{"type":"child"')).length;
  while (count() < n) {
    const line = await c.next(/^\{"type":"child"|^\(exited/);
    assert.ok(!line.startsWith("(exited"), `the coordinator ended early: ${line}`);
  }
}

test("queue faults: a worker and the coordinator killed, Redis restarted; every child committed once, as a local evaluation scores it", async (t) => {
  const config = {
    split: { opt: 2, test: 1 },
    generations: N,
    seed: 5,
    cacheDir: join(dir, "factors"),
    // One sequence at a time: the local re-evaluation must give the very same answers.
    engine: { threads: 1, parallel: 1 },
    mutation: { rank: 8, wMax: 0.5 },
    final: { evaluate: false, writeModel: false },
  };
  const cfg = join(dir, "run.yaml");
  await writeFile(cfg, stringify(config));
  const out = join(dir, "run");
  const workerArgs = (i: number) => [
    "worker",
    "--queue",
    redis.url,
    "--cache",
    join(dir, `worker-${i}`),
    "--stall-seconds",
    "4",
  ];
  const workers = [0, 1, 2].map((i) => cycleqd(workerArgs(i)));
  await Promise.all(workers.map((w) => w.next(/taking jobs from/)));

  // The coordinator; once a few children are in, one worker is killed in the middle of a job.
  let coordinator = cycleqd(["run", cfg, "--queue", redis.url, "--out", out, "--json"]);
  await committed(coordinator, 4);
  const victim = workers[0];
  const started = await victim.next(/:opt:\d+ started/);
  victim.proc.kill("SIGKILL");
  const killedJob = /(\S+:opt:(\d+)) started/.exec(started);
  assert.ok(killedJob, started);
  t.diagnostic(`worker 0 killed during ${killedJob[1]}`);

  // The coordinator is killed and resumed.
  await committed(coordinator, 10);
  coordinator.proc.kill("SIGKILL");
  await coordinator.exit;
  coordinator = cycleqd(["resume", out, "--json"]);

  // Redis is restarted while the resumed coordinator and the workers are at work.
  await committed(coordinator, 6);
  await redis.restart();
  t.diagnostic("redis restarted");

  const code = await coordinator.exit;
  assert.equal(code, 0, `resume failed:\n${coordinator.lines.slice(-5).join("\n")}`);

  const status = cycleqd(["status", out]);
  await status.exit;
  assert.match(
    status.lines.join("\n"),
    /Queue redis:\/\/127\.0\.0\.1:\d+: 0 job\(s\) waiting, 0 in flight; 2 worker\(s\) connected/,
  );

  const store = await RunStore.open(out, { readonly: true });
  const children = store.children();
  const runConfig = store.config;
  store.close();
  assert.deepEqual(
    children.map((c) => c.index).sort((a, b) => a - b),
    Array.from({ length: N }, (_, i) => i + 1),
    "every child exactly once",
  );
  const victimChild = children.find((c) => c.index === Number(killedJob[2]));
  assert.ok(
    (victimChild?.attempts ?? 0) >= 2,
    "the killed worker's job was started again elsewhere",
  );

  // Each child's scores equal a local evaluation of its genome.
  const base = runConfig.models.base;
  const experts = runConfig.skills.map((s) => runConfig.models.experts[s]);
  const factors = await runFactors(runConfig, base, experts);
  const local = await createInProcessEvaluator(
    evaluatorSetup(runConfig, join(dir, "tmp"), base, factors.dir),
  );
  try {
    await mkdir(join(dir, "tmp"), { recursive: true });
    for (const c of children) {
      const r = await local.evaluate({
        name: `child-${c.index}`,
        split: "opt",
        target: { kind: "genome", genome: c.genome },
      });
      assert.deepEqual(
        Object.fromEntries(runConfig.skills.map((s) => [s, r.scores[s].score])),
        Object.fromEntries(runConfig.skills.map((s) => [s, c.scores[s].score])),
        `child ${c.index}`,
      );
    }
  } finally {
    await local.close();
    await factors.close();
  }
  for (const w of workers.slice(1)) w.proc.kill("SIGTERM");
  await Promise.all(workers.slice(1).map((w) => w.exit));
});
