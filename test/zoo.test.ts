import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { evalCommand } from "../src/cli/commands/eval.ts";
import { zoo } from "../src/cli/commands/zoo.ts";
import { createLlamaCppEngine } from "../src/engine/index.ts";
import type { LlamaConfig } from "../src/llm/config.ts";
import { loadGguf } from "../src/llm/export.ts";
import { decode, VOCAB_SIZE } from "../src/llm/tokenizer.ts";
import { createMiniSkills } from "../src/skills/index.ts";
import type { Skill, Split } from "../src/skills/types.ts";
import { Rng } from "../src/util/rng.ts";
import {
  BASE_NAME,
  buildZoo,
  chooseStage2,
  copyProbes,
  DOC_KINDS,
  expertExamples,
  generalDoc,
  type RecipeOverrides,
  readCard,
  resolveRecipe,
  SHIPPED_ZOO_DIR,
  STAGE1_MIX,
  sha256File,
  stage1Corpus,
  stage2Corpus,
  taskVectorStats,
  type ZooProgress,
} from "../src/zoo/index.ts";

const SIZES = { pretrain: 40, train: 40, opt: 3, test: 3 };

/** Skills that record which splits were asked for. */
function spied(seed: number): { skills: Skill[]; asked: Set<Split> } {
  const asked = new Set<Split>();
  const skills = createMiniSkills({ seed, sizes: SIZES }).map(
    (s) =>
      ({
        ...s,
        grade: s.grade.bind(s),
        format: s.format.bind(s),
        problems: (split: Split) => {
          asked.add(split);
          return s.problems(split);
        },
      }) as Skill,
  );
  return { skills, asked };
}

test("the stage-1 corpus is a deterministic function of its seed, in both forms", () => {
  const stream = (seed: number) => {
    const c = stage1Corpus(seed, 20_000, "stream");
    assert.equal(c.data.kind, "stream");
    return c.data.kind === "stream" ? c.data.tokens : new Int32Array();
  };
  const a = stream(7);
  assert.deepEqual(a, stream(7));
  assert.notDeepEqual(a.subarray(0, 500), stream(8).subarray(0, 500));
  assert.ok(a.length >= 20_000);
  assert.ok(a.every((t) => t >= 0 && t < VOCAB_SIZE));
  // Every document is BOS … EOS, so a prompt looks as llama.cpp feeds it.
  assert.equal(a[0], 1);
  assert.equal(a[a.length - 1], 2);

  const answers = stage1Corpus(7, 20_000);
  assert.deepEqual(answers, stage1Corpus(7, 20_000));
  assert.equal(answers.data.kind, "examples");
  if (answers.data.kind !== "examples") return;
  assert.equal(answers.stats.docs.prose, undefined, "plain sentences have no answer");
  for (const ex of answers.data.examples) {
    assert.equal(ex.prompt[0], 1);
    assert.match(decode(ex.prompt), /^Q: .*\nA: $/s);
    assert.match(decode(ex.answer), /^[^\n]*\n$/);
  }
});

test("stage-1 documents follow the copy/format/qa/prose mix", () => {
  const rng = new Rng(3);
  const counts: Record<string, number> = {};
  const n = 20_000;
  for (let i = 0; i < n; i++) {
    const d = generalDoc(rng);
    counts[d.kind] = (counts[d.kind] ?? 0) + 1;
    assert.ok(d.text.endsWith("\n"));
  }
  for (const k of DOC_KINDS) {
    assert.ok(Math.abs(counts[k] / n - STAGE1_MIX[k]) < 0.015, `${k}: ${counts[k] / n}`);
  }
  // Token shares stay close to document shares (no kind of document is much longer).
  const c = stage1Corpus(3, 200_000, "stream");
  for (const k of DOC_KINDS) {
    assert.ok(Math.abs(c.stats.tokens[k] / c.stats.total - STAGE1_MIX[k]) < 0.07, k);
  }
});

test("copy probes are copy tasks with their answer in the prompt", () => {
  const probes = copyProbes(1, 50);
  assert.deepEqual(probes, copyProbes(1, 50));
  for (const p of probes) {
    assert.match(p.prompt, /^Q: .*\nA: $/s);
    for (const w of p.answer.split(" ")) assert.ok(p.prompt.includes(w), `${w} in ${p.prompt}`);
  }
});

