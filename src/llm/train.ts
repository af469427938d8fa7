/**
 * The training loop: seeded batches, loss and gradients, clipping, AdamW on a warmup +
 * cosine schedule, periodic atomic checkpoints, and bit-identical resumption from them.
 */
import { existsSync } from "node:fs";
import type { Gemm } from "../linalg/gemm.ts";
import { Rng } from "../util/rng.ts";
import { lossAndGradients } from "./backward.ts";
import {
  checkTrainData,
  dataFingerprint,
  sampleExampleBatch,
  sampleStreamBatch,
  type TrainData,
} from "./batches.ts";
import { loadCheckpoint, saveCheckpoint } from "./checkpoint.ts";
import { type LlamaConfig, validateConfig } from "./config.ts";
import { cloneParams, initParams, type Params, paramSpecs, validateParams } from "./model.ts";
import {
  type AdamState,
  type AdamWOptions,
  adamWUpdate,
  clipGradients,
  DEFAULT_ADAMW,
  learningRate,
  newAdamState,
} from "./optim.ts";
import { Workspace } from "./workspace.ts";

export interface StepInfo {
  /** Updates done so far (1 after the first). */
  step: number;
  steps: number;
  loss: number;
  lr: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /** Tokens in this step's batch (B·T, padding included). */
  tokens: number;
  tokensPerSecond: number;
}

export interface TrainOptions {
  config: LlamaConfig;
  data: TrainData;
  /** Total number of updates (a resumed run counts those already done). */
  steps: number;
  batchSize: number;
  /** Sequence length (examples: the longest allowed; shorter batches are not padded to it). */
  seqLen: number;
  gemm: Gemm;
  /** Seeds the initial weights (when `params` is absent) and the batch sampler; default 0. */
  seed?: number;
  /** Weights to start from (fine-tuning); copied, never modified. Default: fresh init. */
  params?: Params;
  /** Peak learning rate (default 3e-3). */
  lr?: number;
  /** Learning-rate floor at the end of the cosine (default lr/10). */
  minLr?: number;
  /** Linear warmup steps (default min(100, steps/10)). */
  warmupSteps?: number;
  adam?: Partial<AdamWOptions>;
  /** Global-norm gradient clip; 0 disables (default 1). */
  gradClip?: number;
  /** Checkpoint file (safetensors); resumed from when present unless `resume` is false. */
  checkpointPath?: string;
  /** Write the checkpoint every N updates (default: only after the last). */
  checkpointEvery?: number;
  resume?: boolean;
  onStep?: (info: StepInfo) => void | Promise<void>;
}

export interface TrainResult {
  params: Params;
  adam: AdamState;
  /** Updates done in total. */
  step: number;
  /** Update count found in the checkpoint this run resumed from (0 for a fresh run). */
  resumedFrom: number;
  /** Loss of every update this call ran. */
  losses: number[];
}

function positiveInt(v: unknown, what: string): number {
  if (!(typeof v === "number" && Number.isInteger(v) && v > 0)) {
    throw new Error(`train: ${what} must be a positive integer, got ${String(v)}`);
  }
  return v;
}

function nonNegative(v: number, what: string): number {
  if (!(Number.isFinite(v) && v >= 0)) throw new Error(`train: ${what} must be ≥ 0, got ${v}`);
  return v;
}

/** Weight decay applies to matrices, not to the 1-D norm weights. */
function decayedTensors(config: LlamaConfig): (name: string) => boolean {
  const matrices = new Set(
    paramSpecs(config)
      .filter((s) => s.shape.length === 2)
      .map((s) => s.name),
  );
  return (name) => matrices.has(name);
}

