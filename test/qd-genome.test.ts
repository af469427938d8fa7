import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { createTsGemm } from "../src/linalg/index.ts";
import {
  loadOrComputeFactors,
  type MatrixFactors,
  materialiseGguf,
  type SeedFactors,
  taskVector,
} from "../src/materialise/index.ts";
import {
  Archive,
  aggregate,
  crossover,
  type Genome,
  gaussianMutation,
  noiseField,
  seedGenome,
  svdMutation,
} from "../src/qd/index.ts";
import type { FloatDType } from "../src/tensors/dtype.ts";
import { type GgufReader, openGguf, writeGguf } from "../src/tensors/gguf.ts";
import { Rng } from "../src/util/rng.ts";
import { writeTinyLlamaGguf } from "./helpers/tiny-gguf.ts";

const K = 3;
let dir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "cycleqd-qd-genome-"));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Zoo {
  base: string;
  experts: string[];
}

/** A tiny random base and K experts = base + small random deltas, same metadata. */
async function makeZoo(name: string, dtype: FloatDType = "F32", nEmbd = 32): Promise<Zoo> {
  const base = join(dir, `${name}-base.gguf`);
  await writeTinyLlamaGguf(base, { nEmbd, nLayer: 1, nHead: 4, nFf: 48, seed: 1, dtype });
  const experts: string[] = [];
  const reader = await openGguf(base);
  try {
    for (let k = 0; k < K; k++) {
      const path = join(dir, `${name}-expert${k}.gguf`);
      await writeExpert(reader, path, 100 + k);
      experts.push(path);
    }
  } finally {
    await reader.close();
  }
  return { base, experts };
}

async function writeExpert(base: GgufReader, path: string, seed: number): Promise<void> {
  const rng = new Rng(seed);
  await writeGguf(
    path,
    base.metadata,
    base.tensors.map((t) => ({
      name: t.name,
      dtype: t.dtype as FloatDType,
      shape: t.shape,
      data: async () => {
        const x = await base.read(t.name);
        for (let i = 0; i < x.length; i++) x[i] += rng.normal(0, 0.02);
        return x;
      },
    })),
  );
}

/** Every tensor's τ_k = θ_k − θ₀ in float64, straight from the files. */
async function directTaskVectors(zoo: Zoo): Promise<Map<string, Float64Array>[]> {
  const base = await openGguf(zoo.base);
  const out: Map<string, Float64Array>[] = [];
  for (const path of zoo.experts) {
    const ex = await openGguf(path);
    const m = new Map<string, Float64Array>();
    for (const t of base.tensors) {
      const b = await base.read(t.name);
      const x = await ex.read(t.name);
      m.set(
        t.name,
        Float64Array.from(x, (v, i) => v - b[i]),
      );
    }
    out.push(m);
    await ex.close();
  }
  await base.close();
  return out;
}

type Direct = Map<string, Float64Array>;

function mix(terms: [number, Direct][]): Direct {
  const out: Direct = new Map();
  for (const [name, x] of terms[0][1]) {
    const y = new Float64Array(x.length);
    for (const [w, d] of terms) {
      const z = d.get(name) as Float64Array;
      for (let i = 0; i < y.length; i++) y[i] += w * z[i];
    }
    out.set(name, y);
  }
  return out;
}

/** τ += U_q diag(r ⊙ s_q) V_qᵀ on every matrix, r in layout order. */
async function addSvdMutation(d: Direct, factors: SeedFactors, q: number, r: Float64Array) {
  const out: Direct = new Map();
  let j = 0;
  for (const t of factors.tensors) {
    const y = Float64Array.from(d.get(t.name) as Float64Array);
    if (t.kind === "matrix") {
      const f = (await factors.get(t.name)) as MatrixFactors;
      const { rows, cols, rank } = f;
      for (let c = 0; c < rank; c++, j++) {
        const w = r[j] * f.s[q][c];
        for (let i = 0; i < rows; i++) {
          const ui = f.u[q][i * rank + c] * w;
          for (let x = 0; x < cols; x++) y[i * cols + x] += ui * f.v[q][x * rank + c];
        }
      }
    }
    out.set(t.name, y);
  }
  assert.equal(j, r.length);
  return out;
}

