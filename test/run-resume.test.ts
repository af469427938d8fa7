import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { loadOrComputeFactors } from "../src/materialise/index.ts";
import { encodeGenome, seedGenome } from "../src/qd/index.ts";
import { readReportData, reportHtml } from "../src/report/index.ts";
import { createPoolEvaluator, RunStore, run, validateConfig } from "../src/run/index.ts";
import { evaluatorSetup } from "../src/run/model-evaluator.ts";
import { Rng } from "../src/util/rng.ts";
import {
  describeKill,
  expectedAfterKill,
  type KillPoint,
  type KillReport,
  killPlan,
} from "./helpers/kill-plan.ts";
import { type Exit, runProcess } from "./helpers/spawn.ts";
import { dumpRun, tinyConfig, writeConfig, writeTinyZoo } from "./run-fixtures.ts";

let dir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "cycleqd-resume-"));
  await writeTinyZoo(dir);
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function exited(p: ChildProcess): Promise<number | null> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve(p.exitCode);
  return new Promise((r) => p.once("exit", (code) => r(code)));
}

/**
 * One run or resume in a subprocess (test/helpers/kill-run.ts) that kills itself with
 * SIGKILL at `spec.kill`. `marker` goes into its environment, which its workers inherit.
 */
function session(spec: Record<string, unknown>, marker: string): Promise<Exit> {
  return runProcess(
    process.execPath,
    ["--import", "tsx", "test/helpers/kill-run.ts", JSON.stringify(spec)],
    { env: { ...process.env, CYCLEQD_KILL_TEST: marker } },
  );
}

function lastLine(s: Exit): unknown {
  const lines = s.stdout.trim().split("\n");
  try {
    return JSON.parse(lines[lines.length - 1]);
  } catch {
    assert.fail(`no report on stdout (exit ${s.code}, ${s.signal}):\n${s.stdout}\n${s.stderr}`);
  }
}

/** Live processes whose environment carries `marker` (a session's and its workers'). */
async function markedProcesses(marker: string): Promise<string[]> {
  const out: string[] = [];
  for (const pid of await readdir("/proc").catch(() => [])) {
    if (!/^\d+$/.test(pid)) continue;
    const env = await readFile(`/proc/${pid}/environ`, "utf8").catch(() => "");
    if (!env.split("\0").includes(`CYCLEQD_KILL_TEST=${marker}`)) continue;
    const cmd = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
    out.push(`${pid} ${cmd.replaceAll("\0", " ")}`);
  }
  return out;
}

type Dump = Awaited<ReturnType<typeof dumpRun>>;

/**
 * Runs `plan` against a run in `out`: a subprocess per kill point, each started as a new run
 * (the first) or a resume, each killing itself with SIGKILL at its point; then a last resume
 * that must finish the run. After every kill it checks that the kill happened where planned
 * and that the store holds exactly what the point implies (`expectedAfterKill`): the children
 * committed before are all there and unchanged, the new ones are the ones the point allows
 * and as many as it says, commits are numbered 1..n without gaps, no child twice, and no
 * process of the killed session outlives it. With `ref` (one worker) the committed children
 * must moreover be the first n of the uninterrupted run, record for record.
 */
