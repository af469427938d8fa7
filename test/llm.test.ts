import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { createGemm } from "../src/linalg/index.ts";
import { sampleExampleBatch } from "../src/llm/batches.ts";
import {
  type LlamaConfig,
  parameterCount,
  TINY_CONFIG,
  validateConfig,
} from "../src/llm/config.ts";
import { exportGguf, exportHfSafetensors, loadGguf, loadHfSafetensors } from "../src/llm/export.ts";
import { forward, initParams, type Params, paramSpecs } from "../src/llm/model.ts";
import { clipGradients, learningRate } from "../src/llm/optim.ts";
import {
  BOS_ID,
  decode,
  EOS_ID,
  encode,
  TokenType,
  VOCAB_SIZE,
  vocabulary,
} from "../src/llm/tokenizer.ts";
import { type TrainOptions, train } from "../src/llm/train.ts";
import { Rng } from "../src/util/rng.ts";

const gemm = await createGemm({ backend: "auto", threads: 1, warn: () => {} });
const dir = await mkdtemp(join(tmpdir(), "cycleqd-llm-"));
after(async () => {
  await rm(dir, { recursive: true, force: true });
  await gemm.dispose();
});

const small: LlamaConfig = {
  vocabSize: VOCAB_SIZE,
  dim: 32,
  nLayers: 2,
  nHeads: 4,
  nKvHeads: 2,
  ffnDim: 64,
  contextLength: 64,
  ropeTheta: 10000,
  normEps: 1e-5,
};

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function randomTokens(n: number, rng: Rng, vocab = VOCAB_SIZE): Int32Array {
  return new Int32Array(n).map(() => rng.int(vocab));
}

test("tokenizer: vocabulary layout that llama.cpp's SPM tokenizer expects", () => {
  const v = vocabulary();
  assert.equal(v.tokens.length, VOCAB_SIZE);
  assert.deepEqual(v.tokens.slice(0, 4), ["<unk>", "<s>", "</s>", "<0x00>"]);
  assert.deepEqual(v.types.slice(0, 4), [
    TokenType.unknown,
    TokenType.control,
    TokenType.control,
    TokenType.byte,
  ]);
  assert.equal(v.tokens[3 + 0xff], "<0xFF>");
  assert.equal(v.tokens[259], "\u2581");
  assert.equal(v.tokens.at(-1), "\n");
  assert.equal(new Set(v.tokens).size, v.tokens.length, "tokens are unique");
});

test("tokenizer: characters, spaces, bytes and round trips", () => {
  const v = vocabulary();
  const ids = encode("a b\n");
  assert.deepEqual(
    [...ids].map((i) => v.tokens[i]),
    ["a", "\u2581", "b", "\n"],
  );
  // Tab and non-ASCII characters fall back to their UTF-8 bytes.
  assert.deepEqual(
    [...encode("\té")].map((i) => v.tokens[i]),
    ["<0x09>", "<0xC3>", "<0xA9>"],
  );
  // Special-token text is plain text.
  assert.equal(encode("<s>").length, 3);
  assert.deepEqual([...encode("x", { bos: true, eos: true })], [BOS_ID, encode("x")[0], EOS_ID]);
  for (const text of [
    "",
    "SELECT name FROM t WHERE id = 7;\n",
    "tab\there ✓ 日本 🦙",
    "~`!@#$%^&*()",
  ]) {
    assert.equal(decode(encode(text)), text);
  }
  assert.equal(decode(encode("hi", { bos: true, eos: true })), "hi");
  assert.throws(() => decode([VOCAB_SIZE]), /outside/);
});

test("config: default is ~0.9M parameters, bad configs are refused", () => {
  const n = parameterCount(TINY_CONFIG);
  assert.ok(n > 850_000 && n < 950_000, `${n}`);
  const total = paramSpecs(TINY_CONFIG).reduce((s, p) => s + p.shape.reduce((a, b) => a * b, 1), 0);
  assert.equal(total, n);
  assert.throws(() => validateConfig({ ...TINY_CONFIG, nKvHeads: 3 }), /multiple of nKvHeads/);
  assert.throws(() => validateConfig({ ...TINY_CONFIG, dim: 130 }), /divisible/);
  assert.throws(() => validateConfig({ ...TINY_CONFIG, normEps: 0 }), /normEps/);
});

