import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { cp, mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { exportHfSafetensors } from "../src/llm/export.ts";
import { initParams } from "../src/llm/model.ts";
import { VOCAB_SIZE } from "../src/llm/tokenizer.ts";
import { openFactors } from "../src/materialise/index.ts";
import { childRng, decodeGenome, type GenomeLayout } from "../src/qd/index.ts";
import {
  ConfigError,
  checkInputs,
  defaultConfig,
  type Evaluator,
  parseConfig,
  type RunEvent,
  RunLockedError,
  RunStore,
  resume,
  run,
  runStatus,
  type Scores,
  starterConfig,
  validateConfig,
} from "../src/run/index.ts";
import { openDatabase } from "../src/run/sqlite.ts";
import { gguf, openGguf, writeGguf } from "../src/tensors/gguf.ts";
import { Rng } from "../src/util/rng.ts";
import { type Exit, runNode } from "./helpers/spawn.ts";
import { writeTinyLlamaGguf } from "./helpers/tiny-gguf.ts";
import { dumpRun, SKILLS, tinyConfig, writeConfig, writeTinyZoo } from "./run-fixtures.ts";

let dir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "cycleqd-run-"));
  await writeTinyZoo(dir);
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const problems = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected a ConfigError, got ${e}`);
    return e.message;
  }
  assert.fail("expected the config to be rejected");
};

describe("config", () => {
  test("the starter YAML parses to the defaults", () => {
    assert.deepEqual(parseConfig(starterConfig()), defaultConfig());
    const c = defaultConfig();
    assert.deepEqual(c.skills, ["code", "os", "db"]);
    assert.match(c.models.base, /zoo[/\\]base\.gguf$/);
    assert.equal(c.archive.bins, 15);
    assert.equal(c.mutation.rank, "full");
  });

  test("JSON works and relative model paths follow the config's folder", () => {
    const c = parseConfig(
      JSON.stringify({
        models: { base: "b.gguf", experts: { code: "c.gguf", os: "/abs/o.gguf", db: "d.gguf" } },
      }),
      "/cfg",
    );
    assert.equal(c.models.base, "/cfg/b.gguf");
    assert.equal(c.models.experts.os, "/abs/o.gguf");
  });

  test("each bad field is named with what is allowed", () => {
    const cases: [unknown, RegExp][] = [
      [
        { sampling: { method: "best" } },
        /sampling\.method must be one of "elite", "uniform"; got "best"/,
      ],
      [{ archive: { bins: 0 } }, /archive\.bins must be an integer in 1\.\.1000; got 0/],
      [
        { mutation: { method: "lora" } },
        /mutation\.method must be one of "svd", "gaussian", "none"/,
      ],
      [
        { mutation: { rank: "half" } },
        /mutation\.rank must be "full" or an integer ≥ 1; got "half"/,
      ],
      [{ mutation: { wMax: -1 } }, /mutation\.wMax must be a number ≥ 0; got -1/],
      [{ crossover: { mu: 0 } }, /crossover\.mu must be a non-zero number/],
      [
        { sampling: { alphaLow: 0.9, alphaHigh: 0.8 } },
        /sampling\.alphaHigh must be a number ≥ sampling\.alphaLow/,
      ],
      [
        { skills: ["code", "chess"] },
        /unknown skill "chess"; built-in skills are code, os, db, or load one from files/,
      ],
      [{ skills: ["code"] }, /at least two skills/],
      [{ skills: ["code", "code"] }, /must not repeat/],
      [{ generation: 5 }, /generation is not a field here; allowed: .*generations/],
      [{ workers: 1.5 }, /workers must be an integer in 1\.\.256; got 1\.5/],
      [{ unsafe: "yes" }, /unsafe must be true or false; got "yes"/],
      [
        { archive: { ranges: { code: [1, 0] } } },
        /archive\.ranges\.code must be \[lo, hi\] with lo < hi/,
      ],
      [
        { archive: { ranges: "wide" } },
        /archive\.ranges must be "paper" or a \[lo, hi\] per skill/,
      ],
      [{ models: { experts: { code: "c.gguf" } } }, /lists 1 expert; CycleQD needs at least two/],
      [
        { models: { experts: { code: "c.gguf", os: "o.gguf" } } },
        /models\.experts has no expert for skill "db"/,
      ],
      [
        { skills: ["code", "os"], models: { experts: { code: "c", os: "o", db: "d" } } },
        /models\.experts\.db: "db" is not among skills/,
      ],
      [{ engine: { parallel: 0 } }, /engine\.parallel must be an integer in 1\.\.1024/],
    ];
    for (const [raw, re] of cases)
      assert.match(
        problems(() => validateConfig(raw)),
        re,
      );
    // Every problem at once, not only the first.
    const both = problems(() => validateConfig({ seed: -1, split: { opt: 0 } }));
    assert.match(both, /seed must be an integer ≥ 0; got -1/);
    assert.match(both, /split\.opt must be an integer in 1\.\.100000; got 0/);
    assert.match(
      problems(() => parseConfig("models: [unclosed")),
      /not valid YAML/,
    );
  });
});

describe("input validation", () => {
  const cfg = (experts: Record<string, string>, skills = SKILLS) =>
    validateConfig({ models: { base: "base.gguf", experts }, skills }, dir);
  const zooExperts = { code: "code.gguf", os: "os.gguf", db: "db.gguf" };

  test("accepts the tiny zoo", async () => {
    await checkInputs(cfg(zooExperts));
  });

  test("a missing file, a shape mismatch, a missing tensor and another tokenizer", async () => {
    await assert.rejects(
      checkInputs(cfg({ ...zooExperts, os: "nope.gguf" })),
      /models\.experts\.os: .*nope\.gguf does not exist/,
    );

    await writeTinyLlamaGguf(join(dir, "wide.gguf"), { seed: 3, contextLength: 256, nFf: 48 });
    await assert.rejects(
      checkInputs(cfg({ ...zooExperts, db: "wide.gguf" })),
      /models\.experts\.db .*tensor "blk\.0\.ffn_gate\.weight" has shape \[48, 32\] but \[64, 32\] in the base/,
    );

    const base = await openGguf(join(dir, "base.gguf"));
    const copy = async (name: string, meta: typeof base.metadata, keep: (n: string) => boolean) =>
      writeGguf(
        join(dir, name),
        meta,
        base.tensors
          .filter((t) => keep(t.name))
          .map((t) => ({
            name: t.name,
            dtype: "F32" as const,
            shape: t.shape,
            data: () => base.read(t.name),
          })),
      );
    await copy("short.gguf", base.metadata, (n) => n !== "output.weight");
    const meta = new Map(base.metadata);
    const tokens = [...((meta.get("tokenizer.ggml.tokens")?.value ?? []) as string[])];
    tokens[300] = "§";
    meta.set("tokenizer.ggml.tokens", gguf.arr("string", tokens));
    await copy("othertok.gguf", meta, () => true);
    await base.close();
    await assert.rejects(
      checkInputs(cfg({ ...zooExperts, code: "short.gguf" })),
      /models\.experts\.code .*lacks 1 tensor\(s\) of the base: "output\.weight"/,
    );
    await assert.rejects(
      checkInputs(cfg({ ...zooExperts, os: "othertok.gguf" })),
      /models\.experts\.os .*different tokenizer than the base: metadata tokenizer\.ggml\.tokens differs/,
    );
  });

  test("fewer than two experts, and nothing is created for a bad run", async () => {
    const one = {
      ...defaultConfig(),
      skills: ["code"],
      models: { base: join(dir, "base.gguf"), experts: { code: join(dir, "code.gguf") } },
    };
    await assert.rejects(checkInputs(one), /at least two experts/);
    const out = join(dir, "never");
    await assert.rejects(run(cfg({ ...zooExperts, os: "nope.gguf" }), { out }), /does not exist/);
    await assert.rejects(stat(out), { code: "ENOENT" });
  });
});

describe("a tiny run", () => {
  let first: Awaited<ReturnType<typeof dumpRun>>;
  const events: RunEvent[] = [];

  test("completes, and its store is consistent", async () => {
    const out = join(dir, "run-a");
    // Likelihoods on, to check they are recorded (the search itself only uses pass rates).
    const r = await run(validateConfig(tinyConfig(dir, { likelihood: true }), dir), {
      out,
      onEvent: (e) => events.push(e),
    });
    assert.deepEqual(r, { dir: out, status: "finished", finished: 6, generations: 6 });
    const d = await dumpRun(out);
    first = d;
    assert.equal(d.status, "finished");
    assert.deepEqual(
      d.seeds.map((s) => s.seed),
      [0, 1, 2],
    );
    assert.deepEqual(
      d.children.map((c) => c.index),
      [1, 2, 3, 4, 5, 6],
    );
    assert.deepEqual(
      d.children.map((c) => c.seq),
      [1, 2, 3, 4, 5, 6],
    );
    assert.deepEqual(
      d.children.map((c) => c.id),
      [3, 4, 5, 6, 7, 8],
    );
    assert.deepEqual(
      d.children.map((c) => c.taskName),
      ["code", "os", "db", "code", "os", "db"],
    );
    for (const c of d.children) {
      assert.deepEqual(Object.keys(c.scores), SKILLS);
      for (const s of Object.values(c.scores)) {
        assert.ok(s.score >= 0 && s.score <= 1);
        assert.ok(Number.isFinite(s.meanLogLikelihood) && s.meanLogLikelihood < 0);
      }
      assert.equal(c.outcomes.length, 3);
      assert.equal(c.metrics.length, 3);
      assert.equal(c.mutation.kind, "svd");
      assert.ok(c.mutationR && c.mutationR.length > 0);
    }
    for (const s of d.seeds) {
      for (const v of Object.values(s.scores))
        assert.ok(Number.isFinite(v.meanLogLikelihood) && v.meanLogLikelihood < 0);
    }
    // Every elite is an individual of the run and sits where its scores put it; every
    // recorded outcome, metric and final's source agrees with the recorded scores.
    checkArchives(d, defaultConfig().archive.bins);
    assert.deepEqual(
      d.finals.map((f) => f.name),
      ["aggregate", "best-mean"],
    );
    assert.ok(d.finals[0].scoresOpt && d.finals[0].scoresTest);
    assert.ok((await stat(join(out, "model.gguf"))).size > 0);
    assert.deepEqual(await readdir(out).then((f) => f.filter((x) => x === "tmp")), []);

    const kinds = new Set(events.map((e) => e.type));
    for (const k of ["start", "factors", "seed", "archives", "child", "final", "done"])
      assert.ok(kinds.has(k as RunEvent["type"]), k);
    const child = events.find((e) => e.type === "child");
    assert.ok(
      child && child.type === "child" && child.timings.generate > 0 && child.etaSeconds >= 0,
    );

    const st = await runStatus(out);
    assert.equal(st.status, "finished");
    assert.equal(st.inProgress, false);
    assert.equal(st.finished, 6);
    assert.equal(st.archives.length, 3);
    assert.ok(st.timings && st.timings.overheadShare > 0 && st.timings.overheadShare < 1);
  });

  test("with one worker and a fixed seed, a second run is identical", async () => {
    const out = join(dir, "run-b");
    await run(validateConfig(tinyConfig(dir, { likelihood: true }), dir), { out });
    assert.deepEqual(await dumpRun(out), first);
  });

  test("a finished run resumes to nothing, and status reads it", async () => {
    const r = await resume(join(dir, "run-a"));
    assert.equal(r.status, "finished");
    const cli = await runCli(["status", join(dir, "run-a"), "--json"]);
    assert.equal(cli.code, 0, cli.stderr);
    assert.equal(JSON.parse(cli.stdout).finished, 6);
  });
});

type Dump = Awaited<ReturnType<typeof dumpRun>>;

/**
 * Checks a finished run's archives against its individuals' recorded scores, from first
 * principles (SPEC: MAP-Elites grid per task k, quality = score on k, cells = G equal bins
 * of each other task's score within the paper's ranges, row-major in task order; a newcomer
 * takes an empty cell or replaces a strictly worse incumbent; seeds first, then children in
 * commit order):
 * - the recorded ranges are the paper's (0.85 × weakest seed … 1.15 × strongest, per task);
 * - every seed's and child's recorded outcome in every archive (cell, new-cell / improved /
 *   rejected, incumbent) is what offering it gives; a child's `entered` counts its entries;
 * - each child's recorded metrics are the archives' right after it;
 * - the elites are exactly the best individual of every occupied cell (the earliest on a
 *   tie), with its quality and the commit that put it there;
 * - the finals' sources: the aggregate's are each archive's best elite (quality, then mean,
 *   then id) with softmax weights; best-mean's is the elite with the highest mean score, with its scores.
 */
function checkArchives(d: Dump, bins: number): void {
  const K = SKILLS.length;
  const ranges = d.ranges;
  assert.ok(ranges, "the archives are initialised");
  const vec = (s: Scores) => SKILLS.map((n) => s[n].score);
  const seedScores = d.seeds.map((s) => vec(s.scores));
  for (let j = 0; j < K; j++) {
    const col = seedScores.map((x) => x[j]);
    const lo = Math.min(...col) - 0.15 * Math.abs(Math.min(...col));
    let hi = Math.max(...col) + 0.15 * Math.abs(Math.max(...col));
    if (!(hi > lo)) hi = lo + 1;
    assert.ok(Math.abs(ranges[j][0] - lo) < 1e-12 && Math.abs(ranges[j][1] - hi) < 1e-12);
  }
  const bin = (x: number, [lo, hi]: readonly [number, number]) =>
    Math.min(bins - 1, Math.max(0, Math.floor(((x - lo) / (hi - lo)) * bins)));
  const cellOf = (scores: number[], k: number) => {
    let cell = 0;
    for (let j = 0; j < K; j++) if (j !== k) cell = cell * bins + bin(scores[j], ranges[j]);
    return cell;
  };
  interface Held {
    id: number;
    scores: number[];
    seq: number;
  }
  const archives = SKILLS.map(() => new Map<number, Held>());
  const offer = (ind: Held, recorded: unknown, what: string) => {
    const results = archives.map((cells, k) => {
      const cell = cellOf(ind.scores, k);
      const inc = cells.get(cell);
      if (!inc) {
        cells.set(cell, ind);
        return { outcome: "new-cell", cell };
      }
      if (ind.scores[k] > inc.scores[k]) {
        cells.set(cell, ind);
        return { outcome: "improved", cell, incumbent: inc.id };
      }
      return { outcome: "rejected", cell, incumbent: inc.id };
    });
    assert.deepEqual(recorded, results, `${what}: its outcomes`);
    return results;
  };
  const cells = bins ** (K - 1);
  for (const s of d.seeds)
    offer({ id: s.seed, scores: vec(s.scores), seq: 0 }, s.outcomes, `seed ${s.seed}`);
  for (const c of d.children) {
    const what = `child ${c.index}`;
    const results = offer({ id: c.id, scores: vec(c.scores), seq: c.seq }, c.outcomes, what);
    assert.equal(c.entered, results.filter((r) => r.outcome !== "rejected").length, what);
    archives.forEach((held, k) => {
      const q = [...held.entries()].sort(([a], [b]) => a - b).map(([, e]) => e.scores[k]);
      const m = c.metrics[k];
      assert.equal(m.task, k);
      assert.equal(m.filled, held.size, `${what}: archive ${k} filled`);
      assert.equal(m.cells, cells);
      assert.equal(m.coverage, held.size / cells);
      assert.ok(Math.abs(m.qdScore - q.reduce((a, b) => a + b, 0)) < 1e-9, `${what}: qdScore`);
      assert.equal(m.bestQuality, Math.max(...q), `${what}: archive ${k} best`);
    });
  }
  const elites = archives.flatMap((held, k) =>
    [...held.entries()]
      .sort(([a], [b]) => a - b)
      .map(([cell, e]) => ({ archive: k, cell, id: e.id, quality: e.scores[k], seq: e.seq })),
  );
  assert.deepEqual(d.elites, elites, "the elites are the best of their cells");

  const scoresOf = new Map<number, Scores>([
    ...d.seeds.map((s) => [s.seed, s.scores] as const),
    ...d.children.map((c) => [c.id, c.scores] as const),
  ]);
  const [agg, bestMean] = d.finals;
  const mean = (e: Held) => e.scores.reduce((a, b) => a + b, 0) / K;
  // Each archive's best: the highest quality, then the highest mean score, then the lowest id.
  const best = archives.map((held, k) => {
    const ranked = [...held.values()].sort(
      (a, b) => b.scores[k] - a.scores[k] || mean(b) - mean(a) || a.id - b.id,
    );
    return ranked[0] as Held;
  });
  assert.deepEqual(
    agg.sources.ids,
    best.map((e) => e.id),
    "the aggregate uses each archive's best elite",
  );
  const z = best.map((e, k) => Math.exp(e.scores[k]));
  const beta = agg.sources.beta ?? [];
  z.forEach((x, k) => {
    assert.ok(Math.abs(beta[k] - x / z.reduce((a, b) => a + b, 0)) < 1e-12, "softmax weights");
  });
  const all = archives.flatMap((held) => [...held.values()]);
  const top = Math.max(...all.map(mean));
  const bestId = Math.min(...all.filter((e) => mean(e) === top).map((e) => e.id));
  assert.deepEqual(bestMean.sources.ids, [bestId], "best-mean is the elite of highest mean");
  assert.deepEqual(bestMean.scoresOpt, scoresOf.get(bestId));
}

/**
 * A scripted evaluator (scores from the genome's numbers) makes the archives fill and
 * change, so replaying them after an interruption is tested on real dynamics.
 */
async function scriptedEvaluator(factorsDir: string): Promise<Evaluator> {
  const factors = await openFactors(factorsDir);
  const layout: GenomeLayout = factors.layout;
  await factors.close();
  const q = (x: number) => Math.round(Math.min(1, Math.max(0, x)) * 16) / 16;
  return {
    concurrency: 1,
    async evaluate(job) {
      let scores: Scores;
      if (job.target.kind === "file") {
        const k = Number(job.name.split("-")[1]);
        scores = Object.fromEntries(
          SKILLS.map((s, j) => [s, { score: j === k ? 0.6 : 0.2, meanLogLikelihood: -1 }]),
        );
      } else {
        const g = decodeGenome(job.target.genome, layout);
        scores = Object.fromEntries(
          SKILLS.map((s, j) => {
            let c = 0;
            let n = 0;
            for (const m of layout.matrices) {
              for (let i = 0; i < m.rank; i++, n++) c += g.c[m.offset + j * m.rank + i];
            }
            return [
              s,
              { score: q(0.2 + 0.4 * g.a[j] + 2 * (c / n - g.a[j])), meanLogLikelihood: -1 },
            ];
          }),
        );
      }
      const t = { materialise: 0, load: 0, generate: 1, grade: 1, evaluate: 2 };
      // As if child 5's answers had broken a grading lane twice (recorded, verdicts unchanged).
      const gradingFallbacks = job.name === "child-5" ? 2 : 0;
      return { scores, timings: t, worker: 0, attempts: 1, gradingFallbacks };
    },
    async close() {},
  };
}

test("archives fill, and an interrupted run resumes to the uninterrupted result", async () => {
  const config = validateConfig(
    tinyConfig(dir, { generations: 30, final: { evaluate: false, writeModel: false } }),
    dir,
  );
  const createEvaluator = (setup: { factorsDir: string }) => scriptedEvaluator(setup.factorsDir);
  const whole = join(dir, "scripted-whole");
  await run(config, { out: whole, createEvaluator });
  const ref = await dumpRun(whole);
  const outcomes = ref.children.flatMap((c) => c.outcomes.map((o) => o.outcome));
  assert.ok(outcomes.includes("new-cell") && outcomes.includes("improved"), "the archives change");
  assert.ok(ref.elites.length > 6);
  checkArchives(ref, defaultConfig().archive.bins);
  assert.deepEqual((await runStatus(whole)).gradingFallbacks, { children: [5], answers: 2 });

  // A store of schema 1 (before grading_fallbacks) still reads, and gains the column.
  const old = join(dir, "scripted-schema-1");
  await cp(whole, old, { recursive: true });
  const db = openDatabase(join(old, "run.db"), { fileMustExist: true });
  db.exec("ALTER TABLE children DROP COLUMN grading_fallbacks");
  db.prepare("UPDATE meta SET value = '1' WHERE key = 'schema'").run();
  db.close();
  assert.deepEqual((await runStatus(old)).gradingFallbacks, { children: [], answers: 0 });
  (await RunStore.open(old)).close();
  const migrated = await RunStore.open(old, { readonly: true });
  assert.equal(migrated.getMeta("schema"), "2");
  assert.equal(migrated.children().length, 30);
  migrated.close();

  const cut = join(dir, "scripted-cut");
  for (const stopAt of [7, 19]) {
    const ac = new AbortController();
    const onEvent = (e: RunEvent) => {
      if (e.type === "child" && e.finished === stopAt) ac.abort();
    };
    const r =
      stopAt === 7
        ? await run(config, { out: cut, createEvaluator, onEvent, signal: ac.signal })
        : await resume(cut, { createEvaluator, onEvent, signal: ac.signal });
    assert.equal(r.status, "interrupted");
    assert.equal(r.finished, stopAt);
  }
  assert.equal((await resume(cut, { createEvaluator })).status, "finished");
  assert.deepEqual(await dumpRun(cut), ref);
});

test("Hugging Face folders are checked, converted once, and the result is written back", async () => {
  const hf = join(dir, "hf");
  const c = {
    vocabSize: VOCAB_SIZE,
    dim: 32,
    nLayers: 1,
    nHeads: 4,
    nKvHeads: 4,
    ffnDim: 64,
    contextLength: 256,
    ropeTheta: 10000,
    normEps: 1e-5,
  };
  const base = initParams(c, new Rng(1), { std: 0.1 });
  await exportHfSafetensors(join(hf, "base"), c, base);
  for (const [k, s] of SKILLS.entries()) {
    const rng = new Rng(10 + k);
    const p = new Map([...base].map(([n, w]) => [n, w.map((x) => x + rng.normal(0, 0.02))]));
    await exportHfSafetensors(join(hf, s), c, p);
  }
  const raw = tinyConfig(dir, {
    models: { base: "hf/base", experts: { code: "hf/code", os: "hf/os", db: "hf/db" } },
    generations: 2,
    final: { evaluate: false, writeModel: true },
  });
  const out = join(dir, "run-hf");
  await run(validateConfig(raw, dir), { out });
  for (const f of ["base", "code", "os", "db"])
    assert.ok((await stat(join(out, "inputs", `${f}.gguf`))).size > 0);
  assert.ok((await stat(join(out, "model-hf", "model.safetensors"))).size > 0);

  await writeFile(join(hf, "os", "tokenizer.json"), "{}");
  await assert.rejects(
    checkInputs(validateConfig(raw, dir)),
    /models\.experts\.os .*different tokenizer than the base: tokenizer\.json is only in the expert/,
  );
});

test("child draws depend only on the seed and the index", () => {
  assert.equal(childRng(7, 3).uniform(), childRng(7, 3).uniform());
  assert.notEqual(childRng(7, 3).uniform(), childRng(7, 4).uniform());
  assert.notEqual(childRng(7, 3).uniform(), childRng(8, 3).uniform());
});

test("a second process is refused while a run is in progress", async () => {
  const out = join(dir, "locked");
  const cfgPath = join(dir, "locked.yaml");
  await writeConfig(cfgPath, tinyConfig(dir, { generations: 200 }));
  const child = spawn(
    process.execPath,
    ["bin/cycleqd.js", "run", cfgPath, "--out", out, "--quiet"],
    {
      stdio: "ignore",
    },
  );
  try {
    // Wait until the run holds its lock.
    for (let i = 0; ; i++) {
      const held = await RunStore.open(out, { readonly: true })
        .then((s) => {
          const h = s.lockInfo();
          s.close();
          return h?.alive ?? false;
        })
        .catch(() => false);
      if (held) break;
      assert.ok(i < 300, "the run never took its lock");
      await new Promise((r) => setTimeout(r, 100));
    }
    await assert.rejects(resume(out), (e: Error) => {
      assert.ok(e instanceof RunLockedError);
      assert.match(e.message, /is in progress \(process \d+/);
      return true;
    });
    const cli = await runCli(["resume", out]);
    assert.equal(cli.code, 1);
    assert.match(cli.stderr, /in progress/);
    assert.equal((await runStatus(out)).inProgress, true);
  } finally {
    child.kill("SIGKILL");
    await new Promise((r) => child.once("exit", r));
  }
  // The dead holder's lock no longer counts.
  assert.equal((await runStatus(out)).inProgress, false);
});

test("cycleqd init writes the starter and refuses to overwrite", async () => {
  const file = join(dir, "starter.yaml");
  assert.equal((await runCli(["init", file])).code, 0);
  const again = await runCli(["init", file]);
  assert.equal(again.code, 2);
  assert.match(again.stderr, /exists; choose another name or pass --force/);
  await writeFile(file, "generations: -3\n");
  const bad = await runCli(["run", file]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /generations must be an integer in 0\.\.10000000; got -3/);
});

function runCli(args: string[]): Promise<Exit> {
  return runNode(["bin/cycleqd.js", ...args]);
}
