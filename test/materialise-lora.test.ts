import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { createLlamaCppEngine, type Engine, type EngineModel } from "../src/engine/index.ts";
import { loadOrComputeFactors, materialiseGguf } from "../src/materialise/index.ts";
import { lowRankFactors, writeLoraAdapter } from "../src/materialise/lora.ts";
import { crossover, type Genome, seedGenome, svdMutation } from "../src/qd/index.ts";
import { openGguf } from "../src/tensors/gguf.ts";
import { Rng } from "../src/util/rng.ts";
import { writeNoisyCopy, writeTinyLlamaGguf } from "./helpers/tiny-gguf.ts";

let dir: string;
let engine: Engine;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "cycleqd-lora-"));
  engine = await createLlamaCppEngine({ threads: 1, parallel: 2, gpu: false });
});

after(async () => {
  await engine?.dispose();
  await rm(dir, { recursive: true, force: true });
});

const PROMPTS = ["def add(a, b):", "SELECT name FROM t", "ls -la /tmp | wc"];

interface Run {
  logprobs: number[][];
  greedy: string[];
}

async function run(model: EngineModel): Promise<Run> {
  const scored = await model.score(
    PROMPTS.map((p) => ({ prompt: p.slice(0, 6), continuation: p.slice(6) })),
  );
  const generated = await model.generate(PROMPTS.map((prompt) => ({ prompt, maxTokens: 6 })));
  return { logprobs: scored.map((s) => s.logprobs), greedy: generated.map((g) => g.text) };
}

function maxDiff(a: Run, b: Run): number {
  let d = 0;
  a.logprobs.forEach((row, i) => {
    row.forEach((x, j) => {
      d = Math.max(d, Math.abs(x - b.logprobs[i][j]));
    });
  });
  return d;
}

test("base + a child's LoRA adapter runs as the child materialised without residuals", async (t) => {
  const basePath = join(dir, "base.gguf");
  await writeTinyLlamaGguf(basePath, { nEmbd: 32, nLayer: 1, nFf: 48, seed: 5 });
  const base = await openGguf(basePath);
  const experts: string[] = [];
  for (let k = 0; k < 2; k++) {
    const path = join(dir, `expert${k}.gguf`);
    await writeNoisyCopy(base, path, new Rng(50 + k));
    experts.push(path);
  }
  const factors = await loadOrComputeFactors(basePath, experts, join(dir, "cache"), { rank: 4 });
  const layout = factors.layout;
  const rng = new Rng(3);
  const child = (g0: number, g1: number): Genome =>
    svdMutation(
      crossover(seedGenome(layout, g0), seedGenome(layout, g1), rng).child,
      layout,
      1,
      rng,
    ).child;
  const children = [child(0, 1), child(1, 0)];
  const lowRank = lowRankFactors(factors);
  const fullPaths: string[] = [];
  for (const [i, g] of children.entries()) {
    const p = join(dir, `child${i}.gguf`);
    await materialiseGguf(p, g, base, lowRank, { dtype: "F32" });
    fullPaths.push(p);
  }

  // The adapter: A and B of rank K·R per matrix, the embedding's pair flipped; no norms.
  const adapterPath = join(dir, "child0.lora.gguf");
  await writeLoraAdapter(children[0], factors, adapterPath);
  const adapter = await openGguf(adapterPath);
  assert.equal(adapter.metadata.get("general.type")?.value, "adapter");
  assert.equal(adapter.metadata.get("adapter.type")?.value, "lora");
  const shapes = new Map(adapter.tensors.map((x) => [x.name, x.shape.join("x")]));
  assert.equal(shapes.get("blk.0.ffn_gate.weight.lora_a"), "8x32");
  assert.equal(shapes.get("blk.0.ffn_gate.weight.lora_b"), "48x8");
  assert.equal(
    shapes.get("token_embd.weight.lora_a"),
    `${base.info("token_embd.weight").shape[0]}x8`,
  );
  assert.equal(shapes.get("token_embd.weight.lora_b"), "32x8");
  assert.ok(![...shapes.keys()].some((n) => n.includes("norm")), "no 1-D tensor in the adapter");
  await adapter.close();

  const held = await engine.loadBase(basePath);
  const plain = await engine.loadModel(basePath);
  const baseRun = await run(plain);
  await plain.dispose();
  try {
    for (const [i, g] of children.entries()) {
      // The same path for both children: the engine frees an adapter with its context, so the
      // second child's file is read afresh rather than served from node-llama-cpp's cache.
      if (i > 0) await writeLoraAdapter(g, factors, adapterPath);
      const withAdapter = await held.withAdapter(adapterPath);
      const got = await run(withAdapter);
      await withAdapter.dispose();
      const full = await engine.loadModel(fullPaths[i]);
      const want = await run(full);
      await full.dispose();
      const d = maxDiff(got, want);
      t.diagnostic(`child ${i}: max |Δ log p| adapter vs full ${d.toExponential(2)}`);
      assert.ok(d < 1e-4, `child ${i}: max |Δ log p| ${d}`);
      assert.deepEqual(got.greedy, want.greedy, `child ${i}: greedy text`);
      const fromBase = maxDiff(got, baseRun);
      t.diagnostic(`child ${i}: max |Δ log p| to the base ${fromBase.toExponential(2)}`);
      assert.ok(fromBase > 0.05, `child ${i} runs like the base: ${fromBase}`);
    }

    // A missing adapter, and one made for another model, fail with the path named.
    await assert.rejects(held.withAdapter(join(dir, "none.gguf")), /not found: .*none\.gguf/);
    await assert.rejects(held.withAdapter(experts[0]), /expert0\.gguf/);
  } finally {
    await held.dispose();
  }
  await assert.rejects(held.withAdapter(adapterPath), /disposed/);

  // Gaussian noise has no adapter form.
  const noisy = { ...children[0], noise: [{ seed: 1, sigma: 0.01, weight: 1 }] };
  await assert.rejects(writeLoraAdapter(noisy, factors, join(dir, "x.gguf")), /Gaussian/);

  // Factors without residuals give the same low-rank model, at a fraction of the cache.
  const lean = await loadOrComputeFactors(basePath, experts, join(dir, "cache"), {
    rank: 4,
    residual: false,
  });
  assert.notEqual(lean.key, factors.key);
  assert.ok(lean.tensors.every((x) => !x.residual));
  const leanPath = join(dir, "child0-lean.gguf");
  await materialiseGguf(leanPath, children[0], base, lowRankFactors(lean), { dtype: "F32" });
  assert.deepEqual(await readFile(leanPath), await readFile(fullPaths[0]));
  await lean.close();
  await base.close();
  await factors.close();
});