test("forward: logits shape, finite, and causal", async () => {
  const rng = new Rng(1);
  const params = initParams(small, rng);
  const B = 2;
  const T = 12;
  const tokens = randomTokens(B * T, rng);
  const logits = await forward(params, small, tokens, B, T, gemm);
  assert.equal(logits.length, B * T * VOCAB_SIZE);
  assert.ok(logits.every(Number.isFinite));
  // Changing token 7 of row 1 changes no logit before position 7, and leaves row 0 alone.
  const changed = tokens.slice();
  changed[T + 7] = (changed[T + 7] + 1) % VOCAB_SIZE;
  const logits2 = await forward(params, small, changed, B, T, gemm);
  const V = VOCAB_SIZE;
  assert.equal(maxAbsDiff(logits.subarray(0, (T + 7) * V), logits2.subarray(0, (T + 7) * V)), 0);
  assert.ok(maxAbsDiff(logits.subarray((T + 7) * V), logits2.subarray((T + 7) * V)) > 0);
  // Each row is independent of the others in the batch: row 1 alone gives the same logits.
  const alone = await forward(params, small, tokens.subarray(T), 1, T, gemm);
  assert.ok(maxAbsDiff(alone, logits.subarray(T * V)) < 1e-5);
  await assert.rejects(forward(params, small, tokens, B, T + 1, gemm), /B·T/);
  await assert.rejects(
    forward(params, small, new Int32Array(65).fill(1), 1, 65, gemm),
    /context length/,
  );
});

test("forward: grouped-query attention equals multi-head attention with shared K/V heads", async () => {
  const rng = new Rng(2);
  const gqa = initParams(small, rng);
  const mha: LlamaConfig = { ...small, nKvHeads: small.nHeads };
  const hd = small.dim / small.nHeads;
  const group = small.nHeads / small.nKvHeads;
  const expanded: Params = new Map(gqa);
  for (let l = 0; l < small.nLayers; l++) {
    for (const part of ["attn_k", "attn_v"]) {
      const name = `blk.${l}.${part}.weight`;
      const w = gqa.get(name) as Float32Array;
      const out = new Float32Array(small.dim * small.dim);
      // Query head h reads kv head floor(h / group).
      for (let h = 0; h < small.nHeads; h++) {
        const kv = Math.floor(h / group);
        out.set(w.subarray(kv * hd * small.dim, (kv + 1) * hd * small.dim), h * hd * small.dim);
      }
      expanded.set(name, out);
    }
  }
  const tokens = randomTokens(2 * 10, rng);
  const a = await forward(gqa, small, tokens, 2, 10, gemm);
  const b = await forward(expanded, mha, tokens, 2, 10, gemm);
  assert.ok(maxAbsDiff(a, b) < 1e-5, `${maxAbsDiff(a, b)}`);
});

test("optimizer: schedule and clipping", () => {
  const s = { lr: 1e-2, minLr: 1e-3, warmupSteps: 10, totalSteps: 110 };
  assert.equal(learningRate(0, s), 1e-3);
  assert.equal(learningRate(9, s), 1e-2);
  assert.ok(Math.abs(learningRate(60, s) - 5.5e-3) < 1e-12);
  assert.equal(learningRate(110, s), 1e-3);
  const grads: Params = new Map([["a", Float32Array.of(3, 4)]]);
  assert.equal(clipGradients(grads, 1), 5);
  assert.ok(Math.abs((grads.get("a") as Float32Array)[1] - 0.8) < 1e-6);
});

test("batches: examples put the loss on answer tokens only", () => {
  const rng = new Rng(3);
  const ex = { prompt: encode("Q: 2+2? A:"), answer: encode(" 4", { eos: true }) };
  const batch = sampleExampleBatch([ex], 2, 64, rng);
  const T = ex.prompt.length + ex.answer.length - 1;
  assert.equal(batch.T, T);
  const masked = [...batch.targets.subarray(0, T)].filter(
    (_, t) => (batch.mask as Float32Array)[t] === 1,
  );
  assert.deepEqual(masked, [...ex.answer]);
  // A too-long example keeps its answer and the end of its prompt.
  const cut = sampleExampleBatch([ex], 1, 5, rng);
  assert.equal(cut.T, 5);
  assert.deepEqual([...cut.targets].slice(-ex.answer.length), [...ex.answer]);
});