test("stage 2 sees only pretrain problems; experts only their train split", () => {
  const { skills, asked } = spied(5);
  const corpus = stage2Corpus(5, 30_000, skills, 0.4, "stream");
  const answers = stage2Corpus(5, 30_000, skills, 0.4, "answers");
  assert.deepEqual([...asked], ["pretrain"]);
  const share = corpus.stats.docs.skill / Object.values(corpus.stats.docs).reduce((a, b) => a + b);
  assert.ok(Math.abs(share - 0.4) < 0.05, `skill share ${share}`);
  assert.ok(corpus.data.kind === "stream" && answers.data.kind === "examples");
  const text =
    decode(corpus.data.tokens) +
    answers.data.examples.map((e) => decode(e.prompt) + decode(e.answer)).join("");
  for (const s of skills) {
    for (const split of ["train", "opt", "test"] as const) {
      for (const p of s.problems(split)) {
        assert.ok(!text.includes(`${s.format(p)}${p.reference}\n`), `${p.id} leaked into stage 2`);
      }
    }
  }
  asked.clear();
  for (const s of skills) {
    const ex = expertExamples(s);
    const train = new Set(s.problems("train").map((p) => `${s.format(p)}${p.reference}\n`));
    for (const e of ex) assert.ok(train.has(decode(e.prompt) + decode(e.answer)));
  }
  assert.deepEqual([...asked], ["train"]);
});

test("task-vector statistics: norms relative to the base and pairwise cosines", () => {
  const base = new Map([["w", Float32Array.of(3, 4)]]);
  const a = new Map([["w", Float32Array.of(4, 4)]]);
  const b = new Map([["w", Float32Array.of(3, 6)]]);
  const c = new Map([["w", Float32Array.of(5, 4)]]);
  const s = taskVectorStats(base, { a, b, c });
  assert.equal(s.baseNorm, 5);
  assert.equal(s.relative.a, 0.2);
  assert.equal(s.norms.b, 2);
  assert.equal(s.cosines["a,b"], 0);
  assert.ok(Math.abs(s.cosines["a,c"] - 1) < 1e-12);
});

test("stage 2 picks the first weak-but-non-zero checkpoint, else the nearest", () => {
  const recipe = resolveRecipe({ stage2: { minScore: 0.1, maxScore: 0.5 } });
  const at = { seconds: 1, tokens: 1, loss: 1 };
  const evals = [
    { step: 25, scores: { a: 0, b: 0.2 }, accepted: false, ...at },
    { step: 50, scores: { a: 0.05, b: 0.3 }, accepted: false, ...at },
    { step: 75, scores: { a: 0.6, b: 0.7 }, accepted: false, ...at },
  ];
  assert.equal(chooseStage2(evals, recipe).step, 50);
  evals.push({ step: 100, scores: { a: 0.2, b: 0.3 }, accepted: true, ...at });
  assert.equal(chooseStage2(evals, recipe).step, 100);
  assert.throws(() => resolveRecipe({ stage1: { steps: 0 } }), /stage1.steps/);
  assert.throws(() => resolveRecipe({ expert: { replayShare: 1 } }), /replayShare must be/);
});

const MICRO_CONFIG: LlamaConfig = {
  vocabSize: VOCAB_SIZE,
  dim: 16,
  nLayers: 1,
  nHeads: 2,
  nKvHeads: 2,
  ffnDim: 32,
  contextLength: 256,
  ropeTheta: 10000,
  normEps: 1e-5,
};

const MICRO_RECIPE: RecipeOverrides = {
  stage1: { steps: 4, batchSize: 2, seqLen: 128, warmupSteps: 1, corpusTokens: 4000 },
  stage2: { steps: 4, batchSize: 2, seqLen: 128, warmupSteps: 1, corpusTokens: 4000, evalEvery: 2 },
  expert: { steps: 3, batchSize: 2, warmupSteps: 1, replayShare: 0.5 },
  copyProbes: 4,
};

