import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  Archive,
  activeTask,
  activeTaskName,
  aggregate,
  archiveMetrics,
  betterElite,
  binIndex,
  CycleQD,
  childMetrics,
  crossover,
  decodeGenome,
  drawPair,
  type Elite,
  eliteWeights,
  encodeGenome,
  type Genome,
  GenomeLayout,
  gaussianMutation,
  genomeByteSize,
  layoutForShapes,
  matrixCoefficients,
  mutate,
  paperBinRanges,
  seedGenome,
  selectParents,
  softmax,
  svdMutation,
} from "../src/qd/index.ts";
import { Rng } from "../src/util/rng.ts";

const close = (a: number, b: number, tol = 1e-12) =>
  assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b} (tol ${tol})`);

/** An Rng whose normal() returns scripted values, for hand-computed crossovers. */
function scriptedNormals(values: number[]): Rng {
  const rest = [...values];
  return {
    normal: () => {
      const v = rest.shift();
      if (v === undefined) throw new Error("script exhausted");
      return v;
    },
  } as unknown as Rng;
}

const unitRanges = (k: number) => Array.from({ length: k }, () => [0, 1] as const);

describe("archive", () => {
  test("bins: equal parts of [lo, hi]; below lo → 0, at or above hi → last", () => {
    assert.equal(binIndex(-0.1, [0, 1], 4), 0);
    assert.equal(binIndex(0, [0, 1], 4), 0);
    assert.equal(binIndex(0.24, [0, 1], 4), 0);
    assert.equal(binIndex(0.25, [0, 1], 4), 1);
    assert.equal(binIndex(0.3, [0, 1], 4), 1);
    assert.equal(binIndex(0.74, [0, 1], 4), 2);
    assert.equal(binIndex(0.75, [0, 1], 4), 3);
    assert.equal(binIndex(1, [0, 1], 4), 3);
    assert.equal(binIndex(1.5, [0, 1], 4), 3);
    // [0.2, 0.6] in 4 bins of 0.1: 0.35 → bin 1, 0.45 → bin 2.
    assert.equal(binIndex(0.35, [0.2, 0.6], 4), 1);
    assert.equal(binIndex(0.45, [0.2, 0.6], 4), 2);
    assert.throws(() => binIndex(Number.NaN, [0, 1], 4), /finite/);
  });

  test("paper ranges: 0.85 × weakest seed, 1.15 × strongest; an all-equal axis gets width 1", () => {
    const r = paperBinRanges([
      [0.8, 0.2, 0],
      [0.3, 0.9, 0],
      [0.4, 0.1, 0],
    ]);
    close(r[0][0], 0.85 * 0.3);
    close(r[0][1], 1.15 * 0.8);
    close(r[1][0], 0.85 * 0.1);
    close(r[1][1], 1.15 * 0.9);
    assert.deepEqual(r[2], [0, 1]);
    assert.throws(() => paperBinRanges([[0.1, Number.NaN]]), /finite/);
  });

  test("cells are row-major over the BC axes in task order", () => {
    const a = new Archive<string>({ task: 0, numTasks: 3, bins: 4, ranges: unitRanges(3) });
    assert.equal(a.numCells, 16);
    assert.deepEqual(a.bcTasks, [1, 2]);
    // BC task 1: 0.3 → bin 1; BC task 2: 0.9 → bin 3; cell 1·4 + 3.
    assert.equal(a.cellOf([0.5, 0.3, 0.9]), 7);
    assert.equal(a.cellKey(7), "1,3");
    assert.deepEqual(a.cellCoords(7), [1, 3]);
    const b = new Archive<string>({ task: 1, numTasks: 3, bins: 4, ranges: unitRanges(3) });
    assert.equal(b.cellOf([0.5, 0.3, 0.9]), 2 * 4 + 3);
  });

  test("insertion: empty cell, strictly better replaces, ties and worse are rejected", () => {
    const a = new Archive<string>({ task: 0, numTasks: 3, bins: 4, ranges: unitRanges(3) });
    assert.deepEqual(a.offer({ id: 1, scores: [0.5, 0.3, 0.9], payload: "a" }), {
      outcome: "new-cell",
      cell: 7,
    });
    assert.deepEqual(a.offer({ id: 2, scores: [0.4, 0.26, 0.8], payload: "b" }), {
      outcome: "rejected",
      cell: 7,
      incumbent: 1,
    });
    assert.equal(a.offer({ id: 3, scores: [0.5, 0.3, 0.8], payload: "c" }).outcome, "rejected");
    assert.deepEqual(a.offer({ id: 4, scores: [0.6, 0.49, 0.76], payload: "d" }), {
      outcome: "improved",
      cell: 7,
      incumbent: 1,
    });
    assert.equal(a.get(7)?.id, 4);
    assert.equal(a.offer({ id: 5, scores: [0.1, 0.9, 0.1], payload: "e" }).outcome, "new-cell");
    assert.equal(a.size, 2);
    assert.equal(a.best()?.id, 4);
  });

  test("the best elite: highest quality, then the highest mean score, then the lowest id", () => {
    const a = new Archive<string>({ task: 0, numTasks: 3, bins: 4, ranges: unitRanges(3) });
    // Equal quality 0.7 in three cells; the one that holds more of the other skills wins,
    // whatever cell it sits in.
    a.offer({ id: 7, scores: [0.7, 0.9, 0.1], payload: "x" });
    a.offer({ id: 3, scores: [0.7, 0.1, 0.1], payload: "y" });
    a.offer({ id: 5, scores: [0.7, 0.6, 0.6], payload: "z" });
    assert.equal(a.best()?.id, 5);
    a.offer({ id: 9, scores: [0.7, 0.5, 0.7], payload: "w" }); // same mean as 5: lower id wins
    assert.equal(a.best()?.id, 5);
    a.offer({ id: 11, scores: [0.71, 0, 0], payload: "v" }); // quality first
    assert.equal(a.best()?.id, 11);
    assert.ok(betterElite({ id: 2, scores: [0.5, 0.5] }, { id: 1, scores: [0.5, 0.4] }, 0));
    assert.ok(!betterElite({ id: 2, scores: [0.5, 0.4] }, { id: 1, scores: [0.5, 0.4] }, 0));
  });

  test("a child is offered to every archive, each judging its own quality", () => {
    const archives = [0, 1, 2].map(
      (task) => new Archive<string>({ task, numTasks: 3, bins: 4, ranges: unitRanges(3) }),
    );
    for (const a of archives) a.offer({ id: 0, scores: [0.5, 0.5, 0.5], payload: "seed" });
    // Seed cells: (2,2) everywhere. Child BCs: A_0 (0.6, 0.5) → (2,2), same cell, higher
    // quality → improved; A_1 (0.9, 0.5) → (3,2) and A_2 (0.9, 0.6) → (3,2): new cells.
    const child = { id: 1, scores: [0.9, 0.6, 0.5], payload: "child" };
    const results = archives.map((a) => a.offer(child));
    assert.deepEqual(
      results.map((r) => r.outcome),
      ["improved", "new-cell", "new-cell"],
    );
    assert.deepEqual(childMetrics(results), {
      outcomes: ["improved", "new-cell", "new-cell"],
      entered: 3,
      newCells: 2,
      improved: 1,
    });
    // A_0: cell (2,2) again, 0.1 < 0.9 → rejected; A_1, A_2: BC task 0 = 0.1 → bin 0, new.
    const worse = archives.map((a) => a.offer({ id: 2, scores: [0.1, 0.5, 0.5], payload: "w" }));
    assert.deepEqual(
      worse.map((r) => r.outcome),
      ["rejected", "new-cell", "new-cell"],
    );
  });
});

describe("cycle", () => {
  test("flip interval 1 rotates every generation, 2 every second", () => {
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6, 7].map((g) => activeTask(g, 3)),
      [0, 1, 2, 0, 1, 2, 0],
    );
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6, 7].map((g) => activeTask(g, 3, 2)),
      [0, 0, 1, 1, 2, 2, 0],
    );
    assert.equal(activeTaskName(5, ["code", "os", "db"], 2), "db");
    assert.throws(() => activeTask(0, 3), /counts from 1/);
  });
});

describe("sampling", () => {
  // Three elites of A_0; task 1 is constant, so it contributes factor 1.
  // task 0: .2/.6/.4 → norm 0/1/.5 → .5/.8/.65; task 2: .1/.3/.5 → 0/.5/1 → .5/.65/.8.
  const scores = [
    [0.2, 0.5, 0.1],
    [0.6, 0.5, 0.3],
    [0.4, 0.5, 0.5],
  ];
  const gammaByHand = [0.5 * 0.5, 0.8 * 0.65, 0.65 * 0.8];

  test("γ by hand, a constant dimension contributes factor 1", () => {
    const g = eliteWeights(scores);
    gammaByHand.forEach((x, i) => {
      close(g[i], x);
    });
    assert.deepEqual(
      eliteWeights([
        [0.3, 0.3],
        [0.3, 0.3],
      ]),
      [1, 1],
    );
  });

  test("parents: distinct, first ∝ γ, second ∝ γ among the rest (empirical frequencies)", () => {
    const a = new Archive<null>({ task: 0, numTasks: 3, bins: 4, ranges: unitRanges(3) });
    scores.forEach((s, id) => {
      assert.equal(a.offer({ id, scores: s, payload: null }).outcome, "new-cell");
    });
    const total = gammaByHand.reduce((x, y) => x + y, 0);
    const first = gammaByHand.map((g) => g / total);
    // P(unordered pair {i, j}) = P(i)·γ_j/(Σ−γ_i) + P(j)·γ_i/(Σ−γ_j)
    const pair = (i: number, j: number) =>
      first[i] * (gammaByHand[j] / (total - gammaByHand[i])) +
      first[j] * (gammaByHand[i] / (total - gammaByHand[j]));
    const rng = new Rng(42);
    const n = 20000;
    const firstCount = [0, 0, 0];
    const pairCount = new Map<string, number>();
    for (let t = 0; t < n; t++) {
      const sel = selectParents([a], 0, rng);
      const [p, q] = sel.parents.map((e) => e.id);
      assert.notEqual(p, q);
      assert.equal(sel.fallback, "none");
      firstCount[p]++;
      const key = [p, q].sort().join(",");
      pairCount.set(key, (pairCount.get(key) ?? 0) + 1);
    }
    firstCount.forEach((c, i) => {
      close(c / n, first[i], 0.015);
    });
    close((pairCount.get("0,1") ?? 0) / n, pair(0, 1), 0.015);
    close((pairCount.get("0,2") ?? 0) / n, pair(0, 2), 0.015);
    close((pairCount.get("1,2") ?? 0) / n, pair(1, 2), 0.015);
    // By hand: P(first = 0) = .25 / 1.29.
    close(first[0], 0.25 / 1.29, 1e-12);
  });

  test("uniform sampling draws every elite equally often", () => {
    const a = new Archive<null>({ task: 0, numTasks: 3, bins: 4, ranges: unitRanges(3) });
    scores.forEach((s, id) => {
      a.offer({ id, scores: s, payload: null });
    });
    const rng = new Rng(7);
    const count = [0, 0, 0];
    for (let t = 0; t < 9000; t++) {
      const { parents } = selectParents([a], 0, rng, { method: "uniform" });
      count[parents[0].id]++;
    }
    for (const c of count) close(c / 9000, 1 / 3, 0.02);
  });

  test("one elite in A_q: the second parent comes from the other archives, else it repeats", () => {
    const mk = (task: number) =>
      new Archive<null>({ task, numTasks: 2, bins: 3, ranges: unitRanges(2) });
    const a0 = mk(0);
    const a1 = mk(1);
    a0.offer({ id: 1, scores: [0.5, 0.5], payload: null });
    a1.offer({ id: 1, scores: [0.5, 0.5], payload: null });
    let sel = selectParents([a0, a1], 0, new Rng(1));
    assert.equal(sel.fallback, "same-parent");
    assert.deepEqual(
      sel.parents.map((e) => e.id),
      [1, 1],
    );
    a1.offer({ id: 2, scores: [0.45, 0.9], payload: null }); // same A_0 cell, lower: not in A_0
    sel = selectParents([a0, a1], 0, new Rng(1));
    assert.equal(sel.fallback, "other-archives");
    assert.deepEqual(
      sel.parents.map((e) => e.id),
      [1, 2],
    );
    assert.throws(() => selectParents([mk(0), mk(1)], 0, new Rng(1)), /empty/);
  });

  test("drawPair never repeats an index", () => {
    const rng = new Rng(3);
    for (let i = 0; i < 200; i++) {
      const [x, y] = drawPair([1, 1e-9], rng);
      assert.notEqual(x, y);
    }
  });
});

describe("operators", () => {
  const layout = new GenomeLayout(3, [
    { name: "w1", rank: 2 },
    { name: "w2", rank: 1 },
  ]);
  const g0 = seedGenome(layout, 0);
  const g1 = seedGenome(layout, 1);

  test("seed genomes: a = e_k, c_k = 1, other c = 0", () => {
    assert.deepEqual([...g1.a], [0, 1, 0]);
    assert.deepEqual([...matrixCoefficients(g1, layout, "w1")], [0, 0, 1, 1, 0, 0]);
    assert.deepEqual([...matrixCoefficients(g1, layout, "w2")], [0, 1, 0]);
    assert.equal(layout.size, 9);
  });

  test("crossover normalises ω₁, ω₂ and allows negative weights", () => {
    const { child, draws } = crossover(g0, g1, scriptedNormals([1.5, -0.5]));
    assert.deepEqual(draws.weights, [1.5, -0.5]);
    assert.deepEqual([...child.a], [1.5, -0.5, 0]);
    assert.deepEqual([...matrixCoefficients(child, layout, "w1")], [1.5, 1.5, -0.5, -0.5, 0, 0]);
    const x = crossover(g0, g1, scriptedNormals([1.02, 0.98]));
    close(x.draws.weights[0], 1.02 / 2);
    close(x.child.a[1], 0.98 / 2);
  });

  test("crossover redraws when ω₁ + ω₂ is near 0", () => {
    const { draws } = crossover(g0, g1, scriptedNormals([1, -1, 2, 2]));
    assert.equal(draws.resamples, 1);
    assert.deepEqual(draws.omega, [2, 2]);
    assert.deepEqual(draws.weights, [0.5, 0.5]);
  });

  test("crossover with default N(1, 0.01²) stays near the average", () => {
    const { child, draws } = crossover(g0, g1, new Rng(5));
    for (const w of draws.weights) close(w, 0.5, 0.05);
    close(child.a[0] + child.a[1], 1, 1e-12);
  });

  test("SVD mutation adds r ~ U(0, w_max) to c_q only", () => {
    const { child, draws } = svdMutation(g0, layout, 2, new Rng(9), 0.1);
    assert.equal(draws.kind, "svd");
    if (draws.kind !== "svd") return;
    assert.equal(draws.r.length, 3);
    for (const r of draws.r) assert.ok(r >= 0 && r < 0.1);
    assert.deepEqual(
      [...matrixCoefficients(child, layout, "w1")],
      [1, 1, 0, 0, draws.r[0], draws.r[1]],
    );
    assert.deepEqual([...matrixCoefficients(child, layout, "w2")], [1, 0, draws.r[2]]);
    assert.deepEqual([...child.a], [...g0.a]);
    assert.equal(draws.summary.count, 3);
    assert.deepEqual([...g0.c], [...seedGenome(layout, 0).c], "the parent is untouched");
  });

  test("Gaussian mutation records a seed, none changes nothing", () => {
    const { child, draws } = gaussianMutation(g0, new Rng(1), 3e-4);
    assert.equal(draws.kind, "gaussian");
    assert.equal(child.noise.length, 1);
    assert.equal(child.noise[0].sigma, 3e-4);
    assert.equal(child.noise[0].weight, 1);
    // Crossover scales the noise with its parent's weight.
    const x = crossover(child, g1, scriptedNormals([3, 1]));
    assert.equal(x.child.noise[0].weight, 0.75);
    const none = mutate(g0, layout, 0, new Rng(1), { kind: "none" });
    assert.deepEqual(none.draws, { kind: "none" });
    assert.deepEqual([...none.child.c], [...g0.c]);
  });
});

describe("aggregation and metrics", () => {
  const layout = new GenomeLayout(2, [{ name: "w", rank: 1 }]);
  const archives = [0, 1].map(
    (task) => new Archive<Genome>({ task, numTasks: 2, bins: 2, ranges: unitRanges(2) }),
  );
  const offer = (id: number, scores: number[], genome: Genome) => {
    for (const a of archives) a.offer({ id, scores, payload: genome });
  };
  offer(0, [0.8, 0.1], seedGenome(layout, 0));
  offer(1, [0.3, 0.6], seedGenome(layout, 1));
  offer(2, [0.9, 0.2], seedGenome(layout, 0)); // same cells as id 0 in both, better in both

  test("β = softmax of each archive's best quality, merged genome Σ β g*", () => {
    const agg = aggregate(archives);
    assert.deepEqual(
      agg.elites.map((e) => e.id),
      [2, 1],
    );
    const e0 = Math.exp(0.9);
    const e1 = Math.exp(0.6);
    close(agg.beta[0], e0 / (e0 + e1));
    close(agg.beta[1], e1 / (e0 + e1));
    close(agg.genome.a[0], agg.beta[0]);
    close(agg.genome.c[1], agg.beta[1]);
    assert.deepEqual(softmax([1000, 1000]), [0.5, 0.5]);
  });

  test("filled cells, coverage, QD score and best quality", () => {
    // A_0 (BC = task 1 in 2 bins): 0 → bin 0, 1 → bin 1, 2 → bin 0 improves 0.
    const m0 = archiveMetrics(archives[0]);
    assert.deepEqual(m0, {
      task: 0,
      filled: 2,
      cells: 2,
      coverage: 1,
      qdScore: 0.9 + 0.3,
      bestQuality: 0.9,
    });
    // A_1 (BC = task 0): 0 → bin 1 (0.8), 1 → bin 0 (0.3), 2 → bin 1, 0.2 > 0.1 improves.
    const m1 = archiveMetrics(archives[1]);
    close(m1.qdScore, 0.6 + 0.2);
    assert.equal(m1.bestQuality, 0.6);
    const empty = new Archive({ task: 0, numTasks: 3, bins: 15, ranges: unitRanges(3) });
    assert.deepEqual(archiveMetrics(empty), {
      task: 0,
      filled: 0,
      cells: 225,
      coverage: 0,
      qdScore: 0,
      bestQuality: null,
    });
  });
});

describe("genome serialisation and sizes", () => {
  const layout = new GenomeLayout(3, [
    { name: "a", rank: 3 },
    { name: "b", rank: 2 },
  ]);

  test("the binary form round-trips bit for bit", () => {
    const g = seedGenome(layout, 1);
    g.c[4] = Math.PI / 7;
    g.a[2] = -1e-300;
    g.noise.push({ seed: 4000000000, sigma: 3e-4, weight: 1 / 3 });
    const bytes = encodeGenome(g, layout);
    assert.equal(bytes.length, genomeByteSize(layout, 1));
    assert.equal(bytes.length, 28 + 8 * (3 + 15) + 20);
    assert.deepEqual(decodeGenome(bytes, layout), g);
    const other = new GenomeLayout(3, [{ name: "a", rank: 3 }]);
    assert.throws(() => decodeGenome(bytes, other), /layout/);
  });

  test("genome bytes vs checkpoint bytes: default tiny model and Llama-3-8B", (t) => {
    const tiny = llamaShapes({ vocab: 355, dim: 128, layers: 4, ffn: 352, kv: 128 });
    const tinyParams = tiny.reduce((s, x) => s + x.shape.reduce((a, b) => a * b, 1), 0);
    const tinyFull = layoutForShapes(tiny, 3, "full");
    assert.equal(tinyFull.size, 3 * (128 + 128 + 4 * (4 * 128 + 3 * 128)));
    const llama8b = llamaShapes({ vocab: 128256, dim: 4096, layers: 32, ffn: 14336, kv: 1024 });
    const params8b = llama8b.reduce((s, x) => s + x.shape.reduce((a, b) => a * b, 1), 0);
    assert.equal(params8b, 8030261248);
    const full8b = layoutForShapes(llama8b, 3, "full");
    const r64 = layoutForShapes(llama8b, 3, 64);
    assert.equal(full8b.size, 3 * (2 * 4096 + 32 * (5 * 4096 + 2 * 1024)));
    assert.equal(r64.size, 3 * 64 * (2 + 32 * 7));
    for (const [name, params, layout, bytesPer] of [
      ["tiny (F32), full rank", tinyParams, tinyFull, 4],
      ["tiny (F32), R=16", tinyParams, layoutForShapes(tiny, 3, 16), 4],
      ["Llama-3-8B (BF16), full rank", params8b, full8b, 2],
      ["Llama-3-8B (BF16), R=64", params8b, r64, 2],
    ] as const) {
      t.diagnostic(
        `${name}: genome ${genomeByteSize(layout)} B vs checkpoint ${params * bytesPer} B (${params} params)`,
      );
    }
  });
});

/** Tensor shapes ([out, in]) of a llama model, untied output head. */
function llamaShapes(c: { vocab: number; dim: number; layers: number; ffn: number; kv: number }) {
  const out: { name: string; shape: number[] }[] = [
    { name: "token_embd.weight", shape: [c.vocab, c.dim] },
  ];
  for (let i = 0; i < c.layers; i++) {
    const b = `blk.${i}`;
    out.push(
      { name: `${b}.attn_norm.weight`, shape: [c.dim] },
      { name: `${b}.attn_q.weight`, shape: [c.dim, c.dim] },
      { name: `${b}.attn_k.weight`, shape: [c.kv, c.dim] },
      { name: `${b}.attn_v.weight`, shape: [c.kv, c.dim] },
      { name: `${b}.attn_output.weight`, shape: [c.dim, c.dim] },
      { name: `${b}.ffn_norm.weight`, shape: [c.dim] },
      { name: `${b}.ffn_gate.weight`, shape: [c.ffn, c.dim] },
      { name: `${b}.ffn_up.weight`, shape: [c.ffn, c.dim] },
      { name: `${b}.ffn_down.weight`, shape: [c.dim, c.ffn] },
    );
  }
  out.push(
    { name: "output_norm.weight", shape: [c.dim] },
    { name: "output.weight", shape: [c.vocab, c.dim] },
  );
  return out;
}

describe("CycleQD ask/tell", () => {
  const tasks = ["code", "os", "db"];
  const layout = new GenomeLayout(3, [
    { name: "w1", rank: 2 },
    { name: "w2", rank: 3 },
  ]);
  // A stand-in evaluator: scores depend smoothly on the genome's seed weights.
  const evaluate = (g: Genome) =>
    [0, 1, 2].map((k) => Math.min(1, Math.max(0, 0.2 + 0.6 * g.a[k] + 0.1 * g.c[k])));
  const seedScores = [
    [0.8, 0.2, 0.1],
    [0.2, 0.7, 0.2],
    [0.1, 0.3, 0.6],
  ];

  const make = (seed: number) => new CycleQD({ tasks, layout, seed, bins: 5 });

  function run(seed: number, generations: number) {
    const qd = make(seed);
    qd.initialise(seedScores);
    const log: string[] = [];
    for (let g = 1; g <= generations; g++) {
      const ask = qd.ask(g);
      const tell = qd.tell(ask, evaluate(ask.genome));
      log.push(`${ask.id}:${ask.task}:${ask.parents}:${tell.metrics.outcomes}`);
    }
    return { qd, log };
  }

  test("initialise offers the seeds to every archive; ask cycles tasks; tell offers to all", () => {
    const qd = make(1);
    const init = qd.initialise(seedScores);
    assert.equal(init.length, 3);
    for (const a of qd.archives) assert.equal(a.size, 3);
    const ask = qd.ask(2);
    assert.equal(ask.task, 1);
    assert.equal(ask.taskName, "os");
    assert.equal(ask.id, 4, "child g has id K + g - 1");
    assert.notEqual(ask.parents[0], ask.parents[1]);
    assert.equal(ask.draws.mutation.kind, "svd");
    assert.throws(() => qd.tell(ask, [0.5, 0.5]), /3 tasks/);
    const tell = qd.tell(ask, [0.9, 0.9, 0.9]);
    assert.equal(tell.outcomes.length, 3);
    assert.ok(tell.outcomes.every((o) => o.outcome !== "rejected"));
    assert.equal(qd.aggregate().elites[0].id, 4);
    assert.equal(qd.bestMeanElite().id, 4);
  });

  test("the contract: generations from 1, each asked child told once, never an unasked one", () => {
    const qd = make(1);
    qd.initialise(seedScores);
    assert.throws(() => qd.ask(0), /count from 1/);
    const a = qd.ask(1);
    assert.throws(() => qd.tell({ id: a.id + 1 }, [0.5, 0.5, 0.5]), /never asked/);
    qd.tell(a, [0.5, 0.5, 0.5]);
    assert.throws(() => qd.tell(a, [0.5, 0.5, 0.5]), /already told/);
    assert.throws(() => qd.ask(1), /already told/);
    assert.throws(() => qd.replay(1, a.genome, [0.5, 0.5, 0.5]), /already in the search/);
  });

  test("a child's draws depend only on the seed and its generation, whatever ran before", () => {
    const a = run(11, 12);
    assert.deepEqual(run(11, 12).log, a.log);
    assert.notDeepEqual(run(12, 12).log, a.log);
    // Steady state: children 2 and 3 asked before 1 is told see the same archives as
    // child 1 did, so child 3 asked first or last is the same child.
    const qd = make(11);
    qd.initialise(seedScores);
    const third = qd.ask(3);
    const again = make(11);
    again.initialise(seedScores);
    assert.deepEqual(again.ask(3).genome, third.genome);
  });

  test("replaying recorded children rebuilds the archives, and the search continues identically", () => {
    const straight = run(11, 12);
    // What a run store keeps of each finished child: its generation, genome and scores.
    const first = make(11);
    first.initialise(seedScores);
    const records = [1, 2, 3, 4, 5, 6].map((g) => {
      const ask = first.ask(g);
      const scores = evaluate(ask.genome);
      first.tell(ask, scores);
      return { g, genome: ask.genome, scores };
    });
    const resumed = make(11);
    resumed.initialise(seedScores);
    for (const r of records) resumed.replay(r.g, r.genome, r.scores);
    assert.deepEqual(resumed.metrics(), first.metrics());
    const log: string[] = [];
    for (let g = 7; g <= 12; g++) {
      const ask = resumed.ask(g);
      const tell = resumed.tell(ask, evaluate(ask.genome));
      log.push(`${ask.id}:${ask.task}:${ask.parents}:${tell.metrics.outcomes}`);
    }
    assert.deepEqual(log, straight.log.slice(6));
    assert.deepEqual(resumed.metrics(), straight.qd.metrics());
  });

  test("config errors name the problem", () => {
    assert.throws(() => new CycleQD({ tasks: ["a", "b"], layout, seed: 1 }), /3 seed experts/);
    assert.throws(() => new CycleQD({ tasks, layout, seed: 0.5 }), /seed must be an integer/);
    const qd = make(1);
    assert.throws(() => qd.ask(1), /initialise/);
  });

  test("elite payloads are the genomes the archives hold", () => {
    const { qd } = run(3, 9);
    const elites: Elite<Genome>[] = qd.archives.flatMap((a) => a.elites());
    for (const e of elites) assert.equal(e.payload.c.length, layout.size);
  });
});
