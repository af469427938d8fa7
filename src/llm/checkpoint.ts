/**
 * Training checkpoints: one safetensors file holding the weights (under their GGUF names),
 * the AdamW moments (`adam.m.*`, `adam.v.*`), and in `__metadata__` the step, the batch
 * generator's state, the config and the run's settings. The file is replaced atomically.
 */
import { openSafetensors, writeSafetensors } from "../tensors/safetensors.ts";
import type { TensorToWrite } from "../tensors/types.ts";
import { type LlamaConfig, validateConfig } from "./config.ts";
import { type Params, paramSpecs } from "./model.ts";
import type { AdamState } from "./optim.ts";

const FORMAT = "cycleqd-train-checkpoint-v1";

export interface TrainCheckpoint {
  config: LlamaConfig;
  params: Params;
  adam: AdamState;
  /** `Rng.state()` of the batch sampler after `adam.step` updates. */
  rngState: number[];
  /** Settings that must match to resume (data fingerprint, batch shape, schedule...). */
  settings: Record<string, string>;
}

export async function saveCheckpoint(path: string, ck: TrainCheckpoint): Promise<void> {
  const specs = paramSpecs(ck.config);
  const tensors: TensorToWrite[] = [];
  const add = (name: string, shape: number[], data: Float32Array | undefined) => {
    if (!data) throw new Error(`checkpoint: missing tensor ${name}`);
    tensors.push({ name, dtype: "F32", shape, data });
  };
  for (const { name, shape } of specs) add(name, shape, ck.params.get(name));
  for (const { name, shape } of specs) add(`adam.m.${name}`, shape, ck.adam.m.get(name));
  for (const { name, shape } of specs) add(`adam.v.${name}`, shape, ck.adam.v.get(name));
  await writeSafetensors(path, tensors, {
    cycleqd: FORMAT,
    step: String(ck.adam.step),
    // The generator's spare normal is NaN when absent; JSON has no NaN.
    rng: JSON.stringify(ck.rngState.map((x) => (Number.isNaN(x) ? null : x))),
    config: JSON.stringify(ck.config),
    settings: JSON.stringify(ck.settings),
  });
}

export async function loadCheckpoint(path: string): Promise<TrainCheckpoint> {
  const reader = await openSafetensors(path);
  try {
    const meta = reader.metadata;
    if (meta.cycleqd !== FORMAT) {
      throw new Error(`${path} is not a cycleqd training checkpoint (no "${FORMAT}" marker)`);
    }
    const config = validateConfig(JSON.parse(meta.config));
    const step = Number(meta.step);
    if (!(Number.isInteger(step) && step >= 0)) throw new Error(`${path}: bad step "${meta.step}"`);
    const rngState = (JSON.parse(meta.rng) as (number | null)[]).map((x) =>
      x === null ? Number.NaN : x,
    );
    const settings = JSON.parse(meta.settings) as Record<string, string>;
    const params: Params = new Map();
    const m: Params = new Map();
    const v: Params = new Map();
    for (const { name } of paramSpecs(config)) {
      params.set(name, await reader.read(name));
      m.set(name, await reader.read(`adam.m.${name}`));
      v.set(name, await reader.read(`adam.v.${name}`));
    }
    return { config, params, adam: { m, v, step }, rngState, settings };
  } finally {
    await reader.close();
  }
}
