import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { getLlama, type Llama, LlamaLogLevel, type Token } from "node-llama-cpp";
import { loadOrComputeFactors, materialiseGguf } from "../src/materialise/index.ts";
import { crossover, type Genome, seedGenome, svdMutation } from "../src/qd/index.ts";
import { openGguf, writeGguf } from "../src/tensors/gguf.ts";
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

interface Run {
  /** llama.cpp's next-token log-probabilities over the whole vocabulary, per position. */
  logprobs: Float64Array[];
  /** Greedy continuation. */
  greedy: Token[];
}

/** Loads `modelPath` in llama.cpp, scores `prompt` at every position and continues it. */
async function runModel(modelPath: string, prompt: Token[], vocab: number): Promise<Run> {
  const model = await llama.loadModel({ modelPath });
  try {
    const context = await model.createContext({
      contextSize: 64,
      threads: 1,
      flashAttention: false,
      experimentalKvCacheKeyType: "F32",
      experimentalKvCacheValueType: "F32",
    });
    try {
      const seq = context.getSequence();
      const scored = await seq.controlledEvaluate(
        prompt.map((t) => [
          t,
          { generateNext: { probabilities: true, options: { temperature: 0 } } },
        ]),
      );
      const logprobs = scored.map((o) => {
        const row = new Float64Array(vocab).fill(-Infinity);
        for (const [t, p] of o?.next.probabilities ?? []) row[t] = Math.log(p);
        return row;
      });
      await seq.clearHistory();
      const greedy: Token[] = [];
      for await (const t of seq.evaluate(prompt, { temperature: 0 })) {
        greedy.push(t);
        if (greedy.length === 4) break;
      }
      return { logprobs, greedy };
    } finally {
      await context.dispose();
    }
  } finally {
    await model.dispose();
  }
}

/** Largest |Δ log p| over the tokens of non-negligible probability in either run. */
function maxDiff(a: Run, b: Run): number {
  let d = 0;
  a.logprobs.forEach((row, i) => {
    row.forEach((x, v) => {
      const y = b.logprobs[i][v];
      if (Math.max(x, y) > Math.log(1e-6)) d = Math.max(d, Math.abs(x - y));
    });
  });
  return d;
}

test("llama.cpp loads and runs a materialised child of two experts", async (t) => {
  const basePath = join(dir, "base.gguf");
  const cfg = await writeTinyLlamaGguf(basePath, { nEmbd: 32, nLayer: 1, nFf: 48, seed: 5 });
  const base = await openGguf(basePath);
  const layoutOfBase = base.tensors.map((x) => [x.name, [...x.shape]]);
  const experts: string[] = [];
  for (let k = 0; k < 2; k++) {
    const path = join(dir, `expert${k}.gguf`);
    await writeNoisyCopy(base, path, new Rng(50 + k));
    experts.push(path);
  }
  const factors = await loadOrComputeFactors(basePath, experts, join(dir, "cache"), { rank: 8 });
  const rng = new Rng(1);
  const layout = factors.layout;
  const child: Genome = svdMutation(
    crossover(seedGenome(layout, 0), seedGenome(layout, 1), rng).child,
    layout,
    1,
    rng,
  ).child;
  // A child of both experts: a blend of their task vectors, then a move along expert 1's
  // singular directions.
  assert.ok(child.a[0] > 0.3 && child.a[1] > 0.3, `seed weights ${child.a}`);
  assert.ok(Math.abs(child.a[0] + child.a[1] - 1) < 1e-12);
  const modelPath = join(dir, "child.gguf");
  await materialiseGguf(modelPath, child, base, factors);

  // The child's weights from the dense formula of an exact genome (src/qd/genome.ts), with
  // the task vectors τ_k read from the expert files: θ = θ₀ + Σ_k a_k τ_k, plus for matrices
  // Σ_k U_k diag((c_k − a_k) ⊙ s_k) V_kᵀ (the residual E_k = τ_k − U_k diag(s_k) V_kᵀ).
  const readers = await Promise.all(experts.map((p) => openGguf(p)));
  const reference = new Map<string, Float32Array>();
  for (const info of base.tensors) {
    const theta0 = await base.read(info.name);
    const w = Float64Array.from(theta0);
    for (const [k, r] of readers.entries()) {
      const tau = await r.read(info.name);
      for (let i = 0; i < w.length; i++) w[i] += child.a[k] * (tau[i] - theta0[i]);
    }
    const f = await factors.get(info.name);
    if (f.kind === "matrix") {
      const m = layout.matrix(info.name);
      for (let k = 0; k < 2; k++) {
        for (let j = 0; j < f.rank; j++) {
          const coef = (child.c[m.offset + k * m.rank + j] - child.a[k]) * f.s[k][j];
          for (let row = 0; row < f.rows; row++) {
            const u = coef * f.u[k][row * f.rank + j];
            for (let col = 0; col < f.cols; col++)
              w[row * f.cols + col] += u * f.v[k][col * f.rank + j];
          }
        }
      }
    }
    reference.set(info.name, Float32Array.from(w));
  }
  await Promise.all(readers.map((r) => r.close()));
  const refPath = join(dir, "reference.gguf");
  await writeGguf(
    refPath,
    base.metadata,
    base.tensors.map((x) => ({
      name: x.name,
      dtype: "F32" as const,
      shape: [...x.shape],
      data: reference.get(x.name) as Float32Array,
    })),
  );
  await base.close();
  await factors.close();

  // The file holds those weights, under the base's names, shapes and metadata.
  const file = await openGguf(modelPath);
  try {
    assert.deepEqual(
      file.tensors.map((x) => [x.name, [...x.shape]]),
      layoutOfBase,
    );
    assert.equal(file.metadata.get("general.architecture")?.value, "llama");
    for (const [name, want] of reference) {
      const got = await file.read(name);
      let err = 0;
      for (let i = 0; i < got.length; i++) err = Math.max(err, Math.abs(got[i] - want[i]));
      assert.ok(err < 1e-5, `${name}: max |Δ| ${err}`);
    }
  } finally {
    await file.close();
  }

  // llama.cpp loads the file and runs the child: the same next-token distribution at every
  // position as on the reference weights, and a clearly different one from the base's and
  // each expert's.
  const vocab = cfg.nVocab;
  const model = await llama.loadModel({ modelPath });
  const prompt = [model.tokens.bos as Token, ...model.tokenize("def add(a, b): return a + b")];
  await model.dispose();
  const got = await runModel(modelPath, prompt, vocab);
  const want = await runModel(refPath, prompt, vocab);
  for (const row of got.logprobs) {
    let mass = 0;
    for (const x of row) mass += Math.exp(x);
    assert.ok(Math.abs(mass - 1) < 1e-3, `probabilities sum to ${mass}`);
  }
  assert.equal(got.greedy.length, 4);
  for (const tok of got.greedy) assert.ok(tok >= 0 && tok < vocab);
  assert.deepEqual(got.greedy, want.greedy, "greedy tokens of the child");
  const toReference = maxDiff(got, want);
  t.diagnostic(`max |Δ log p| to the reference weights: ${toReference.toExponential(2)}`);
  assert.ok(toReference < 1e-4, `max |Δ log p| ${toReference}`);
  for (const [label, path] of [
    ["the base", basePath],
    ["expert 0", experts[0]],
    ["expert 1", experts[1]],
  ]) {
    const d = maxDiff(got, await runModel(path, prompt, vocab));
    t.diagnostic(`max |Δ log p| to ${label}: ${d.toExponential(2)}`);
    assert.ok(d > 0.05, `llama.cpp runs the child like ${label}: max |Δ log p| ${d}`);
  }
});
