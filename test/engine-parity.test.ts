/**
 * llama.cpp (through the engine's settings: F32 KV cache, flash attention off) against the
 * TypeScript forward pass of src/llm on the same weights.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { getLlama, type Llama, LlamaLogLevel, type Token } from "node-llama-cpp";
import { createLlamaCppEngine } from "../src/engine/llama-cpp.ts";
import type { Engine } from "../src/engine/types.ts";
import { createGemm, type Gemm } from "../src/linalg/index.ts";
import { type LlamaConfig, TINY_CONFIG } from "../src/llm/config.ts";
import { exportGguf } from "../src/llm/export.ts";
import { forward, initParams, type Params } from "../src/llm/model.ts";
import { decode, EOS_ID, encode } from "../src/llm/tokenizer.ts";
import { train } from "../src/llm/train.ts";
import { Rng } from "../src/util/rng.ts";

let dir: string;
let engine: Engine;
let llama: Llama;
let gemm: Gemm;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "cycleqd-engine-parity-"));
  engine = await createLlamaCppEngine({ gpu: false, threads: 1 });
  llama = await getLlama({ build: "never", gpu: false, logLevel: LlamaLogLevel.error });
  gemm = await createGemm({ backend: "auto", threads: 1, warn: () => {} });
});

after(async () => {
  await engine?.dispose();
  await llama?.dispose();
  await gemm?.dispose();
  await rm(dir, { recursive: true, force: true });
});

function logSoftmax(logits: Float32Array, row: number, V: number): Float64Array {
  const out = new Float64Array(V);
  let max = -Infinity;
  for (let v = 0; v < V; v++) max = Math.max(max, logits[row * V + v]);
  let sum = 0;
  for (let v = 0; v < V; v++) sum += Math.exp(logits[row * V + v] - max);
  const lse = max + Math.log(sum);
  for (let v = 0; v < V; v++) out[v] = logits[row * V + v] - lse;
  return out;
}

/** llama.cpp's next-token log-probabilities over the whole vocabulary, at every position. */
async function llamaCppLogprobs(
  path: string,
  tokens: number[],
  V: number,
): Promise<Float64Array[]> {
  const model = await llama.loadModel({ modelPath: path });
  try {
    const context = await model.createContext({
      contextSize: 256,
      threads: 1,
      flashAttention: false,
      experimentalKvCacheKeyType: "F32",
      experimentalKvCacheValueType: "F32",
    });
    const out = await context
      .getSequence()
      .controlledEvaluate(
        tokens.map((t) => [
          t as Token,
          { generateNext: { probabilities: true, options: { temperature: 0 } } },
        ]),
      );
    await context.dispose();
    return out.map((o) => {
      const row = new Float64Array(V).fill(-Infinity);
      for (const [t, p] of o?.next.probabilities ?? []) row[t] = Math.log(p);
      return row;
    });
  } finally {
    await model.dispose();
  }
}

const TEXT =
  "The quick brown fox jumps over the lazy dog. 0123456789 {}[]() ls -la /tmp; SELECT * FROM t;";

describe("llama.cpp matches the TypeScript forward pass", () => {
  for (const [label, config] of [
    ["multi-head attention", { ...TINY_CONFIG }],
    ["grouped-query attention", { ...TINY_CONFIG, nKvHeads: 2 }],
  ] as [string, LlamaConfig][]) {
    test(`${label}: next-token log-softmax within 1e-4 at every position`, async (t) => {
      // A larger init spread than training uses, so logits differ by several units.
      const params = initParams(config, new Rng(42), { std: 0.15 });
      const path = join(dir, `parity-${config.nKvHeads}.gguf`);
      await exportGguf(path, config, params);
      const tokens = Array.from(encode(TEXT, { bos: true }));
      const T = tokens.length;
      const V = config.vocabSize;
      const logits = await forward(params, config, Int32Array.from(tokens), 1, T, gemm);
      const ours = Array.from({ length: T }, (_, i) => logSoftmax(logits, i, V));
      const theirs = await llamaCppLogprobs(path, tokens, V);

      let maxErr = 0;
      let spread = 0;
      for (let i = 0; i < T; i++) {
        for (let v = 0; v < V; v++) {
          maxErr = Math.max(maxErr, Math.abs(ours[i][v] - theirs[i][v]));
          spread = Math.max(spread, ours[i][v] - ours[i][0]);
        }
      }
      t.diagnostic(`max |Δ log p| over ${T}×${V}: ${maxErr.toExponential(2)}`);
      assert.ok(spread > 2, `logits too flat for a meaningful comparison (spread ${spread})`);
      assert.ok(maxErr < 1e-4, `max error ${maxErr}`);

      // The engine's score() reads the same numbers for the tokens of a continuation.
      const model = await engine.loadModel(path);
      try {
        const [s] = await model.score([
          { prompt: TEXT.slice(0, 10), continuation: TEXT.slice(10) },
        ]);
        s.logprobs.forEach((lp, j) => {
          const pos = 10 + j; // BOS + 10 prompt tokens: position 10 predicts token 11
          assert.ok(Math.abs(lp - ours[pos][tokens[pos + 1]]) < 1e-4, `score at ${j}`);
        });
      } finally {
        await model.dispose();
      }
    });
  }
});

