/**
 * bench:scale — what a child costs at the paper's model size (Llama-3-8B's shapes), besides
 * evaluation, in exact mode (every child a full GGUF: factors with residuals, certified
 * materialisation) and in low-rank mode (base loaded once, each child a LoRA adapter; factors
 * without residuals) at R = 16 and 64.
 *
 * It writes synthetic F16 models with 8B's tensor shapes (hidden 4096, FFN 14336, 32 heads /
 * 8 KV heads) but `--layers` blocks (default 1) and a vocabulary of `--vocab` rows (default
 * 1024, so that the default run takes about 12 minutes on 2 cores; `--vocab 128256` gives
 * 8B's embedding and head, about half an hour more): a base and K = 3 experts = base + a
 * random rank-8 delta + noise. Every measurement runs in a fresh process
 * and reports that process's peak RSS. Per-tensor times and bytes are extrapolated to 32
 * layers. The streaming check materialises models of two more sizes (vocabulary 32,000;
 * 1 and 2 layers) to show that peak memory follows the largest tensor, not the model.
 *
 *   npm run bench:scale [-- --layers N --vocab V --dir DIR --keep]
 *
 * Disk: about 2 GB per 1-layer model set plus the exact-mode factor cache (K float32
 * residuals, 3 GB; 11 + 15 GB at --vocab 128256); everything is deleted at the end unless
 * --keep.
 */
import { execFileSync } from "node:child_process";
import { mkdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createLlamaCppEngine } from "../src/engine/index.ts";
import { createGemm } from "../src/linalg/index.ts";
import { loadOrComputeFactors, materialiseTensors } from "../src/materialise/index.ts";
import { writeLoraAdapter } from "../src/materialise/lora.ts";
import {
  combineGenomes,
  type Genome,
  type GenomeLayout,
  genomeByteSize,
  layoutForShapes,
  seedGenome,
} from "../src/qd/genome.ts";
import { type GgufValue, gguf, openGguf, writeGguf } from "../src/tensors/gguf.ts";
import type { TensorToWrite } from "../src/tensors/types.ts";
import { tinyVocab } from "../test/helpers/tiny-gguf.ts";

const K = 3;
const HIDDEN = 4096;
const FFN = 14336;
const HEADS = 32;
const KV_HEADS = 8;
const PAPER_LAYERS = 32;
const PAPER_VOCAB = 128256;
const CHILDREN = 1200;

// ---------------------------------------------------------------- synthetic models

interface Shape {
  name: string;
  shape: number[];
  /** Blocks of this tensor in the model: 1 for embeddings, norms of the whole model. */
  perLayer: boolean;
}

function shapes(layers: number, vocab: number): Shape[] {
  const kv = (HIDDEN / HEADS) * KV_HEADS;
  const out: Shape[] = [{ name: "token_embd.weight", shape: [vocab, HIDDEN], perLayer: false }];
  for (let i = 0; i < layers; i++) {
    const b = `blk.${i}`;
    const layer: [string, number[]][] = [
      ["attn_norm", [HIDDEN]],
      ["attn_q", [HIDDEN, HIDDEN]],
      ["attn_k", [kv, HIDDEN]],
      ["attn_v", [kv, HIDDEN]],
      ["attn_output", [HIDDEN, HIDDEN]],
      ["ffn_norm", [HIDDEN]],
      ["ffn_gate", [FFN, HIDDEN]],
      ["ffn_up", [FFN, HIDDEN]],
      ["ffn_down", [HIDDEN, FFN]],
    ];
    for (const [n, s] of layer) out.push({ name: `${b}.${n}.weight`, shape: s, perLayer: true });
  }
  out.push({ name: "output_norm.weight", shape: [HIDDEN], perLayer: false });
  out.push({ name: "output.weight", shape: [vocab, HIDDEN], perLayer: false });
  return out;
}

