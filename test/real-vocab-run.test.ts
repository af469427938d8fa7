/**
 * A run on a real vocabulary, end to end from the CLI: a tiny random LLaMA on phi-3's
 * SentencePiece vocabulary with its chat template (test/fixtures/vocab) and three noisy
 * experts, searched with three skills loaded from files in each real format (MBPP,
 * AgentBench DB, the generic JSONL kind). Then `cycleqd eval --config` applies the chat
 * template, `cycleqd merge` writes a TIES merge, and every model written along the way
 * loads in node-llama-cpp with the base's tokenizer metadata.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { getLlama, type Llama, LlamaLogLevel } from "node-llama-cpp";
import { stringify } from "yaml";
import { type GgufValue, openGguf, writeGguf } from "../src/tensors/gguf.ts";
import { Rng } from "../src/util/rng.ts";
import { runNode } from "./helpers/spawn.ts";
import { ggufMetadataOf, tinyLlamaOnVocab, writeNoisyCopy } from "./helpers/tiny-gguf.ts";

const FX = join(import.meta.dirname, "fixtures");
const PHI3 = join(FX, "vocab", "ggml-vocab-phi-3.gguf");
const BIN = join(import.meta.dirname, "..", "bin", "cycleqd.js");

/** phi-3's special tokens (ids in its vocabulary). */
const BOS = 1;
const ENDOFTEXT = 32000;
const USER = 32010;
const N_VOCAB = 32064;

const SYSTEM = "You are a careful engineer. Answer with code only.";
const SKILLS = ["py", "sql", "mine"];

/** The tokenizer.* entries and general.name (llama.cpp picks phi-3's rules by the name). */
function tokenizerMeta(meta: Map<string, GgufValue>): Record<string, unknown> {
  return Object.fromEntries(
    [...meta]
      .filter(([k]) => k.startsWith("tokenizer.") || k === "general.name")
      .map(([k, v]) => [k, v.value]),
  );
}

/** A tiny random LLaMA with every tokenizer.* key (and the name) of phi-3's vocabulary. */
async function writeOnPhi3(path: string, vocab: Map<string, GgufValue>): Promise<void> {
  const { metadata, tensors } = tinyLlamaOnVocab(vocab, {
    nEmbd: 32,
    nLayer: 1,
    nHead: 4,
    nFf: 32,
    seed: 5,
    contextLength: 2048,
  });
  await writeGguf(path, metadata, tensors);
}

