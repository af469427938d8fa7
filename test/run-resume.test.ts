import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { loadOrComputeFactors } from "../src/materialise/index.ts";
import { encodeGenome, seedGenome } from "../src/qd/index.ts";
import { createPoolEvaluator, RunStore, run, validateConfig } from "../src/run/index.ts";
import { evaluatorSetup } from "../src/run/model-evaluator.ts";
import { Rng } from "../src/util/rng.ts";
import { dumpRun, tinyConfig, writeConfig, writeTinyZoo } from "./run-fixtures.ts";

let dir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "cycleqd-resume-"));
  await writeTinyZoo(dir);
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function cli(args: string[]): ChildProcess {
  return spawn(process.execPath, ["bin/cycleqd.js", ...args, "--quiet"], { stdio: "ignore" });
}

function exited(p: ChildProcess): Promise<number | null> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve(p.exitCode);
  return new Promise((r) => p.once("exit", (code) => r(code)));
}

/** The finished children's indices and commit numbers, read after a kill. */
async function finishedChildren(out: string): Promise<{ index: number[]; seq: number[] } | null> {
  if (!(await stat(join(out, "run.db")).catch(() => null))) return null;
  const store = await RunStore.open(out, { readonly: true });
  try {
    const c = store.children({ withGenomes: false });
    return { index: c.map((x) => x.index), seq: c.map((x) => x.seq) };
  } finally {
    store.close();
  }
}

/** Live processes running the pool's worker module. */
async function workerProcesses(): Promise<number[]> {
  const out: number[] = [];
  for (const pid of await readdir("/proc").catch(() => [])) {
    if (!/^\d+$/.test(pid)) continue;
    const cmd = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
    if (cmd.includes("src/run/worker.ts")) out.push(Number(pid));
  }
  return out;
}

async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/**
 * Starts the run as a subprocess and kills it with SIGKILL at random moments, resuming
 * each time, then lets the last resume finish. The first kill lands at a random time in
 * start-up or the seeds' evaluation; each later one once 1–3 more children have finished,
 * plus a random part of an evaluation. After every kill the finished children must be
 * distinct, committed 1..n without gaps, and never fewer than before.
 */
async function killAndResume(
  out: string,
  cfgPath: string,
  kills: number,
  seed: number,
  log: (msg: string) => void,
) {
  const rng = new Rng(seed);
  let before = 0;
  let killed = 0;
  for (let i = 0; i <= kills; i++) {
    const started = await stat(join(out, "run.db")).catch(() => null);
    const p = started ? cli(["resume", out]) : cli(["run", cfgPath, "--out", out]);
    if (i < kills) {
      if (i === 0) await Promise.race([sleep(500 + rng.uniform() * 3000), exited(p)]);
      else {
        const want = before + 1 + rng.int(3);
        while (p.exitCode === null && ((await finishedChildren(out))?.index.length ?? 0) < want) {
          await sleep(50);
        }
        await Promise.race([sleep(rng.uniform() * 800), exited(p)]);
      }
      p.kill("SIGKILL");
      const code = await exited(p);
      if (p.signalCode === "SIGKILL") killed++;
      else assert.equal(code, 0, "a run that was not killed finishes");
    } else {
      assert.equal(await exited(p), 0, "the last resume finishes the run");
    }
    const f = await finishedChildren(out);
    log(`${i < kills ? "killed" : "finished"}: ${f ? f.index.length : "no run yet"} children`);
    if (!f) continue;
    const n = f.index.length;
    assert.equal(new Set(f.index).size, n, "no child is recorded twice");
    assert.deepEqual(
      f.seq,
      Array.from({ length: n }, (_, j) => j + 1),
      "commits are gap-free",
    );
    assert.ok(n >= before, "no finished child is lost");
    before = n;
  }
  return killed;
}

test("kill -9 at random moments, resume: one worker ends equal to an uninterrupted run", async (t) => {
  const cfg = tinyConfig(dir, { generations: 8 });
  const ref = join(dir, "ref");
  await run(validateConfig(cfg, dir), { out: ref });

  const cfgPath = join(dir, "w1.yaml");
  await writeConfig(cfgPath, cfg);
  const out = join(dir, "w1");
  const killed = await killAndResume(out, cfgPath, 3, 11, (m) => t.diagnostic(m));
  assert.ok(killed >= 2, `the run was killed ${killed} times`);
  const got = await dumpRun(out);
  assert.deepEqual(
    got.children.map((c) => c.index),
    [1, 2, 3, 4, 5, 6, 7, 8],
  );
  assert.deepEqual(got, await dumpRun(ref));
});