function metadata(layers: number, vocab: number): Map<string, GgufValue> {
  const v = tinyVocab();
  // The byte vocabulary llama.cpp needs, padded with plain tokens to the vocabulary size.
  for (let i = v.tokens.length; i < vocab; i++) {
    v.tokens.push(`t${i}`);
    v.types.push(1);
    v.scores.push(-i);
  }
  return new Map<string, GgufValue>([
    ["general.architecture", gguf.str("llama")],
    ["general.name", gguf.str("synthetic-llama-3-8b-shapes")],
    ["llama.context_length", gguf.u32(8192)],
    ["llama.embedding_length", gguf.u32(HIDDEN)],
    ["llama.block_count", gguf.u32(layers)],
    ["llama.feed_forward_length", gguf.u32(FFN)],
    ["llama.attention.head_count", gguf.u32(HEADS)],
    ["llama.attention.head_count_kv", gguf.u32(KV_HEADS)],
    ["llama.attention.layer_norm_rms_epsilon", gguf.f32(1e-5)],
    ["llama.rope.dimension_count", gguf.u32(HIDDEN / HEADS)],
    ["llama.vocab_size", gguf.u32(vocab)],
    ["tokenizer.ggml.model", gguf.str("llama")],
    ["tokenizer.ggml.tokens", gguf.arr("string", v.tokens)],
    ["tokenizer.ggml.scores", gguf.arr("float32", v.scores)],
    ["tokenizer.ggml.token_type", gguf.arr("int32", v.types)],
    ["tokenizer.ggml.bos_token_id", gguf.u32(1)],
    ["tokenizer.ggml.eos_token_id", gguf.u32(2)],
    ["tokenizer.ggml.unknown_token_id", gguf.u32(0)],
    ["tokenizer.ggml.add_bos_token", gguf.bool(true)],
    ["tokenizer.ggml.add_space_prefix", gguf.bool(false)],
  ]);
}

/** A fast seeded uniform in [−1, 1) (xorshift32): billions of values, no need for normals. */
function uniform(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 2147483648 - 1;
  };
}

function nameSeed(name: string, salt: number): number {
  let h = 2166136261 ^ salt;
  for (const c of name) h = Math.imul(h ^ c.charCodeAt(0), 16777619);
  return h >>> 0;
}

/**
 * Model `k` (−1: the base): θ₀ regenerated from the tensor's name, so that no model is held
 * in memory; an expert adds a rank-8 delta P·Qᵀ (‖τ‖/‖θ₀‖ ≈ 0.02) and a little noise.
 */
function tensorsOf(list: Shape[], k: number): TensorToWrite[] {
  return list.map((s) => ({
    name: s.name,
    dtype: s.shape.length === 2 ? "F16" : "F32",
    shape: s.shape,
    data: async () => {
      const n = s.shape.reduce((a, b) => a * b, 1);
      const out = new Float32Array(n);
      const base = uniform(nameSeed(s.name, 0));
      const scale = s.shape.length === 2 ? 0.02 : 0.05;
      for (let i = 0; i < n; i++) out[i] = (s.shape.length === 2 ? 0 : 1) + scale * base();
      if (k < 0) return out;
      const r = uniform(nameSeed(s.name, k + 1));
      if (s.shape.length === 1) {
        for (let i = 0; i < n; i++) out[i] += 0.002 * r();
        return out;
      }
      const [rows, cols] = s.shape;
      const R = 8;
      const p = Float32Array.from({ length: rows * R }, () => r());
      const q = Float32Array.from({ length: cols * R }, () => r());
      const amp = (0.02 * 0.02 * 1.7) / Math.sqrt(R / 3); // ≈ 0.02 of θ₀'s RMS per element
      for (let i = 0; i < rows; i++) {
        for (let x = 0; x < cols; x++) {
          let d = 0;
          for (let j = 0; j < R; j++) d += p[i * R + j] * q[x * R + j];
          out[i * cols + x] += amp * d + 0.0002 * r();
        }
      }
      return out;
    },
  }));
}

// ---------------------------------------------------------------- measurements (child process)

interface Measured {
  ms: number;
  maxRssMb: number;
  [key: string]: unknown;
}