let dir = "";
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "cycleqd-zoo-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test("a micro build stopped after stage 2 resumes there and writes a loadable zoo", async () => {
  const out = join(dir, "zoo");
  const events: ZooProgress[] = [];
  const { skills, asked } = spied(2);
  const opts = {
    outDir: out,
    seed: 2,
    config: MICRO_CONFIG,
    recipe: MICRO_RECIPE,
    skills,
    threads: 1,
    onProgress: (p: ZooProgress) => events.push(p),
  };
  const first = await buildZoo({ ...opts, stopAfter: "stage2" });
  assert.equal(first.complete, false);
  assert.deepEqual(Object.keys(first.card.build.stages), ["stage1", "stage2"]);
  assert.ok(!existsSync(join(out, "zoo.json")));
  const stage1Steps = events.filter((e) => e.stage === "stage1" && e.kind === "step").length;
  assert.ok(stage1Steps > 0);

  events.length = 0;
  const second = await buildZoo(opts);
  assert.equal(second.complete, true);
  // The resumed build skipped the finished stages instead of training them again.
  assert.ok(events.some((e) => e.stage === "stage1" && e.kind === "skip"));
  assert.ok(events.some((e) => e.stage === "stage2" && e.kind === "skip"));
  assert.ok(
    !events.some((e) => (e.stage === "stage1" || e.stage === "stage2") && e.kind === "step"),
  );
  assert.ok(events.some((e) => e.stage === "expert:db" && e.kind === "step"));
  const dbStart = events.find((e) => e.stage === "expert:db" && e.kind === "start");
  // Up to 40 (answers that run past their budget or seqLen are left out), and some.
  const replayed = Number(/and (\d+) replayed base answers/.exec(dbStart?.message ?? "")?.[1]);
  assert.ok(replayed > 0 && replayed <= 40, dbStart?.message);
  assert.ok(!existsSync(join(out, ".build")), "the work directory is removed when done");
  assert.deepEqual([...asked].sort(), ["opt", "pretrain", "test", "train"]);

  const card = await readCard(out);
  assert.deepEqual(Object.keys(card.models), [BASE_NAME, "code", "os", "db"]);
  assert.deepEqual(card.config, MICRO_CONFIG);
  assert.equal(card.seed, 2);
  for (const [name, m] of Object.entries(card.models)) {
    const path = join(out, m.file);
    assert.equal(m.sha256, await sha256File(path), name);
    const { config } = await loadGguf(path);
    assert.deepEqual(config, MICRO_CONFIG);
    for (const s of card.skills) {
      assert.ok(m.scores[s].opt >= 0 && m.scores[s].opt <= 1);
      assert.ok(m.scores[s].test >= 0 && m.scores[s].test <= 1);
    }
  }
  assert.ok(card.build.stages["expert:code"].seconds > 0);
  assert.ok(card.taskVectors.relative.code > 0);
  assert.equal(Object.keys(card.taskVectors.cosines).length, 3);
  const engine = await createLlamaCppEngine({ threads: 1 });
  try {
    const m = await engine.loadModel(join(out, "code.gguf"));
    const [g] = await m.generate([{ prompt: "Q: hi\nA: ", maxTokens: 4 }]);
    assert.equal(typeof g.text, "string");
  } finally {
    await engine.dispose();
  }

  // Building again finds the finished zoo and leaves it alone.
  events.length = 0;
  const third = await buildZoo(opts);
  assert.deepEqual(third.card, card);
  assert.deepEqual(
    events.map((e) => e.kind),
    ["skip"],
  );

  // eval scores a zoo file and writes per-problem details.
  const details = join(dir, "details.jsonl");
  const ev = await captured(() =>
    evalCommand.run({
      positionals: [join(out, "os.gguf")],
      values: { skills: "os,db", split: "opt", limit: "2", json: true, details },
    }),
  );
  assert.equal(ev.code, 0);
  const res = JSON.parse(ev.out);
  assert.deepEqual(Object.keys(res.skills), ["os", "db"]);
  assert.equal(res.skills.os.problems, 2);
  const lines = (await readFile(details, "utf8"))
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
  assert.equal(lines.length, 4);
  assert.deepEqual(Object.keys(lines[0]).sort(), [
    "gradable",
    "id",
    "output",
    "pass",
    "prompt",
    "reason",
    "skill",
  ]);

  // An unfinished build is refused as a resume target with other settings.
  await assert.rejects(
    buildZoo({ ...opts, seed: 3, workDir: join(dir, "w"), stopAfter: "stage1" }).then(() =>
      buildZoo({ ...opts, seed: 4, workDir: join(dir, "w") }),
    ),
    /another seed/,
  );
});

async function captured(fn: () => Promise<number>): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => lines.push(a.join(" "));
  try {
    return { code: await fn(), out: lines.join("\n") };
  } finally {
    console.log = log;
  }
}

test("zoo info prints the shipped zoo's table of base and experts × skills", async (t) => {
  if (!existsSync(join(SHIPPED_ZOO_DIR, "zoo.json"))) {
    t.skip("no zoo shipped in this checkout");
    return;
  }
  const { code, out } = await captured(() => zoo.run({ values: {}, positionals: ["info"] }));
  assert.equal(code, 0);
  for (const row of ["base", "code", "os", "db"]) assert.match(out, new RegExp(`^${row} `, "m"));
  assert.match(out, /code opt\s+code test\s+os opt/);
  const json = await captured(() => zoo.run({ values: { json: true }, positionals: ["info"] }));
  const card = JSON.parse(json.out);
  assert.deepEqual(card, JSON.parse(await readFile(join(SHIPPED_ZOO_DIR, "zoo.json"), "utf8")));
});