const text = "the quick brown fox jumps over the lazy dog. ".repeat(40);

function trainOptions(extra: Partial<TrainOptions> = {}): TrainOptions {
  return {
    config: small,
    data: { kind: "stream", tokens: encode(text) },
    steps: 40,
    batchSize: 8,
    seqLen: 32,
    gemm,
    seed: 11,
    lr: 1e-2,
    warmupSteps: 5,
    ...extra,
  };
}

test("train: loss on a repeated text falls a lot within a few dozen steps", async () => {
  const seen: number[] = [];
  const result = await train(trainOptions({ onStep: (s) => void seen.push(s.tokensPerSecond) }));
  assert.equal(result.step, 40);
  assert.equal(seen.length, 40);
  const first = result.losses[0];
  const last = result.losses.slice(-5).reduce((a, b) => a + b, 0) / 5;
  assert.ok(first > 5, `initial loss ${first}`);
  assert.ok(last < 1.5, `loss ${first.toFixed(3)} → ${last.toFixed(3)}`);
});

test("train: resuming from a checkpoint continues bit-identically", async () => {
  const k = 4;
  const opts = trainOptions({ steps: 2 * k, data: { kind: "examples", examples: examples() } });
  const whole = await train(opts);
  const path = join(dir, "ck.safetensors");
  // Interrupt the run right after the checkpoint at step k.
  await assert.rejects(
    train({
      ...opts,
      checkpointPath: path,
      checkpointEvery: k,
      onStep: (s) => {
        if (s.step === k) throw new Error("interrupted");
      },
    }),
    /interrupted/,
  );
  const resumed = await train({ ...opts, checkpointPath: path, checkpointEvery: k });
  assert.equal(resumed.resumedFrom, k);
  assert.deepEqual(resumed.losses, whole.losses.slice(k));
  for (const [name, w] of whole.params) assert.deepEqual(resumed.params.get(name), w, name);
  // A run with other settings refuses the checkpoint instead of silently diverging.
  await assert.rejects(train({ ...opts, lr: 5e-3, checkpointPath: path }), /schedule/);
});

function examples() {
  return ["red", "green", "blue", "cyan"].map((c) => ({
    prompt: encode(`repeat ${c}:`),
    answer: encode(` ${c}`, { eos: true }),
  }));
}

test("export: GGUF round trip gives the same logits", async () => {
  const rng = new Rng(5);
  const params = initParams(small, rng);
  const tokens = randomTokens(16, rng);
  const want = await forward(params, small, tokens, 1, 16, gemm);
  const path = join(dir, "m.gguf");
  await exportGguf(path, small, params, { name: "test" });
  const loaded = await loadGguf(path);
  assert.deepEqual(loaded.config, validateConfig(small));
  assert.deepEqual(await forward(loaded.params, loaded.config, tokens, 1, 16, gemm), want);
  // Half precision: the same model up to rounding.
  await exportGguf(path, small, params, { dtype: "F16" });
  const half = await loadGguf(path);
  assert.ok(maxAbsDiff(await forward(half.params, half.config, tokens, 1, 16, gemm), want) < 1e-2);
  await assert.rejects(
    exportGguf(path, { ...small, vocabSize: 10 }, initParams({ ...small, vocabSize: 10 }, rng)),
    /vocabulary/,
  );
});

test("export: Hugging Face safetensors round trip gives the same logits", async () => {
  const rng = new Rng(6);
  const params = initParams(small, rng);
  const tokens = randomTokens(16, rng);
  const want = await forward(params, small, tokens, 1, 16, gemm);
  const hfDir = join(dir, "hf");
  await exportHfSafetensors(hfDir, small, params);
  const loaded = await loadHfSafetensors(hfDir);
  assert.deepEqual(loaded.config, validateConfig(small));
  for (const [name, w] of params) assert.deepEqual(loaded.params.get(name), w, name);
  assert.deepEqual(await forward(loaded.params, loaded.config, tokens, 1, 16, gemm), want);
});