async function killAndResume(opts: {
  out: string;
  config: Record<string, unknown>;
  plan: KillPoint[];
  ref?: Dump;
  log: (msg: string) => void;
}): Promise<Dump> {
  const { out, plan, ref } = opts;
  const generations = opts.config.generations as number;
  const workers = opts.config.workers as number;
  const marker = `${process.pid}-${out}`;
  const seen = new Map<number, Dump["children"][number]>();
  let before: number[] = [];
  for (const [i, kill] of [...plan, null].entries()) {
    const fresh = !(await stat(join(out, "run.db")).catch(() => null));
    assert.equal(fresh, i === 0, "only the first session starts the run");
    const s = await session(
      fresh ? { out, kill, config: opts.config, baseDir: dir } : { out, kill },
      marker,
    );
    if (!kill) {
      assert.equal(s.code, 0, `the last resume finishes the run:\n${s.stderr}`);
      assert.deepEqual(lastLine(s), { done: "finished" });
      break;
    }
    const what = `kill ${i + 1} (${describeKill(kill)})`;
    assert.equal(s.signal, "SIGKILL", `${what} did not happen: exit ${s.code}\n${s.stderr}`);
    const report = lastLine(s) as KillReport;
    assert.deepEqual(report.kill, kill, `${what} is the kill that happened`);
    const exp = expectedAfterKill(kill, before, generations, workers);
    const d = await dumpRun(out);
    const index = d.children.map((c) => c.index);
    opts.log(
      `${what}${report.index ? ` at child ${report.index}` : ""}${report.sawModel === false ? " (result before its model was seen)" : ""}: committed [${index.join(", ")}]`,
    );

    // The kill landed where the plan says, on the run's state the plan implies.
    if (exp.index !== undefined) assert.equal(report.index, exp.index, `${what}: the child`);
    if (exp.indexAmong) assert.ok(exp.indexAmong.includes(report.index as number), what);
    if (kill.at === "commit") assert.ok(index.includes(report.index as number), what);
    const setupDone = kill.at !== "factors" && kill.at !== "seed";
    assert.deepEqual(
      d.seeds.map((x) => x.seed),
      setupDone ? [0, 1, 2] : [],
      `${what}: the seeds`,
    );
    assert.equal(d.ranges !== null, setupDone, `${what}: the archives' ranges`);
    assert.equal(d.status === "finished", false, what);

    // Exactly the children the point implies, nothing lost, nothing twice, no gaps.
    assert.equal(index.length, exp.count, `${what}: how many children are committed`);
    assert.deepEqual(
      d.children.map((c) => c.seq),
      Array.from({ length: index.length }, (_, j) => j + 1),
      `${what}: commits are gap-free`,
    );
    assert.equal(new Set(index).size, index.length, `${what}: no child is recorded twice`);
    for (const b of before) assert.ok(index.includes(b), `${what}: child ${b} was lost`);
    for (const x of index.filter((x) => !before.includes(x)))
      assert.ok(exp.among.includes(x), `${what}: child ${x} cannot be committed yet`);
    for (const x of exp.absent) assert.ok(!index.includes(x), `${what}: child ${x} is committed`);
    for (const c of d.children) {
      const was = seen.get(c.index);
      if (was) assert.deepEqual(c, was, `${what}: child ${c.index} changed`);
      else seen.set(c.index, c);
    }
    if (ref) {
      assert.deepEqual(d.children, ref.children.slice(0, index.length), `${what}: children`);
      if (setupDone) assert.deepEqual(d.seeds, ref.seeds, `${what}: seeds`);
    }

    // Nothing of the killed session lives on (pool workers exit with their parent).
    for (let j = 0; (await markedProcesses(marker)).length > 0; j++) {
      assert.ok(j < 100, `${what}: orphaned processes: ${await markedProcesses(marker)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    before = index;
  }
  const final = await dumpRun(out);
  assert.equal(final.status, "finished");
  for (const [x, c] of seen) {
    assert.deepEqual(
      final.children.find((f) => f.index === x),
      c,
      `child ${x}, committed before a kill, is in the finished run unchanged`,
    );
  }
  return final;
}

test("kill -9 at seeded points, resume: one worker ends equal to an uninterrupted run", async (t) => {
  const config = tinyConfig(dir, { generations: 8 });
  const ref = join(dir, "ref");
  await run(validateConfig(config, dir), { out: ref });
  const want = await dumpRun(ref);

  const plan = killPlan(new Rng(5), { kills: 4, generations: 8, workers: 1, seeds: 3 });
  t.diagnostic(`plan: ${plan.map(describeKill).join("; ")}`);
  const got = await killAndResume({
    out: join(dir, "w1"),
    config,
    plan,
    ref: want,
    log: (m) => t.diagnostic(m),
  });
  assert.deepEqual(
    got.children.map((c) => c.index),
    [1, 2, 3, 4, 5, 6, 7, 8],
  );
  assert.deepEqual(got, want);
  // Its report too: the same page as the uninterrupted run's, timings left out (they are
  // the only thing a kill changes) and the run directory's name aside.
  const page = async (d: string) =>
    reportHtml({ ...(await readReportData(d, { timings: false })), name: "run" });
  assert.equal(await page(join(dir, "w1")), await page(ref));
});

test("kill -9 at seeded points, resume: two workers lose and duplicate nothing", async (t) => {
  const config = tinyConfig(dir, { generations: 10, workers: 2 });
  const plan = killPlan(new Rng(2), { kills: 4, generations: 10, workers: 2, seeds: 3 });
  t.diagnostic(`plan: ${plan.map(describeKill).join("; ")}`);
  const got = await killAndResume({
    out: join(dir, "w2"),
    config,
    plan,
    log: (m) => t.diagnostic(m),
  });
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