describe("a run on phi-3's vocabulary with skills from files, from the CLI", () => {
  let dir = "";
  let base = "";
  let experts: string[] = [];
  let configPath = "";
  let runDir = "";
  let baseMeta: Map<string, GgufValue>;
  let llama: Llama | undefined;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "cycleqd-real-vocab-"));
    const vocab = await ggufMetadataOf(PHI3);
    base = join(dir, "base.gguf");
    await writeOnPhi3(base, vocab);
    baseMeta = await ggufMetadataOf(base);
    const reader = await openGguf(base);
    try {
      experts = [];
      for (const [k, skill] of SKILLS.entries()) {
        const path = join(dir, `${skill}.gguf`);
        await writeNoisyCopy(reader, path, new Rng(200 + k));
        experts.push(path);
      }
    } finally {
      await reader.close();
    }
    configPath = join(dir, "run.yaml");
    runDir = join(dir, "run");
    await writeFile(
      configPath,
      stringify({
        models: {
          base: "base.gguf",
          experts: Object.fromEntries(SKILLS.map((s) => [s, `${s}.gguf`])),
        },
        skills: [
          // MBPP's own split by task id: 556 is opt; 23, 58, 96, 301 and 418 test.
          { name: "py", kind: "mbpp", pool: join(FX, "mbpp-format", "mbpp.jsonl"), maxTokens: 24 },
          {
            name: "sql",
            kind: "dbbench",
            pool: join(FX, "dbbench-format", "standard.jsonl"),
            split: { opt: 3, test: 2 },
            maxTokens: 24,
          },
          {
            name: "mine",
            kind: "jsonl",
            files: {
              opt: join(FX, "generic", "tests.jsonl"),
              test: join(FX, "generic", "test.jsonl"),
            },
            maxTokens: 24,
          },
        ],
        generations: 3,
        workers: 1,
        seed: 11,
        mutation: { rank: 8 },
        engine: { threads: 1, parallel: 2, contextSize: 2048 },
        chat: { template: "auto", system: SYSTEM },
        final: { evaluate: true, writeModel: true },
        cacheDir: join(dir, "cache"),
      }),
    );
    llama = await getLlama({ build: "never", gpu: false, logLevel: LlamaLogLevel.error });
  });

  after(async () => {
    await llama?.dispose();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** Loads `path` in node-llama-cpp and checks the tokenizer as llama.cpp reads it. */
  async function checkLoads(path: string): Promise<void> {
    assert.deepEqual(tokenizerMeta(await ggufMetadataOf(path)), tokenizerMeta(baseMeta), path);
    const m = await (llama as Llama).loadModel({ modelPath: path });
    try {
      const meta = m.fileInfo.metadata as unknown as {
        general: { name: string };
        tokenizer: { chat_template: string; ggml: { model: string; tokens: string[] } };
      };
      assert.equal(meta.tokenizer.ggml.model, "llama");
      assert.equal(meta.tokenizer.ggml.tokens.length, N_VOCAB);
      assert.equal(meta.tokenizer.chat_template, baseMeta.get("tokenizer.chat_template")?.value);
      assert.equal(meta.general.name, baseMeta.get("general.name")?.value);
      assert.equal(m.tokens.bos, BOS);
      assert.equal(m.tokens.eos, ENDOFTEXT);
      assert.deepEqual(m.tokenize("<|user|>", true), [USER], "<|user|> is one special token");
      assert.ok(m.tokenize("<|user|>", false).length > 1, "spelled out without special tokens");
    } finally {
      await m.dispose();
    }
  }

  test("the base and its experts carry phi-3's tokenizer and load in llama.cpp", async () => {
    const tok = tokenizerMeta(baseMeta);
    assert.equal(tok["tokenizer.ggml.model"], "llama");
    assert.equal((tok["tokenizer.ggml.tokens"] as string[]).length, N_VOCAB);
    assert.equal(tok["tokenizer.ggml.bos_token_id"], BOS);
    assert.equal(tok["tokenizer.ggml.eos_token_id"], ENDOFTEXT);
    assert.match(String(tok["tokenizer.chat_template"]), /<\|user\|>/);
    for (const p of [base, ...experts]) await checkLoads(p);
  });

  test("cycleqd run: three skills from files, 3 children, the aggregate and the report", async () => {
    const r = await runNode([BIN, "run", configPath, "--out", runDir, "--json"]);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    const events = r.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    const skills = events.find((e) => e.type === "skills")?.skills;
    assert.deepEqual(
      skills.map((s: { name: string; kind: string; opt: number; test: number }) => [
        s.name,
        s.kind,
        s.opt,
        s.test,
      ]),
      [
        ["py", "mbpp", 1, 5],
        ["sql", "dbbench", 3, 2],
        ["mine", "jsonl", 3, 2],
      ],
    );
    for (const s of skills) assert.deepEqual(s.skipped, [], s.name);
    const children = events.filter((e) => e.type === "child");
    assert.equal(children.length, 3);
    for (const c of children) assert.deepEqual(Object.keys(c.scores), SKILLS);
    const done = events.find((e) => e.type === "done");
    assert.equal(done.status, "finished");
    assert.equal(done.finished, 3);
    const aggregate = events.find((e) => e.type === "final" && e.name === "aggregate");
    assert.equal(aggregate.model, join(runDir, "model.gguf"));
    assert.deepEqual(Object.keys(aggregate.scoresOpt), SKILLS);
    assert.deepEqual(Object.keys(aggregate.scoresTest), SKILLS);
    assert.ok(existsSync(join(runDir, "model.gguf")));
    assert.ok(existsSync(join(runDir, "report.html")));
    assert.ok(events.some((e) => e.type === "report"));
  });

  test("the run's aggregate loads in llama.cpp with the tokenizer metadata intact", async () => {
    await checkLoads(join(runDir, "model.gguf"));
  });

  test("cycleqd merge --method ties of the base and experts keeps the tokenizer", async () => {
    const out = join(dir, "ties.gguf");
    const r = await runNode([
      BIN,
      "merge",
      "--method",
      "ties",
      "--base",
      base,
      ...experts.flatMap((e) => ["--expert", e]),
      "--out",
      out,
      "--json",
    ]);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    await checkLoads(out);
  });

  test("cycleqd eval --config applies phi-3's chat template with the system prompt", async () => {
    const details = join(dir, "details.jsonl");
    const r = await runNode([
      BIN,
      "eval",
      base,
      "--config",
      configPath,
      "--split",
      "opt",
      "--json",
      "--details",
      details,
    ]);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    const out = JSON.parse(r.stdout);
    assert.deepEqual(Object.keys(out.skills), SKILLS);
    assert.deepEqual(
      SKILLS.map((s) => out.skills[s].problems + out.skills[s].ungradable),
      [1, 3, 3],
    );
    const lines = (await readFile(details, "utf8"))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      SKILLS.map((s) => lines.filter((l) => l.skill === s).length),
      [1, 3, 3],
    );
    for (const l of lines) {
      // phi-3's template drops system messages, so the system prompt opens the user turn.
      assert.ok(l.prompt.startsWith(`<|user|>\n${SYSTEM}\n\n`), l.prompt);
      assert.ok(l.prompt.endsWith("<|end|>\n<|assistant|>\n"), l.prompt);
    }
  });
});