test("kill -9 at random moments, resume: two workers lose and duplicate nothing", async (t) => {
  const cfgPath = join(dir, "w2.yaml");
  await writeConfig(cfgPath, tinyConfig(dir, { generations: 10, workers: 2 }));
  const out = join(dir, "w2");
  const killed = await killAndResume(out, cfgPath, 3, 23, (m) => t.diagnostic(m));
  assert.ok(killed >= 2, `the run was killed ${killed} times`);
  const got = await dumpRun(out);
  assert.equal(got.status, "finished");
  assert.deepEqual(
    got.children.map((c) => c.index).sort((a, b) => a - b),
    Array.from({ length: 10 }, (_, i) => i + 1),
  );
  assert.deepEqual(
    got.children.map((c) => c.seq),
    Array.from({ length: 10 }, (_, i) => i + 1),
  );
  for (const c of got.children) assert.equal(c.id, 3 + c.index - 1);
  assert.deepEqual(
    got.finals.map((f) => f.name),
    ["aggregate", "best-mean"],
  );
  // Workers of killed runs exit with their parent.
  for (let i = 0; (await workerProcesses()).length > 0; i++) {
    assert.ok(i < 50, `orphaned workers: ${await workerProcesses()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
});

test("Ctrl-C stops after the evaluation in flight and leaves a resumable run", async () => {
  const cfgPath = join(dir, "sigint.yaml");
  await writeConfig(cfgPath, tinyConfig(dir, { generations: 100 }));
  const out = join(dir, "sigint");
  const p = spawn(process.execPath, ["bin/cycleqd.js", "run", cfgPath, "--out", out], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  p.stdout?.on("data", (d) => {
    stdout += d;
  });
  for (let i = 0; !/\[\s*2\/100\]/.test(stdout); i++) {
    assert.ok(i < 600, `no progress: ${stdout}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  p.kill("SIGINT");
  assert.equal(await exited(p), 130);
  assert.match(
    stdout,
    /Stopped \(interrupted\) at \d+\/100 children; continue with cycleqd resume/,
  );
  const store = await RunStore.open(out, { readonly: true });
  try {
    assert.equal(store.status, "interrupted");
    assert.equal(store.lockInfo(), null, "the lock is released");
    assert.ok(store.childCount() >= 2);
  } finally {
    store.close();
  }
});

test("a pool worker that dies mid-job is replaced and the job retried", async () => {
  const cfg = validateConfig(tinyConfig(dir), dir);
  const factors = await loadOrComputeFactors(
    cfg.models.base,
    cfg.skills.map((s) => cfg.models.experts[s]),
    cfg.cacheDir as string,
    { rank: 8 },
  );
  const tmp = join(dir, "pool-tmp");
  await mkdir(tmp, { recursive: true });
  const pool = await createPoolEvaluator(evaluatorSetup(cfg, tmp, cfg.models.base, factors.dir), 1);
  try {
    const job = {
      name: "seed-genome",
      target: {
        kind: "genome" as const,
        genome: encodeGenome(seedGenome(factors.layout, 1), factors.layout),
      },
      split: "opt" as const,
    };
    const [pid] = pool.pids();
    const pending = pool.evaluate(job);
    // The worker is mid-job once its temporary model exists.
    for (let i = 0; !(await readdir(tmp)).some((f) => f.endsWith(`-${pid}.gguf`)); i++) {
      assert.ok(i < 500, "the job never started");
      await new Promise((r) => setTimeout(r, 10));
    }
    process.kill(pid, "SIGKILL");
    const retried = await pending;
    assert.equal(retried.attempts, 2);
    assert.notEqual(pool.pids()[0], pid);
    const again = await pool.evaluate(job);
    assert.equal(again.attempts, 1);
    assert.deepEqual(retried.scores, again.scores);
    // Likelihoods are opt-in: by default only pass rates are measured.
    for (const v of Object.values(again.scores)) assert.ok(Number.isNaN(v.meanLogLikelihood));
    assert.deepEqual(await readdir(tmp), [], "temporary models are deleted");
  } finally {
    await pool.close();
    await factors.close();
  }
});
