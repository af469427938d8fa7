/**
 * Materialisation on the shipped zoo, the three kernels in one run: the time to write
 * one child's GGUF from its genome, split into the low-rank part and the rest, for genomes
 * with every seed's components active (what a search makes after a few generations), and
 * whether all kernels write the same bytes.
 *
 *   node --import tsx bench/materialise.ts [GENOMES]
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createGemm } from "../src/linalg/index.ts";
import { createDotPool } from "../src/materialise/dot-pool.ts";
import { materialiseGguf } from "../src/materialise/index.ts";
import type { Genome } from "../src/qd/index.ts";
import { defaultConfig } from "../src/run/config.ts";
import { runFactors } from "../src/run/seed-factors.ts";
import { openGguf } from "../src/tensors/gguf.ts";
import { Rng } from "../src/util/rng.ts";

const count = Number(process.argv[2] ?? 6);
if (!(Number.isInteger(count) && count > 0))
  throw new Error("usage: bench/materialise.ts [GENOMES > 0]");

const config = defaultConfig();
const factors = await runFactors(
  config,
  config.models.base,
  config.skills.map((s) => config.models.experts[s]),
);
const base = await openGguf(config.models.base);
// As the runner's evaluator does: one thread.
const gemm = await createGemm({ threads: 1, warn: () => {} });
const work = await mkdtemp(join(tmpdir(), "cycleqd-bench-materialise-"));
const rng = new Rng(1);
const genomes: Genome[] = Array.from({ length: count }, () => ({
  a: Float64Array.from({ length: factors.seeds }, () => rng.uniform()),
  c: Float64Array.from({ length: factors.layout.size }, () => rng.uniform() * 0.6),
  noise: [],
}));

// Oldest: the axpy kernel in this thread; old: the float64 dot kernel on worker threads (one
// per core); new: the certified float64 GEMM (certified.ts), the same workers prefetching.
const pool = createDotPool();
const kernels = ["axpy", "dot", "certified"] as const;
const ms: Record<string, number[]> = { axpy: [], dot: [], certified: [] };
let identical = 0;
try {
  for (const [i, g] of genomes.entries()) {
    const bytes = new Map<string, Buffer>();
    // Rotate which kernel goes first, so none always gets the warmer caches.
    const order = kernels.map((_, j) => kernels[(i + j) % kernels.length]);
    for (const kernel of order) {
      const path = join(work, `${kernel}.gguf`);
      const t = performance.now();
      // The loops alone define the bits; the certified kernel gets them from the GEMM.
      await materialiseGguf(path, g, base, factors, {
        kernel,
        ...(kernel === "certified" ? { gemm } : {}),
        ...(kernel === "axpy" ? {} : { pool }),
      });
      ms[kernel].push(performance.now() - t);
      bytes.set(kernel, await readFile(path));
    }
    const ref = bytes.get("axpy") as Buffer;
    if (kernels.every((k) => ref.equals(bytes.get(k) as Buffer))) identical++;
  }
} finally {
  await gemm.dispose();
  await pool.dispose();
  await base.close();
  await factors.close();
  await rm(work, { recursive: true, force: true });
}

const mean = (xs: number[]) => xs.slice(1).reduce((a, b) => a + b, 0) / Math.max(1, xs.length - 1);
const median = (xs: number[]) => [...xs.slice(1)].sort((a, b) => a - b)[(xs.length - 1) >> 1];
const row = (label: string, k: string) =>
  console.log(
    `${label.padEnd(28)} mean ${mean(ms[k]).toFixed(0).padStart(5)} ms, median ${median(ms[k]).toFixed(0).padStart(5)} ms per child`,
  );
console.log(`zoo base ${config.models.base}; ${count} genomes (first one is warm-up)`);
row("oldest (axpy kernel)", "axpy");
row("old (float64 dot, workers)", "dot");
row("new (certified float64 GEMM)", "certified");
console.log(`ratio oldest / new          ${(mean(ms.axpy) / mean(ms.certified)).toFixed(2)}×`);
console.log(`ratio old / new             ${(mean(ms.dot) / mean(ms.certified)).toFixed(2)}×`);
console.log(`identical bytes (all three) ${identical}/${count}`);
