/**
 * Foundation benchmark: GEMM throughput of the two backends, onnxruntime's per-call
 * overhead, batched products of attention shape, and the SVD costs that the task-vector
 * factorisation pays. Run with `npm run bench:foundation`; name sections to run only those
 * (`npm run bench:foundation -- batched overhead`). Numbers are wall-clock on whatever else
 * is running.
 */
import { availableParallelism, cpus } from "node:os";
import type { Gemm } from "../src/linalg/gemm.ts";
import { createGemm, svdJacobi, svdRandomized } from "../src/linalg/index.ts";
import { Rng } from "../src/util/rng.ts";

const rng = new Rng(2024);

function gaussian(len: number): Float32Array {
  const out = new Float32Array(len);
  for (let i = 0; i < len; i++) out[i] = rng.normal();
  return out;
}

/** Mean milliseconds per call: one warm-up, then repeats until `budgetMs` has passed. */
async function timeIt(f: () => Promise<unknown>, budgetMs: number, maxReps = 1e6) {
  await f();
  const t0 = performance.now();
  let reps = 0;
  while (reps < maxReps && (reps === 0 || performance.now() - t0 < budgetMs)) {
    await f();
    reps++;
  }
  return { ms: (performance.now() - t0) / reps, reps };
}

function table(head: string[], rows: string[][]): void {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) =>
    r.map((c, i) => (i === 0 ? c.padEnd : c.padStart).call(c, widths[i])).join("  ");
  console.log(line(head));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const r of rows) console.log(line(r));
  console.log();
}

const gflops = (m: number, k: number, n: number, ms: number) => (2 * m * k * n) / ms / 1e6;

/** Rows of op(A) given to the TypeScript kernel at the big sizes (its speed is per row). */
const TS_SLAB_ROWS = 256;

async function gemmThroughput(ort: Gemm, ts: Gemm): Promise<void> {
  const rows: string[][] = [];
  for (const [m, k, n] of [
    [512, 512, 512],
    [2048, 2048, 2048],
    [4096, 1024, 4096],
  ]) {
    const a = gaussian(m * k);
    const b = gaussian(k * n);
    const o = await timeIt(() => ort.matmul(a, b, m, k, n), 1500);
    const slab = m > 512 ? TS_SLAB_ROWS : m;
    const aSlab = a.subarray(0, slab * k);
    const t = await timeIt(() => ts.matmul(aSlab, b, slab, k, n), 1500, 3);
    const oG = gflops(m, k, n, o.ms);
    const tG = gflops(slab, k, n, t.ms);
    rows.push([
      `${m}×${k}×${n}`,
      oG.toFixed(1),
      `${o.reps}`,
      tG.toFixed(2),
      slab === m ? `${t.reps}` : `${t.reps} (slab ${slab}×${k}×${n})`,
      `${(oG / tG).toFixed(0)}×`,
    ]);
  }
  console.log("GEMM throughput, C = A·B (float32)");
  table(["m×k×n", "ORT GFLOP/s", "reps", "TS GFLOP/s", "TS reps", "ORT/TS"], rows);
}

async function ortOverhead(ort: Gemm): Promise<void> {
  const rows: string[][] = [];
  for (const [m, k, n, ta, tb] of [
    [1, 1, 1, false, false],
    [128, 128, 128, false, false],
    [4096, 128, 128, false, false],
    [4096, 128, 128, true, false],
    [128, 4096, 128, true, false],
  ] as const) {
    const a = gaussian(m * k);
    const b = gaussian(k * n);
    const r = await timeIt(() => ort.matmul(a, b, m, k, n, { transA: ta, transB: tb }), 1000);
    rows.push([
      `${m}×${k}×${n}${ta ? " (transA)" : ""}`,
      (r.ms * 1000).toFixed(1),
      `${Math.round(1000 / r.ms)}`,
      gflops(m, k, n, r.ms).toFixed(1),
    ]);
  }
  console.log("onnxruntime per-call cost (1×1×1 is the pure overhead)");
  table(["m×k×n", "µs/call", "calls/s", "GFLOP/s"], rows);
}

/** Blocks in flight in the per-block loop that `matmulBatched` is compared with. */
const LOOP_CONCURRENCY = 4;

/** `batch` products block by block through `matmul`, LOOP_CONCURRENCY calls in flight. */
async function perBlock(
  gemm: Gemm,
  a: Float32Array,
  b: Float32Array,
  batch: number,
  m: number,
  k: number,
  n: number,
  opts: { transA: boolean; transB: boolean },
): Promise<Float32Array> {
  const out = new Float32Array(batch * m * n);
  let next = 0;
  const worker = async () => {
    while (next < batch) {
      const i = next++;
      const ai = a.subarray(i * m * k, (i + 1) * m * k);
      const bi = b.subarray(i * k * n, (i + 1) * k * n);
      out.set(await gemm.matmul(ai, bi, m, k, n, opts), i * m * n);
    }
  };
  await Promise.all(Array.from({ length: Math.min(LOOP_CONCURRENCY, batch) }, worker));
  return out;
}

