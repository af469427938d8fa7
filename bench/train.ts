/**
 * Training throughput of the tiny LLaMA: tokens/s of full AdamW steps on the default ~0.9M
 * config, and where a step's time goes (linear-layer GEMMs, attention, everything else).
 */
import { availableParallelism, loadavg } from "node:os";
import type { Gemm, GemmOptions } from "../src/linalg/gemm.ts";
import { createGemm } from "../src/linalg/index.ts";
import { attentionBackward, attentionForward } from "../src/llm/attention.ts";
import { lossAndGradients } from "../src/llm/backward.ts";
import { sampleStreamBatch } from "../src/llm/batches.ts";
import { kvDim, type LlamaConfig, TINY_CONFIG } from "../src/llm/config.ts";
import { initParams } from "../src/llm/model.ts";
import { adamWUpdate, clipGradients, DEFAULT_ADAMW, newAdamState } from "../src/llm/optim.ts";
import { Workspace } from "../src/llm/workspace.ts";
import { Rng } from "../src/util/rng.ts";

export interface TrainingBenchOptions {
  config?: LlamaConfig;
  batchSize?: number;
  seqLen?: number;
  /** Timed steps (after two warm-up steps that let the JIT settle). */
  steps?: number;
  threads?: number;
  backend?: "auto" | "onnxruntime" | "typescript";
  /** A ready GEMM to measure instead of creating one (not disposed here). */
  gemm?: Gemm;
  log?: (line: string) => void;
}

export interface TrainingBenchResult {
  gemm: string;
  threads: number;
  tokensPerSecond: number;
  msPerStep: number;
  /** CPU milliseconds per step, all threads of this process. */
  cpuMsPerStep: number;
  /** Milliseconds per step. */
  breakdown: { linearGemm: number; attentionGemm: number; attentionOther: number; rest: number };
}

/** Wraps a GEMM to count the wall time during which at least one product is running. */
function timedGemm(inner: Gemm): Gemm & { busyMs: number } {
  let inFlight = 0;
  let since = 0;
  const timed = async <T>(f: () => Promise<T>): Promise<T> => {
    if (inFlight++ === 0) since = performance.now();
    try {
      return await f();
    } finally {
      if (--inFlight === 0) wrapper.busyMs += performance.now() - since;
    }
  };
  const wrapper = {
    name: inner.name,
    busyMs: 0,
    dispose: () => inner.dispose(),
    matmul: (a: Float32Array, b: Float32Array, m: number, k: number, n: number, o?: GemmOptions) =>
      timed(() => inner.matmul(a, b, m, k, n, o)),
    matmulBatched: (
      a: Float32Array,
      b: Float32Array,
      bt: number,
      m: number,
      k: number,
      n: number,
      o?: GemmOptions,
    ) => timed(() => inner.matmulBatched(a, b, bt, m, k, n, o)),
    matmulF64: (
      a: Float64Array,
      b: Float64Array,
      m: number,
      k: number,
      n: number,
      o?: GemmOptions,
    ) => timed(() => inner.matmulF64(a, b, m, k, n, o)),
  };
  return wrapper;
}

export async function benchTraining(opts: TrainingBenchOptions = {}): Promise<TrainingBenchResult> {
  const config = opts.config ?? TINY_CONFIG;
  const B = opts.batchSize ?? 16;
  const T = opts.seqLen ?? 128;
  const steps = opts.steps ?? 6;
  const threads = opts.threads ?? availableParallelism();
  const log = opts.log ?? console.log;
  const inner = opts.gemm ?? (await createGemm({ backend: opts.backend ?? "auto", threads }));
  const gemm = timedGemm(inner);
  const rng = new Rng(1);
  const params = initParams(config, rng);
  const adam = newAdamState(params);
  const tokens = new Int32Array(200_000).map(() => rng.int(config.vocabSize));

  // Whole steps: sample, loss and gradients, clip, AdamW.
  const ws = new Workspace();
  const step = async () => {
    const batch = sampleStreamBatch(tokens, B, T, rng);
    const { grads } = await lossAndGradients(params, config, batch, gemm, ws);
    clipGradients(grads, 1);
    adamWUpdate(params, grads, adam, 1e-3, DEFAULT_ADAMW, () => true);
  };
  await step();
  await step();
  gemm.busyMs = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let s = 0; s < steps; s++) await step();
  const msPerStep = (performance.now() - t0) / steps;
  const cpu = process.cpuUsage(cpu0);
  // CPU time of this process (all threads): on a busy machine wall time also counts waiting.
  const cpuMsPerStep = (cpu.user + cpu.system) / 1000 / steps;
  const gemmMs = gemm.busyMs / steps;

  // Attention alone, on the same shapes, to split its GEMMs from its own loops.
  const N = B * T;
  const qkv = new Float32Array(N * (config.dim + 2 * kvDim(config))).map(() => rng.normal());
  const dOut = new Float32Array(N * config.dim).map(() => rng.normal());
  const dqkv = new Float32Array(qkv.length);
  const runAttention = async () => {
    for (let l = 0; l < config.nLayers; l++) {
      const { cache } = await attentionForward(qkv, config, B, T, gemm, ws, `blk.${l}.`);
      await attentionBackward(dOut, cache, config, B, T, gemm, ws, dqkv);
    }
  };
  await runAttention();
  await runAttention();
  gemm.busyMs = 0;
  const t1 = performance.now();
  for (let s = 0; s < steps; s++) await runAttention();
  const attentionMs = (performance.now() - t1) / steps;
  const attentionGemm = gemm.busyMs / steps;
  if (!opts.gemm) await gemm.dispose();

  const breakdown = {
    linearGemm: gemmMs - attentionGemm,
    attentionGemm,
    attentionOther: attentionMs - attentionGemm,
    rest: msPerStep - gemmMs - (attentionMs - attentionGemm),
  };
  const tokensPerSecond = (B * T * 1000) / msPerStep;
  const pct = (ms: number) =>
    `${ms.toFixed(0).padStart(5)} ms  ${((100 * ms) / msPerStep).toFixed(0).padStart(3)}%`;
  log(
    `training: ${B}×${T} tokens per step, ${inner.name} GEMM, ${threads} thread(s), ${steps} steps`,
  );
  log(
    `  ${tokensPerSecond.toFixed(0)} tokens/s, ${msPerStep.toFixed(0)} ms per step ` +
      `(${cpuMsPerStep.toFixed(0)} CPU ms, load average ${loadavg()[0].toFixed(1)})`,
  );
  log(`  linear-layer GEMMs        ${pct(breakdown.linearGemm)}`);
  log(`  attention GEMMs           ${pct(breakdown.attentionGemm)}`);
  log(`  attention RoPE/softmax    ${pct(breakdown.attentionOther)}`);
  log(`  norms, SwiGLU, loss, AdamW ${pct(breakdown.rest)}`);
  return { gemm: inner.name, threads, tokensPerSecond, msPerStep, cpuMsPerStep, breakdown };
}