const peakMb = () => process.resourceUsage().maxRSS / 1024;

/** A crossover child of all three seeds with some mutation: what a search evaluates. */
function childGenome(layout: GenomeLayout): Genome {
  const g = combineGenomes([
    [0.5, seedGenome(layout, 0)],
    [0.3, seedGenome(layout, 1)],
    [0.2, seedGenome(layout, 2)],
  ]);
  for (let i = 0; i < g.c.length; i += 7) g.c[i] += 0.1;
  return g;
}

/** Times each tensor's thunk (its build, plus the write of the one before, roughly). */
function timedTensors(tensors: TensorToWrite[], times: Map<string, number>): TensorToWrite[] {
  return tensors.map((t) => ({
    ...t,
    data: async () => {
      const t0 = performance.now();
      const d = typeof t.data === "function" ? await t.data() : t.data;
      times.set(t.name, (times.get(t.name) ?? 0) + performance.now() - t0);
      return d;
    },
  }));
}

async function step(args: string[]): Promise<Measured> {
  const [what, dir, rankArg, extra] = args;
  const rank = Number(rankArg);
  const models = [0, 1, 2].map((k) => join(dir, `expert${k}.gguf`));
  const basePath = join(dir, "base.gguf");
  const cache = join(dir, "factors");
  const residual = extra === "exact";
  const t0 = performance.now();
  const done = (more: Record<string, unknown> = {}): Measured => ({
    ms: performance.now() - t0,
    maxRssMb: peakMb(),
    ...more,
  });
  if (what === "build") {
    const [layers, vocab] = [rank, Number(extra)];
    const list = shapes(layers, vocab);
    await writeGguf(basePath, metadata(layers, vocab), tensorsOf(list, -1));
    for (let k = 0; k < K; k++)
      await writeGguf(models[k], metadata(layers, vocab), tensorsOf(list, k));
    return done();
  }
  if (what === "factors") {
    const gemm = await createGemm({ threads: 2, warn: () => {} });
    const perTensor = new Map<string, number>();
    let last = performance.now();
    const f = await loadOrComputeFactors(basePath, models, cache, {
      rank,
      gemm,
      residual,
      onProgress: ({ tensor }) => {
        perTensor.set(tensor, performance.now() - last);
        last = performance.now();
      },
    });
    const bytes = (await stat(join(f.dir, "factors.safetensors"))).size;
    await f.close();
    await gemm.dispose();
    return done({ perTensor: Object.fromEntries(perTensor), bytes });
  }
  const factors = await loadOrComputeFactors(basePath, models, cache, { rank, residual });
  const genome = childGenome(factors.layout);
  const out = join(dir, `child-${what}-${rank}.gguf`);
  const times = new Map<string, number>();
  try {
    if (what === "materialise") {
      const gemm = await createGemm({ threads: 2, warn: () => {} });
      const base = await openGguf(basePath);
      const t1 = performance.now();
      const tensors = materialiseTensors(genome, base, factors, { gemm });
      await writeGguf(out, base.metadata, timedTensors(tensors, times));
      const ms = performance.now() - t1;
      await base.close();
      await gemm.dispose();
      return { ...done(), ms, perTensor: Object.fromEntries(times), bytes: (await stat(out)).size };
    }
    if (what === "adapter") {
      const t1 = performance.now();
      await writeLoraAdapter(genome, factors, out);
      const ms = performance.now() - t1;
      return { ...done(), ms, bytes: (await stat(out)).size };
    }
  } finally {
    await factors.close();
  }
  throw new Error(`bench:scale: unknown step ${what}`);
}

