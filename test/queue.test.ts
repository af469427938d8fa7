import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { encodeGenome, seedGenome } from "../src/qd/index.ts";
import {
  createQueueEvaluator,
  liveWorkers,
  parseQueueUrl,
  type QueueWorker,
  readRunSpec,
  startQueueWorker,
} from "../src/queue/index.ts";
import { keys } from "../src/queue/job.ts";
import { specDigest } from "../src/queue/run-spec.ts";
import { ConfigError, type RunConfig, validateConfig } from "../src/run/index.ts";
import { type EvaluatorSetup, evaluatorSetup } from "../src/run/model-evaluator.ts";
import { runFactors } from "../src/run/seed-factors.ts";
import { startRedis, type TestRedis } from "./helpers/redis.ts";
import { tinyConfig, writeTinyZoo } from "./run-fixtures.ts";

// ---------------------------------------------------------------- URL policy

test("queue URL: loopback needs no password, another host does", () => {
  for (const url of ["redis://127.0.0.1:6379", "redis://localhost", "redis://[::1]:7000/2"]) {
    assert.doesNotThrow(() => parseQueueUrl(url), url);
  }
  assert.equal(parseQueueUrl("redis://[::1]:7000/2").db, 2);
  for (const url of [
    "redis://10.0.0.5:6379",
    "redis://queue.example:6379",
    "rediss://user@10.1.1.1",
  ]) {
    assert.throws(() => parseQueueUrl(url), /no password.*redis(s)?:\/\/:PASSWORD@/s, url);
  }
  const q = parseQueueUrl("rediss://worker:s3cret@10.0.0.5:6380/1");
  assert.deepEqual(
    [q.host, q.port, q.db, q.username, q.password, q.tls],
    ["10.0.0.5", 6380, 1, "worker", "s3cret", true],
  );
  assert.ok(!q.display.includes("s3cret") && q.display.includes("***"), q.display);
  assert.equal(parseQueueUrl("redis://:pw@10.0.0.5").username, undefined);
  assert.throws(() => parseQueueUrl("http://127.0.0.1:6379"), /must start with redis:\/\//);
  assert.throws(() => parseQueueUrl("127.0.0.1:6379"), /redis:\/\//);
  assert.throws(() => parseQueueUrl("redis://127.0.0.1/x"), /database number/);
});

test("queue URL: the run config checks queue: with the same rule", () => {
  assert.equal(validateConfig({ queue: "redis://127.0.0.1:6400" }).queue, "redis://127.0.0.1:6400");
  assert.throws(
    () => validateConfig({ queue: "redis://192.168.1.9:6379" }),
    (e) => e instanceof ConfigError && /no password/.test(e.message),
  );
  assert.throws(() => validateConfig({ queue: 6379 }), /queue must be a redis:\/\/ URL/);
});

// ---------------------------------------------------------------- with Redis and a worker

let dir: string;
let redis: TestRedis;
let config: RunConfig;
let setup: EvaluatorSetup;
let experts: string[];
let worker: QueueWorker | undefined;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "cycleqd-queue-"));
  await writeTinyZoo(dir);
  redis = await startRedis();
  config = validateConfig(tinyConfig(dir, { split: { opt: 2, test: 1 } }), dir);
  experts = config.skills.map((s) => config.models.experts[s]);
  const factors = await runFactors(config, config.models.base, experts);
  await factors.close();
  setup = evaluatorSetup(config, join(dir, "tmp"), config.models.base, factors.dir);
});

after(async () => {
  await worker?.close();
  await redis.stop();
  await rm(dir, { recursive: true, force: true });
});

const quiet = () => {};

/** A child-like genome job: the seed genome of expert k, encoded. */
function genomeJob(
  name: string,
  k: number,
  layoutOf: { layout: Parameters<typeof seedGenome>[0] },
) {
  const genome = encodeGenome(seedGenome(layoutOf.layout, k), layoutOf.layout);
  return { name, split: "opt" as const, target: { kind: "genome" as const, genome } };
}

async function layout() {
  const f = await runFactors(config, config.models.base, experts);
  try {
    return { layout: f.layout };
  } finally {
    await f.close();
  }
}