/** Greedy continuation by the TypeScript model: argmax of a full forward pass per step. */
async function tsGreedy(
  params: Params,
  config: LlamaConfig,
  prompt: string,
  maxTokens: number,
): Promise<{ tokens: number[]; minGap: number }> {
  const ids = Array.from(encode(prompt, { bos: true }));
  const out: number[] = [];
  let minGap = Infinity;
  const V = config.vocabSize;
  for (let step = 0; step < maxTokens; step++) {
    const T = ids.length;
    const logits = await forward(params, config, Int32Array.from(ids), 1, T, gemm);
    const row = logits.subarray((T - 1) * V, T * V);
    let best = 0;
    for (let v = 1; v < V; v++) if (row[v] > row[best]) best = v;
    let second = -Infinity;
    for (let v = 0; v < V; v++) if (v !== best) second = Math.max(second, row[v]);
    minGap = Math.min(minGap, row[best] - second);
    out.push(best);
    if (best === EOS_ID) break;
    ids.push(best);
  }
  return { tokens: out, minGap };
}

test("a trained model greedy-generates the same text in llama.cpp as in TypeScript", async (t) => {
  const config: LlamaConfig = {
    ...TINY_CONFIG,
    dim: 64,
    nLayers: 2,
    nHeads: 4,
    nKvHeads: 2,
    ffnDim: 160,
    contextLength: 128,
  };
  const lines = [
    "the cat sat on the mat.",
    "ls -la /home/user",
    "SELECT name FROM users;",
    "def add(a, b): return a + b",
    "the dog ran in the park.",
  ];
  const stream = lines
    .map((l) => `${l}\n`)
    .join("")
    .repeat(40);
  const data = { kind: "stream" as const, tokens: encode(stream) };
  const result = await train({
    config,
    data,
    steps: 200,
    batchSize: 8,
    seqLen: 64,
    gemm,
    lr: 5e-3,
  });
  const losses = result.losses;
  t.diagnostic(`loss ${losses[0].toFixed(2)} → ${losses[losses.length - 1].toFixed(2)}`);
  assert.ok(losses[losses.length - 1] < losses[0] / 2, "training did not learn the text");

  const path = join(dir, "trained.gguf");
  await exportGguf(path, config, result.params);
  const model = await engine.loadModel(path);
  try {
    const prompts = ["the ", "ls -", "SELECT ", "def ", "the dog", "x"];
    const maxTokens = 24;
    const generated = await model.generate(prompts.map((prompt) => ({ prompt, maxTokens })));
    for (const [i, prompt] of prompts.entries()) {
      const ref = await tsGreedy(result.params, config, prompt, maxTokens);
      const eos = ref.tokens.at(-1) === EOS_ID;
      const text = decode(eos ? ref.tokens.slice(0, -1) : ref.tokens);
      if (generated[i].text !== text) {
        assert.ok(
          ref.minGap < 1e-3,
          `"${prompt}": llama.cpp ${JSON.stringify(generated[i].text)} vs TS ${JSON.stringify(text)}`,
        );
        t.diagnostic(`"${prompt}" diverged at a near tie (gap ${ref.minGap})`);
        continue;
      }
      assert.equal(generated[i].tokens, ref.tokens.length);
      assert.equal(generated[i].finish, eos ? "eos" : "length");
    }
  } finally {
    await model.dispose();
  }
});