/** Loads a model (or the base, then a child's adapter) through the engine and scores once. */
async function loadStep(args: string[]): Promise<Measured> {
  const [what, model, adapter] = args;
  const engine = await createLlamaCppEngine({
    threads: 2,
    parallel: 1,
    gpu: false,
    contextSize: 64,
  });
  const probe = [{ prompt: "ab", continuation: "cd" }];
  const t0 = performance.now();
  let baseMs = 0;
  if (what === "full") {
    const m = await engine.loadModel(model);
    const ms = performance.now() - t0;
    await m.score(probe);
    await m.dispose();
    await engine.dispose();
    return { ms, maxRssMb: peakMb() };
  }
  const base = await engine.loadBase(model);
  baseMs = performance.now() - t0;
  const t1 = performance.now();
  const child = await base.withAdapter(adapter);
  const ms = performance.now() - t1;
  await child.score(probe);
  await child.dispose();
  await base.dispose();
  await engine.dispose();
  return { ms, baseMs, maxRssMb: peakMb() };
}

// ---------------------------------------------------------------- driver

const self = fileURLToPath(import.meta.url);

function measure(args: string[]): Measured {
  const out = execFileSync(process.execPath, ["--import", "tsx", self, "--step", ...args], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
    maxBuffer: 1 << 26,
  });
  const line = out.trim().split("\n").pop() as string;
  return JSON.parse(line) as Measured;
}

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

const gb = (b: number) => `${(b / 1e9).toFixed(2)} GB`;
const mb = (b: number) => `${(b / 1e6).toFixed(1)} MB`;
const sec = (ms: number) =>
  ms >= 100_000 ? `${(ms / 60_000).toFixed(1)} min` : `${(ms / 1000).toFixed(1)} s`;

let vocabMeasured = PAPER_VOCAB;

/**
 * How many times a measured tensor counts at 8B: a block's tensors 32/layers times, the
 * vocabulary-sized ones 128,256/vocab times (their cost is linear in their rows).
 */
function scaleOf(name: string, layers: number): number {
  if (name.startsWith("blk.")) return PAPER_LAYERS / layers;
  if (name === "token_embd.weight" || name === "output.weight") return PAPER_VOCAB / vocabMeasured;
  return 1;
}

/** Σ over tensors of `perTensor`, each scaled to 8B by `scaleOf`. */
function extrapolate(per: Record<string, number>, layers: number): number {
  let total = 0;
  for (const [name, v] of Object.entries(per)) total += v * scaleOf(name, layers);
  return total;
}

/** Bytes of a file scaled to 8B: each tensor's bytes (by element counts) scaled by `scaleOf`. */
function scaleBytes(
  bytes: number,
  list: Shape[],
  layers: number,
  bytesPer: (s: Shape) => number,
): number {
  return list.reduce((b, s) => b + bytesPer(s) * (scaleOf(s.name, layers) - 1), bytes);
}