/**
 * Median milliseconds per call of each function, timed in alternating rounds of a few calls
 * until `budgetMs` has passed, so load from other processes hits all of them alike.
 */
async function timeInterleaved(fs: (() => Promise<unknown>)[], budgetMs: number) {
  for (const f of fs) await f();
  const samples: number[][] = fs.map(() => []);
  const t0 = performance.now();
  while (samples[0].length < 5 || performance.now() - t0 < budgetMs) {
    for (const [i, f] of fs.entries()) {
      const s0 = performance.now();
      for (let r = 0; r < 3; r++) await f();
      samples[i].push((performance.now() - s0) / 3);
    }
  }
  return samples.map((x) => x.sort((p, q) => p - q)[x.length >> 1]);
}

/** The tiny LLaMA trainer's attention products: 16 rows × 4 heads, T = 128, head dim 32. */
async function batchedAttention(ort: Gemm): Promise<void> {
  const batch = 64;
  const rows: string[][] = [];
  for (const [m, k, n] of [
    [128, 32, 128],
    [128, 128, 32],
  ]) {
    for (const [transA, transB] of [
      [false, false],
      [true, false],
      [false, true],
      [true, true],
    ]) {
      const a = gaussian(batch * m * k);
      const b = gaussian(batch * k * n);
      const opts = { transA, transB };
      const [one, loop] = await timeInterleaved(
        [
          () => ort.matmulBatched(a, b, batch, m, k, n, opts),
          () => perBlock(ort, a, b, batch, m, k, n, opts),
        ],
        1000,
      );
      const trans = [transA ? "transA" : "", transB ? "transB" : ""].filter(Boolean).join(" ");
      rows.push([
        `${batch}×(${m}×${k}×${n})${trans ? ` ${trans}` : ""}`,
        (one * 1000).toFixed(0),
        (loop * 1000).toFixed(0),
        `${(loop / one).toFixed(2)}×`,
        gflops(batch * m, k, n, one).toFixed(1),
      ]);
    }
  }
  console.log(
    `onnxruntime batched products of attention shape: one matmulBatched call vs ` +
      `a per-block matmul loop (${LOOP_CONCURRENCY} in flight), medians of interleaved rounds`,
  );
  table(["batch×(m×k×n)", "batched µs", "loop µs", "loop/batched", "batched GFLOP/s"], rows);
}

async function svdCosts(ort: Gemm): Promise<void> {
  const [m, n, rank] = [4096, 14336, 64];
  const a = gaussian(m * n);
  const rows: string[][] = [];
  for (let run = 1; run <= 2; run++) {
    const t0 = performance.now();
    const svd = await svdRandomized(ort, a, m, n, rank, { rng: new Rng(run) });
    const wall = performance.now() - t0;
    const { gemmMs, qrMs, smallSvdMs, totalMs } = svd.timings;
    const other = totalMs - gemmMs - qrMs - smallSvdMs;
    rows.push([
      `randomized ${m}×${n} rank ${rank} (run ${run})`,
      wall.toFixed(0),
      gemmMs.toFixed(0),
      qrMs.toFixed(0),
      smallSvdMs.toFixed(0),
      (other + wall - totalMs).toFixed(0),
    ]);
  }
  for (const size of [128, 256]) {
    const x = gaussian(size * size);
    const t0 = performance.now();
    svdJacobi(x, size, size);
    const wall = performance.now() - t0;
    rows.push([`exact Jacobi ${size}×${size}`, wall.toFixed(0), "-", "-", wall.toFixed(0), "-"]);
  }
  console.log("SVD (oversample 10, 2 power iterations; GEMM = onnxruntime)");
  table(["case", "total ms", "gemm ms", "QR ms", "small SVD ms", "other ms"], rows);
  console.log("other = checks, float32↔float64 copies, transposes, the Gaussian test matrix\n");
}

const SECTIONS = ["gemm", "overhead", "batched", "svd"] as const;

async function main(): Promise<void> {
  const only = process.argv.slice(2);
  for (const name of only) {
    if (!(SECTIONS as readonly string[]).includes(name)) {
      throw new Error(`unknown section "${name}"; choose from ${SECTIONS.join(", ")}`);
    }
  }
  const ort = await createGemm({ backend: "onnxruntime" });
  const ts = await createGemm({ backend: "typescript" });
  console.log(
    `cycleqd foundation bench — ${cpus()[0]?.model ?? "cpu"}, ${availableParallelism()} cores, ` +
      `ORT threads = ${availableParallelism()}, Node ${process.version}\n`,
  );
  const sections: Record<(typeof SECTIONS)[number], () => Promise<void>> = {
    gemm: () => gemmThroughput(ort, ts),
    overhead: () => ortOverhead(ort),
    batched: () => batchedAttention(ort),
    svd: () => svdCosts(ort),
  };
  for (const [name, run] of Object.entries(sections)) {
    if (only.length === 0 || only.includes(name)) await run();
  }
  await ort.dispose();
  await ts.dispose();
}

await main();
