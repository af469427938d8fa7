/**
 * Materialisation on the shipped zoo, old kernel against new in one run: the time to write
 * one child's GGUF from its genome, split into the low-rank part and the rest, for genomes
 * with every seed's components active (what a search makes after a few generations), and
 * whether both kernels write the same bytes.
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
// As the runner's evaluator does: one thread, products above 2^24 multiply-adds on the GEMM.
const gemm = await createGemm({ threads: 1, warn: () => {} });
const work = await mkdtemp(join(tmpdir(), "cycleqd-bench-materialise-"));
const rng = new Rng(1);
const genomes: Genome[] = Array.from({ length: count }, () => ({
  a: Float64Array.from({ length: factors.seeds }, () => rng.uniform()),
  c: Float64Array.from({ length: factors.layout.size }, () => rng.uniform() * 0.6),
  noise: [],
}));

// Old: the axpy kernel in this thread; new: the dot kernel on worker threads (one per core).
const pool = createDotPool();
const kernels = ["axpy", "dot"] as const;
const ms: Record<string, number[]> = { axpy: [], dot: [] };
let identical = 0;
try {
  for (const [i, g] of genomes.entries()) {
    const bytes: Buffer[] = [];
    // Alternate which kernel goes first, so neither always gets the warmer caches.
    for (const kernel of i % 2 ? [...kernels].reverse() : kernels) {
      const path = join(work, `${kernel}.gguf`);
      const t = performance.now();
      await materialiseGguf(path, g, base, factors, {
        gemm,
        kernel,
        ...(kernel === "dot" ? { pool } : {}),
      });
      ms[kernel].push(performance.now() - t);
      bytes.push(await readFile(path));
    }
    if (bytes[0].equals(bytes[1])) identical++;
  }
} finally {
  await gemm.dispose();
  await pool.dispose();
  await rm(work, { recursive: true, force: true });
}

const mean = (xs: number[]) => xs.slice(1).reduce((a, b) => a + b, 0) / Math.max(1, xs.length - 1);
console.log(`zoo base ${config.models.base}; ${count} genomes (first one is warm-up)`);
console.log(`old (axpy kernel)  ${mean(ms.axpy).toFixed(0).padStart(5)} ms per child`);
console.log(`new (dot, workers) ${mean(ms.dot).toFixed(0).padStart(5)} ms per child`);
console.log(`ratio old / new    ${(mean(ms.axpy) / mean(ms.dot)).toFixed(2)}×`);
console.log(`identical bytes    ${identical}/${count}`);