async function main(): Promise<void> {
  const stepAt = process.argv.indexOf("--step");
  if (stepAt >= 0) {
    const args = process.argv.slice(stepAt + 1);
    const r = args[0] === "load" ? await loadStep(args.slice(1)) : await step(args);
    console.log(JSON.stringify(r));
    return;
  }
  const layers = Number(flag("layers", "1"));
  const vocab = Number(flag("vocab", "1024"));
  vocabMeasured = vocab;
  if (!(Number.isInteger(layers) && layers >= 1 && Number.isInteger(vocab) && vocab >= 512)) {
    throw new Error("bench:scale: --layers must be a positive integer and --vocab at least 512");
  }
  const root = flag("dir", join(tmpdir(), "cycleqd-scale"));
  const keep = process.argv.includes("--keep");
  await rm(root, { recursive: true, force: true });
  const started = performance.now();
  const log = (s: string) => console.log(`[${sec(performance.now() - started)}] ${s}`);
  try {
    // -- streaming: peak RSS of exact-mode materialisation at three sizes
    const small = Number(flag("stream-vocab", "32000"));
    const sizes = [
      { layers: 1, vocab: small },
      { layers: 2, vocab: small },
      { layers, vocab },
    ];
    const rss: string[] = [];
    let main: { dir: string; list: Shape[] } | null = null;
    const results: Record<string, Measured> = {};
    for (const [i, size] of sizes.entries()) {
      const dir = join(root, `L${size.layers}-V${size.vocab}`);
      await mkdir(dir, { recursive: true });
      const list = shapes(size.layers, size.vocab);
      const params = list.reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1), 0);
      const largest = Math.max(...list.map((s) => s.shape.reduce((x, y) => x * y, 1)));
      log(
        `building ${size.layers} layer(s), vocabulary ${size.vocab}: ${(params / 1e9).toFixed(2)}B parameters`,
      );
      measure(["build", dir, String(size.layers), String(size.vocab)]);
      const isMain = i === sizes.length - 1;
      const R = isMain ? 64 : 16;
      log(`exact-mode factors at R = ${R}`);
      const fx = measure(["factors", dir, String(R), "exact"]);
      log(`exact-mode materialisation at R = ${R}`);
      const mat = measure(["materialise", dir, String(R), "exact"]);
      rss.push(
        `| ${size.layers} | ${size.vocab} | ${(params / 1e9).toFixed(2)}B | ${mb(largest * 2)} | ${mb(mat.maxRssMb * 1e6)} | ${mb(fx.maxRssMb * 1e6)} |`,
      );
      if (isMain) {
        main = { dir, list };
        results.exactFactors = fx;
        results.exactMaterialise = mat;
      } else {
        await rm(dir, { recursive: true, force: true });
      }
    }
    const { dir, list } = main as { dir: string; list: Shape[] };
    const basePath = join(dir, "base.gguf");
    log("exact mode: loading the child's full model");
    results.exactLoad = measure(["load", "full", join(dir, "child-materialise-64.gguf")]);
    await rm(join(dir, "child-materialise-64.gguf"));
    for (const R of [16, 64]) {
      log(`low-rank mode at R = ${R}: factors without residuals, adapter, load`);
      results[`lr${R}Factors`] = measure(["factors", dir, String(R), "lowrank"]);
      results[`lr${R}Adapter`] = measure(["adapter", dir, String(R), "lowrank"]);
      results[`lr${R}Load`] = measure([
        "load",
        "adapter",
        basePath,
        join(dir, `child-adapter-${R}.gguf`),
      ]);
    }

    // -- report
    const elems = (s: Shape) => s.shape.reduce((a, b) => a * b, 1);
    const matrices = list.filter((s) => s.shape.length === 2);
    const layout = (R: number | "full") => layoutForShapes(shapes(PAPER_LAYERS, vocab), K, R);
    const genomeBytes = (R: number | "full") => genomeByteSize(layout(R));
    const modelBytes32 = scaleBytes(
      (await stat(basePath)).size,
      list,
      layers,
      (s) => elems(s) * (s.shape.length === 2 ? 2 : 4),
    );
    console.log(
      "\n## Per matrix: seed SVD (randomized, all K = 3 experts, factors with residuals at R = 64)\n",
    );
    console.log("| matrix | shape | time (3 experts) |\n|---|---|---:|");
    const perT = results.exactFactors.perTensor as Record<string, number>;
    for (const s of matrices.filter(
      (m) => !m.name.startsWith("blk.") || m.name.startsWith("blk.0."),
    ))
      console.log(`| ${s.name} | ${s.shape.join("×")} | ${sec(perT[s.name])} |`);
    const lrPer = (R: number) => results[`lr${R}Factors`].perTensor as Record<string, number>;

    const scaleFactorBytes = (bytes: number, perElem: (s: Shape) => number) =>
      scaleBytes(bytes, list, layers, perElem);
    const em = results.exactMaterialise;
    const exactChildMs = extrapolate(em.perTensor as Record<string, number>, layers);
    const exactLoadMs = results.exactLoad.ms * (modelBytes32 / (em.bytes as number));
    const lines = [
      `\n## Measured (${layers} layer(s), vocabulary ${vocab}; 2 cores)\n`,
      "| mode | factors: time | factors: cache | child: write | child: bytes | child: load | peak RSS (write / load) | genome |",
      "|---|---:|---:|---:|---:|---:|---:|---:|",
      `| exact (R = 64 + residual) | ${sec(results.exactFactors.ms)} | ${gb(results.exactFactors.bytes as number)} | ${sec(em.ms)} | ${gb(em.bytes as number)} | ${sec(results.exactLoad.ms)} | ${(em.maxRssMb / 1000).toFixed(1)} / ${(results.exactLoad.maxRssMb / 1000).toFixed(1)} GB | ${mb(genomeBytes(64))} |`,
    ];
    for (const R of [16, 64]) {
      const a = results[`lr${R}Adapter`];
      const l = results[`lr${R}Load`];
      lines.push(
        `| low-rank R = ${R} | ${sec(results[`lr${R}Factors`].ms)} | ${gb(results[`lr${R}Factors`].bytes as number)} | ${sec(a.ms)} | ${gb(a.bytes as number)} | ${sec(l.ms)} (base ${sec(l.baseMs as number)}) | ${(a.maxRssMb / 1000).toFixed(1)} / ${(l.maxRssMb / 1000).toFixed(1)} GB | ${mb(genomeBytes(R))} |`,
      );
    }
    console.log(lines.join("\n"));

    // 32 layers: per-layer tensors ×32/layers; bytes by element counts.
    const exactCache32 = scaleFactorBytes(results.exactFactors.bytes as number, (s) =>
      s.shape.length === 2
        ? K * 4 * (elems(s) + (s.shape[0] + s.shape[1] + 1) * 64)
        : K * 4 * elems(s),
    );
    const lrCache32 = (R: number) =>
      scaleFactorBytes(results[`lr${R}Factors`].bytes as number, (s) =>
        s.shape.length === 2 ? K * 4 * (s.shape[0] + s.shape[1] + 1) * R : K * 4 * elems(s),
      );
    const adapter32 = (R: number) =>
      scaleBytes(results[`lr${R}Adapter`].bytes as number, list, layers, (s) =>
        s.shape.length === 2 ? 4 * K * R * (s.shape[0] + s.shape[1]) : 0,
      );
    const adapterMs32 = (R: number) =>
      results[`lr${R}Adapter`].ms * (adapter32(R) / (results[`lr${R}Adapter`].bytes as number));
    const loadMs32 = (R: number) =>
      results[`lr${R}Load`].ms * (adapter32(R) / (results[`lr${R}Adapter`].bytes as number));
    const svd32 = (per: Record<string, number>) => extrapolate(per, layers);
    console.log(
      `\n## Extrapolated to Llama-3-8B (32 layers): a ${CHILDREN}-child run, per worker, besides evaluation\n`,
    );
    console.log(
      "| mode | seed factors (once) | factor cache | per child: write + load | × 1,200 children | disk per child in flight | genome |\n|---|---:|---:|---:|---:|---:|---:|",
    );
    console.log(
      `| exact (R = 64 + residual) | ${sec(svd32(perT))} | ${gb(exactCache32)} | ${sec(exactChildMs)} + ${sec(exactLoadMs)} | ${sec((exactChildMs + exactLoadMs) * CHILDREN)} | ${gb(modelBytes32)} | ${mb(genomeBytes(64))} |`,
    );
    for (const R of [16, 64]) {
      console.log(
        `| low-rank R = ${R} | ${sec(svd32(lrPer(R)))} | ${gb(lrCache32(R))} | ${sec(adapterMs32(R))} + ${sec(loadMs32(R))} | ${sec((adapterMs32(R) + loadMs32(R)) * CHILDREN)} | ${gb(adapter32(R))} | ${mb(genomeBytes(R))} |`,
      );
    }
    console.log("\n## Streaming: peak RSS of exact-mode materialisation against model size\n");
    console.log(
      "| layers | vocabulary | parameters | largest tensor (F16) | peak RSS: materialise | peak RSS: factors |\n|---:|---:|---:|---:|---:|---:|",
    );
    console.log(rss.join("\n"));
    log("done");
  } finally {
    if (!keep) await rm(root, { recursive: true, force: true });
  }
}

await main();