function addNoise(d: Direct, seed: number, sigma: number): Direct {
  const out: Direct = new Map();
  for (const [name, x] of d) {
    const z = noiseField(seed, name, x.length);
    out.set(
      name,
      Float64Array.from(x, (v, i) => v + sigma * z[i]),
    );
  }
  return out;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** θ₀ + τ of the direct path against the materialised GGUF, tensor by tensor. */
async function assertModelEquals(path: string, zoo: Zoo, tau: Direct, tol: number) {
  const out = await openGguf(path);
  const base = await openGguf(zoo.base);
  try {
    assert.deepEqual(
      out.tensors.map((t) => [t.name, t.dtype, t.shape.join("x")]),
      base.tensors.map((t) => [t.name, t.dtype, t.shape.join("x")]),
    );
    for (const t of base.tensors) {
      const b = await base.read(t.name);
      const want = Float64Array.from(tau.get(t.name) as Float64Array, (v, i) => b[i] + v);
      const diff = maxAbsDiff(await out.read(t.name), want);
      assert.ok(diff <= tol, `${t.name}: max |Δ| ${diff} > ${tol}`);
    }
  } finally {
    await out.close();
    await base.close();
  }
}

describe("seed factors", () => {
  let zoo: Zoo;
  before(async () => {
    zoo = await makeZoo("cache");
  });

  test("cache: miss, then hit, then miss again when an input file changes", async () => {
    const cacheDir = join(dir, "cache");
    const first = await loadOrComputeFactors(zoo.base, zoo.experts, cacheDir);
    assert.equal(first.fromCache, false);
    assert.equal(first.seeds, K);
    await first.close();
    const again = await loadOrComputeFactors(zoo.base, zoo.experts, cacheDir);
    assert.equal(again.fromCache, true);
    assert.equal(again.key, first.key);
    await again.close();
    // Another rank is another entry.
    const r4 = await loadOrComputeFactors(zoo.base, zoo.experts, cacheDir, { rank: 4 });
    assert.equal(r4.fromCache, false);
    assert.notEqual(r4.key, first.key);
    await r4.close();
    // Rewrite expert 1 with other deltas: its bytes change, so the key does.
    const base = await openGguf(zoo.base);
    await writeExpert(base, zoo.experts[1], 999);
    await base.close();
    const changed = await loadOrComputeFactors(zoo.base, zoo.experts, cacheDir);
    assert.equal(changed.fromCache, false);
    assert.notEqual(changed.key, first.key);
    await changed.close();
    const entries = (await readdir(cacheDir)).sort();
    assert.equal(entries.length, 3, `no temporary directories are left: ${entries}`);
  });

  test("factors cover every tensor: matrices (embeddings and head too) get SVDs", async () => {
    const f = await loadOrComputeFactors(zoo.base, zoo.experts, join(dir, "cache2"), { rank: 4 });
    try {
      const kinds = new Map(f.tensors.map((t) => [t.name, t.kind]));
      assert.equal(kinds.get("token_embd.weight"), "matrix");
      assert.equal(kinds.get("output.weight"), "matrix");
      assert.equal(kinds.get("blk.0.attn_norm.weight"), "vector");
      assert.ok(f.layout.has("output.weight"));
      assert.equal(f.layout.matrix("blk.0.ffn_down.weight").rank, 4);
      const m = (await f.get("blk.0.ffn_down.weight")) as MatrixFactors;
      assert.equal(m.residual.length, K);
      assert.ok(m.residual.every((e) => e !== null));
      for (let i = 1; i < m.rank; i++) assert.ok(m.s[0][i] <= m.s[0][i - 1]);
    } finally {
      await f.close();
    }
  });
});

/**
 * A chain of crossovers and mutations, rebuilt by genome + materialise and by the same
 * arithmetic on full task vectors.
 */
async function chainAgrees(name: string, rank: "full" | number, exactMaxDim?: number) {
  const zoo = await makeZoo(name);
  const factors = await loadOrComputeFactors(zoo.base, zoo.experts, join(dir, `${name}-cache`), {
    rank,
    exactMaxDim,
  });
  const base = await openGguf(zoo.base);
  try {
    const tau = await directTaskVectors(zoo);
    const layout = factors.layout;
    const seeds = [0, 1, 2].map((k) => seedGenome(layout, k));
    const rng = new Rng(11); // its first crossover draws a negative weight
    // Wide ω so that negative weights occur somewhere in the chain.
    const xo = { mu: 1, sigma: 0.8 };

    // Each seed genome rebuilds its expert.
    for (let k = 0; k < K; k++) {
      for (const t of factors.tensors) {
        const d = maxAbsDiff(
          await taskVector(seeds[k], factors, t.name),
          tau[k].get(t.name) as Float64Array,
        );
        assert.ok(d < 1e-7, `seed ${k} ${t.name}: ${d}`);
      }
    }

    if (rank !== "full") {
      // Below full rank the low-rank part alone misses τ_k: the residual is what closes it.
      const lowOnly = { ...seeds[0], a: new Float64Array(K) };
      const d = maxAbsDiff(
        await taskVector(lowOnly, factors, "output.weight"),
        tau[0].get("output.weight") as Float64Array,
      );
      assert.ok(d > 1e-3, `the residual should matter at rank ${rank}: ${d}`);
    }

    const c1 = crossover(seeds[0], seeds[1], rng, xo);
    let direct = mix([
      [c1.draws.weights[0], tau[0]],
      [c1.draws.weights[1], tau[1]],
    ]);
    const m1 = svdMutation(c1.child, layout, 2, rng, 0.5);
    if (m1.draws.kind !== "svd") throw new Error("expected svd draws");
    const d1 = await addSvdMutation(direct, factors, 2, m1.draws.r);

    const c2 = crossover(m1.child, seeds[2], rng, xo);
    direct = mix([
      [c2.draws.weights[0], d1],
      [c2.draws.weights[1], tau[2]],
    ]);
    const m2 = gaussianMutation(c2.child, rng, 3e-3);
    if (m2.draws.kind !== "gaussian") throw new Error("expected gaussian draws");
    const d2 = addNoise(direct, m2.draws.seed, m2.draws.sigma);

    const c3 = crossover(m2.child, m1.child, rng, xo);
    direct = mix([
      [c3.draws.weights[0], d2],
      [c3.draws.weights[1], d1],
    ]);
    const m3 = svdMutation(c3.child, layout, 0, rng, 0.1);
    if (m3.draws.kind !== "svd") throw new Error("expected svd draws");
    const d3 = await addSvdMutation(direct, factors, 0, m3.draws.r);
    const weights = [c1, c2, c3].flatMap((c) => c.draws.weights);

    // Float64 task vectors agree closely; the written F32 model within F32 rounding.
    for (const t of factors.tensors) {
      const d = maxAbsDiff(
        await taskVector(m3.child, factors, t.name),
        d3.get(t.name) as Float64Array,
      );
      assert.ok(d < 1e-6, `${t.name}: ${d}`);
    }
    const out = join(dir, `${name}-child.gguf`);
    await materialiseGguf(out, m3.child, base, factors);
    await assertModelEquals(out, zoo, d3, 1e-6);
    // The certified GEMM route writes the loops' model, byte for byte.
    const gemm = createTsGemm();
    const viaGemm = join(dir, `${name}-child-gemm.gguf`);
    await materialiseGguf(viaGemm, m3.child, base, factors, { gemm });
    assert.ok((await readFile(viaGemm)).equals(await readFile(out)), "certified bytes differ");
    return { weights, noise: m3.child.noise.length };
  } finally {
    await base.close();
    await factors.close();
  }
}

describe("exact compact genomes", () => {
  test("a chain of crossovers and SVD/Gaussian mutations rebuilds exactly (full rank)", async () => {
    const { weights, noise } = await chainAgrees("chain-full", "full");
    assert.ok(
      weights.some((w) => w < 0),
      `the chain should include a negative weight: ${weights}`,
    );
    assert.equal(noise, 1);
  });

  test("the same at truncated rank R = 4: the residual E keeps it exact", async () => {
    await chainAgrees("chain-r4", 4);
  });

  test("the same with randomized SVD factors (R = 4, no exact Jacobi)", async () => {
    await chainAgrees("chain-rand", 4, 0);
  });

  test("aggregation of the archives' best elites materialises Σ β τ*", async () => {
    const zoo = await makeZoo("agg");
    const factors = await loadOrComputeFactors(zoo.base, zoo.experts, join(dir, "agg-cache"), {
      rank: 6,
    });
    const base = await openGguf(zoo.base);
    try {
      const tau = await directTaskVectors(zoo);
      const ranges = [0, 1, 2].map(() => [0, 1] as const);
      const archives = [0, 1, 2].map(
        (task) => new Archive<Genome>({ task, numTasks: 3, bins: 3, ranges }),
      );
      const scores = [
        [0.9, 0.1, 0.2],
        [0.1, 0.6, 0.3],
        [0.2, 0.2, 0.4],
      ];
      for (let k = 0; k < K; k++) {
        for (const a of archives)
          a.offer({ id: k, scores: scores[k], payload: seedGenome(factors.layout, k) });
      }
      const agg = aggregate(archives);
      assert.deepEqual(
        agg.elites.map((e) => e.id),
        [0, 1, 2],
      );
      const z = Math.exp(0.9) + Math.exp(0.6) + Math.exp(0.4);
      const beta = [Math.exp(0.9) / z, Math.exp(0.6) / z, Math.exp(0.4) / z];
      agg.beta.forEach((b, k) => {
        assert.ok(Math.abs(b - beta[k]) < 1e-12);
      });
      const out = join(dir, "agg.gguf");
      await materialiseGguf(out, agg.genome, base, factors);
      await assertModelEquals(
        out,
        zoo,
        mix(beta.map((b, k) => [b, tau[k]] as [number, Direct])),
        2e-5,
      );
    } finally {
      await base.close();
      await factors.close();
    }
  });

  test("materialiseGguf copies every metadata key and keeps F16 tensors F16", async () => {
    const zoo = await makeZoo("f16", "F16");
    const factors = await loadOrComputeFactors(zoo.base, zoo.experts, join(dir, "f16-cache"), {
      rank: 8,
    });
    const base = await openGguf(zoo.base);
    try {
      const out = join(dir, "f16-seed1.gguf");
      await materialiseGguf(out, seedGenome(factors.layout, 1), base, factors);
      const r = await openGguf(out);
      const ex = await openGguf(zoo.experts[1]);
      try {
        assert.deepEqual([...r.metadata.keys()], [...base.metadata.keys()]);
        assert.deepEqual([...r.metadata.values()], [...base.metadata.values()]);
        assert.equal(r.info("blk.0.attn_q.weight").dtype, "F16");
        assert.equal(r.info("blk.0.attn_norm.weight").dtype, "F32");
        // The seed genome gives back the expert, up to F16 rounding of θ₀ + τ.
        for (const t of ex.tensors) {
          const d = maxAbsDiff(await r.read(t.name), await ex.read(t.name));
          assert.ok(d <= 2e-3, `${t.name}: ${d}`);
        }
      } finally {
        await r.close();
        await ex.close();
      }
      const asF32 = join(dir, "f16-as-f32.gguf");
      await materialiseGguf(asF32, seedGenome(factors.layout, 1), base, factors, { dtype: "F32" });
      const r32 = await openGguf(asF32);
      assert.equal(r32.info("blk.0.attn_q.weight").dtype, "F32");
      await r32.close();
    } finally {
      await base.close();
      await factors.close();
    }
  });

  test("a genome from other factors is refused", async () => {
    const zoo = await makeZoo("refuse");
    const f4 = await loadOrComputeFactors(zoo.base, zoo.experts, join(dir, "refuse-cache"), {
      rank: 4,
    });
    const f2 = await loadOrComputeFactors(zoo.base, zoo.experts, join(dir, "refuse-cache"), {
      rank: 2,
    });
    const base = await openGguf(zoo.base);
    try {
      await assert.rejects(
        materialiseGguf(join(dir, "never.gguf"), seedGenome(f4.layout, 0), base, f2),
        /layout needs/,
      );
    } finally {
      await base.close();
      await f4.close();
      await f2.close();
    }
  });
});

describe("low-rank kernels", () => {
  test("the dot kernel, here and on worker threads, gives the axpy kernel's bits, zero weights and zero entries included", async () => {
    const { addLowRank } = await import("../src/materialise/lowrank.ts");
    const { createDotPool } = await import("../src/materialise/dot-pool.ts");
    const pool = createDotPool(2);
    after(() => pool.dispose());
    const rng = new Rng(7);
    for (const [rows, cols, rank] of [
      [9, 13, 5],
      [32, 17, 17],
      [3, 1, 1],
    ]) {
      const terms = Array.from({ length: 3 }, () => {
        const u = Float32Array.from({ length: rows * rank }, () =>
          rng.uniform() < 0.1 ? 0 : rng.uniform() - 0.5,
        );
        const v = Float32Array.from({ length: cols * rank }, () => rng.uniform() - 0.5);
        const w = Float64Array.from({ length: rank }, () =>
          rng.uniform() < 0.3 ? 0 : (rng.uniform() - 0.5) * 3,
        );
        return { u, v, w, rank };
      });
      const start = Float64Array.from({ length: rows * cols }, () => rng.uniform() - 0.5);
      const dot = Float64Array.from(start);
      const axpy = Float64Array.from(start);
      await addLowRank(dot, terms, rows, cols, { kernel: "dot" });
      await addLowRank(axpy, terms, rows, cols, { kernel: "axpy" });
      const pooled = Float64Array.from(start);
      await addLowRank(pooled, terms, rows, cols, { pool });
      assert.deepEqual(Buffer.from(dot.buffer), Buffer.from(axpy.buffer));
      assert.deepEqual(Buffer.from(pooled.buffer), Buffer.from(axpy.buffer));
      assert.notDeepEqual(dot, start, "the terms changed nothing");
    }
  });
});
