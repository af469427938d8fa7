import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { getLlama, type Llama, LlamaLogLevel, type Token } from "node-llama-cpp";
import { loadOrComputeFactors, materialiseGguf } from "../src/materialise/index.ts";
import { crossover, seedGenome, svdMutation } from "../src/qd/index.ts";
import { openGguf } from "../src/tensors/gguf.ts";
import { Rng } from "../src/util/rng.ts";
import { writeNoisyCopy, writeTinyLlamaGguf } from "./helpers/tiny-gguf.ts";

let dir: string;
let llama: Llama;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "cycleqd-qd-llama-"));
  llama = await getLlama({ build: "never", gpu: false, logLevel: LlamaLogLevel.error });
});

after(async () => {
  await llama?.dispose();
  await rm(dir, { recursive: true, force: true });
});

test("llama.cpp loads and runs a materialised child of two experts", async () => {
  const basePath = join(dir, "base.gguf");
  const cfg = await writeTinyLlamaGguf(basePath, { nEmbd: 32, nLayer: 1, nFf: 48, seed: 5 });
  const base = await openGguf(basePath);
  const experts: string[] = [];
  for (let k = 0; k < 2; k++) {
    const path = join(dir, `expert${k}.gguf`);
    await writeNoisyCopy(base, path, new Rng(50 + k));
    experts.push(path);
  }
  const factors = await loadOrComputeFactors(basePath, experts, join(dir, "cache"), { rank: 8 });
  const rng = new Rng(1);
  const layout = factors.layout;
  const child = svdMutation(
    crossover(seedGenome(layout, 0), seedGenome(layout, 1), rng).child,
    layout,
    1,
    rng,
  ).child;
  const modelPath = join(dir, "child.gguf");
  await materialiseGguf(modelPath, child, base, factors);
  await base.close();
  await factors.close();

  const model = await llama.loadModel({ modelPath });
  try {
    const context = await model.createContext({ contextSize: cfg.contextLength, threads: 1 });
    try {
      const prompt = [model.tokens.bos as Token, ...model.tokenize("abc")];
      const out: Token[] = [];
      for await (const t of context.getSequence().evaluate(prompt, { temperature: 0 })) {
        out.push(t);
        if (out.length === 3) break;
      }
      assert.equal(out.length, 3);
      for (const t of out) assert.ok(t >= 0 && t < cfg.nVocab);
    } finally {
      await context.dispose();
    }
  } finally {
    await model.dispose();
  }
});