export async function train(opts: TrainOptions): Promise<TrainResult> {
  const config = validateConfig(opts.config);
  const steps = positiveInt(opts.steps, "steps");
  const B = positiveInt(opts.batchSize, "batchSize");
  const T = positiveInt(opts.seqLen, "seqLen");
  if (T > config.contextLength) {
    throw new Error(
      `train: seqLen ${T} exceeds the model's context length ${config.contextLength}`,
    );
  }
  checkTrainData(opts.data, T, config.vocabSize);
  const seed = opts.seed ?? 0;
  const lr = nonNegative(opts.lr ?? 3e-3, "lr");
  const schedule = {
    lr,
    minLr: nonNegative(opts.minLr ?? lr / 10, "minLr"),
    warmupSteps: nonNegative(
      opts.warmupSteps ?? Math.min(100, Math.floor(steps / 10)),
      "warmupSteps",
    ),
    totalSteps: steps,
  };
  const adamOpts: AdamWOptions = { ...DEFAULT_ADAMW, ...opts.adam };
  for (const [k, v] of Object.entries(adamOpts)) nonNegative(v, `adam.${k}`);
  const gradClip = nonNegative(opts.gradClip ?? 1, "gradClip");
  const every =
    opts.checkpointEvery === undefined ? 0 : positiveInt(opts.checkpointEvery, "checkpointEvery");
  const settings: Record<string, string> = {
    data: dataFingerprint(opts.data),
    batchSize: String(B),
    seqLen: String(T),
    steps: String(steps),
    seed: String(seed),
    schedule: JSON.stringify(schedule),
    adam: JSON.stringify(adamOpts),
    gradClip: String(gradClip),
  };

  let params: Params;
  let adam: AdamState;
  let rng: Rng;
  const path = opts.checkpointPath;
  if (path && opts.resume !== false && existsSync(path)) {
    const ck = await loadCheckpoint(path);
    if (JSON.stringify(ck.config) !== JSON.stringify(config)) {
      throw new Error(
        `train: checkpoint ${path} holds a model with another config; delete it or pass resume: false`,
      );
    }
    for (const [k, v] of Object.entries(settings)) {
      if (ck.settings[k] !== v) {
        throw new Error(
          `train: checkpoint ${path} was made with ${k} = ${ck.settings[k]}, this run has ${v}; ` +
            "resuming would not continue the same run. Use the same settings, or delete the checkpoint / pass resume: false",
        );
      }
    }
    params = ck.params;
    adam = ck.adam;
    rng = Rng.fromState(ck.rngState);
  } else {
    rng = new Rng(seed);
    const initRng = rng.fork();
    if (opts.params) {
      validateParams(opts.params, config);
      params = cloneParams(opts.params);
    } else {
      params = initParams(config, initRng);
    }
    adam = newAdamState(params);
  }
  const resumedFrom = adam.step;
  const decayed = decayedTensors(config);
  const losses: number[] = [];
  const ws = new Workspace();
  const save = async () => {
    if (path) await saveCheckpoint(path, { config, params, adam, rngState: rng.state(), settings });
  };

  while (adam.step < steps) {
    const t0 = performance.now();
    const batch =
      opts.data.kind === "stream"
        ? sampleStreamBatch(opts.data.tokens, B, T, rng)
        : sampleExampleBatch(opts.data.examples, B, T, rng);
    const { loss, grads } = await lossAndGradients(params, config, batch, opts.gemm, ws);
    if (!Number.isFinite(loss)) {
      throw new Error(
        `train: loss became ${loss} at update ${adam.step + 1}; lower the learning rate`,
      );
    }
    const gradNorm = clipGradients(grads, gradClip);
    const stepLr = learningRate(adam.step, schedule);
    adamWUpdate(params, grads, adam, stepLr, adamOpts, decayed);
    losses.push(loss);
    const seconds = (performance.now() - t0) / 1000;
    if ((every > 0 && adam.step % every === 0) || adam.step === steps) await save();
    const tokens = batch.B * batch.T;
    await opts.onStep?.({
      step: adam.step,
      steps,
      loss,
      lr: stepLr,
      gradNorm,
      tokens,
      tokensPerSecond: tokens / seconds,
    });
  }
  return { params, adam, step: adam.step, resumedFrom, losses };
}