test("queue: a child dispatched twice, by one coordinator and by a resumed one, is evaluated once", async () => {
  worker = await startQueueWorker({
    url: parseQueueUrl(redis.url),
    concurrency: 1,
    cacheDir: join(dir, "worker-cache"),
    log: quiet,
  });
  const url = parseQueueUrl(redis.url);
  const job = genomeJob("child-1", 0, await layout());
  const first = await createQueueEvaluator({ url, runId: "dedup", setup, experts, log: quiet });
  // Twice at once: one job, one promise.
  const [a, b] = await Promise.all([first.evaluate(job), first.evaluate(job)]);
  assert.deepEqual(a, b);
  await first.close();
  // A coordinator that starts again (a resume) dispatches the same child: it gets the
  // finished job's result back without a second evaluation.
  const again = await createQueueEvaluator({ url, runId: "dedup", setup, experts, log: quiet });
  const c = await again.evaluate(job);
  await again.close();
  assert.deepEqual(c.scores, a.scores);
  assert.deepEqual(c.timings, a.timings, "the very same result, not a new evaluation");
  const beat = (await liveWorkers(redis.client)).find((w) => w.id === worker?.id);
  assert.equal(beat?.runs.dedup.done, 1, "the worker evaluated the child once");
  const ids = (await redis.client.keys("bull:cycleqd-eval:dedup:*")).filter(
    (k) => !k.endsWith(":lock"),
  );
  assert.deepEqual(ids, ["bull:cycleqd-eval:dedup:opt:1"]);
  // A seed expert travels as a file the worker fetched into its cache, by sha256.
  const seed = await createQueueEvaluator({ url, runId: "dedup", setup, experts, log: quiet });
  const s = await seed.evaluate({
    name: "seed-1",
    split: "opt",
    target: { kind: "file", path: experts[1] },
  });
  await seed.close();
  assert.deepEqual(Object.keys(s.scores), config.skills);
  await assert.rejects(
    createQueueEvaluator({ url, runId: "dedup", setup, experts, log: quiet }).then(async (ev) => {
      try {
        await ev.evaluate({
          name: "x",
          split: "opt",
          target: { kind: "file", path: "/etc/hosts" },
        });
      } finally {
        await ev.close();
      }
    }),
    /not one of the run's models/,
  );
});

test("queue: a worker refuses a run whose inputs or versions differ, and the coordinator says why", async () => {
  assert.ok(worker, "runs after the first queue test");
  const url = parseQueueUrl(redis.url);
  const job = genomeJob("child-2", 1, await layout());

  // Inputs: nothing travels through Redis, and this machine's base differs from the run's.
  const copy = join(dir, "other-base.gguf");
  await writeFile(copy, Buffer.from("not the run's base model"));
  const moved = { ...setup, basePath: copy };
  const ev = await createQueueEvaluator({
    url,
    runId: "inputs",
    setup: moved,
    experts,
    publishMaxBytes: 0,
    log: quiet,
  });
  await writeFile(copy, Buffer.from("changed after the run published it"));
  await assert.rejects(
    ev.evaluate(job),
    /refused by worker w\d+@.*the base model at .*other-base\.gguf on this machine has sha256 [0-9a-f]{64}, but the run's has [0-9a-f]{64}/,
  );
  await ev.close();

  // Versions: a coordinator of another cycleqd.
  const v = await createQueueEvaluator({ url, runId: "versions", setup, experts, log: quiet });
  const spec = await readRunSpec(redis.client, "versions");
  assert.ok(spec);
  const { digest: _d, ...body } = { ...spec, versions: { ...spec.versions, cycleqd: "0.0.1" } };
  await redis.client.set(
    keys.run("versions"),
    JSON.stringify({ ...body, digest: specDigest(body) }),
  );
  await assert.rejects(
    v.evaluate(job),
    /refused by worker .*this worker runs cycleqd \S+ with node-llama-cpp \S+, but run versions was made by cycleqd 0\.0\.1.*install the coordinator's versions/,
  );
  await v.close();
});
