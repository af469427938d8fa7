import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { getLlama, type Llama, LlamaLogLevel, type Token } from "node-llama-cpp";
import { openGguf, writeGguf } from "../src/tensors/gguf.ts";
import {
  tinyLlamaConfig,
  tinyLlamaMetadata,
  tinyLlamaTensors,
  writeTinyLlamaGguf,
} from "./helpers/tiny-gguf.ts";

let dir: string;
let llama: Llama;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "cycleqd-gguf-llama-"));
  llama = await getLlama({ build: "never", gpu: false, logLevel: LlamaLogLevel.error });
});

after(async () => {
  await llama?.dispose();
  await rm(dir, { recursive: true, force: true });
});

for (const dtype of ["F32", "F16", "BF16"] as const) {
  test(`llama.cpp loads a tiny ${dtype} llama written by writeGguf and evaluates tokens`, async () => {
    const modelPath = join(dir, `tiny-${dtype}.gguf`);
    const cfg = await writeTinyLlamaGguf(modelPath, { dtype, seed: 7 });

    const reader = await openGguf(modelPath);
    assert.deepEqual(reader.ne("token_embd.weight"), [cfg.nEmbd, cfg.nVocab]);
    assert.deepEqual(reader.ne("blk.0.ffn_down.weight"), [cfg.nFf, cfg.nEmbd]);
    assert.equal(reader.info("blk.0.attn_norm.weight").dtype, "F32");
    await reader.close();

    const model = await llama.loadModel({ modelPath });
    try {
      assert.equal(model.tokens.bos, 1);
      assert.equal(model.tokens.eos, 2);
      const tokens = model.tokenize("hi there");
      assert.ok(tokens.length > 0);
      assert.equal(model.detokenize(tokens), "hi there");

      const context = await model.createContext({ contextSize: cfg.contextLength, threads: 1 });
      try {
        const sequence = context.getSequence();
        const prompt = [model.tokens.bos as Token, ...tokens];
        const generated = await collect(sequence.evaluate(prompt, { temperature: 0 }), 4);
        assert.equal(generated.length, 4);
        for (const t of generated) assert.ok(t >= 0 && t < cfg.nVocab);
      } finally {
        await context.dispose();
      }
    } finally {
      await model.dispose();
    }
  });
}

test("llama.cpp honours a non-default general.alignment written by writeGguf", async () => {
  // Norm tensors of 24 floats (96 bytes) make the padding differ between alignments 32 and 64.
  const cfg = tinyLlamaConfig({ seed: 3, nEmbd: 24, nFf: 40 });
  const firstTokens = async (alignment: number) => {
    const modelPath = join(dir, `tiny-align${alignment}.gguf`);
    await writeGguf(modelPath, tinyLlamaMetadata(cfg), tinyLlamaTensors(cfg), { alignment });
    const model = await llama.loadModel({ modelPath });
    try {
      const context = await model.createContext({ contextSize: cfg.contextLength, threads: 1 });
      const prompt = model.tokenize("abc");
      const out = await collect(context.getSequence().evaluate(prompt, { temperature: 0 }), 6);
      await context.dispose();
      return out;
    } finally {
      await model.dispose();
    }
  };
  assert.deepEqual(await firstTokens(64), await firstTokens(32));
});

async function collect(gen: AsyncIterable<Token>, n: number): Promise<Token[]> {
  const out: Token[] = [];
  for await (const t of gen) {
    out.push(t);
    if (out.length === n) break;
  }
  return out;
}
