/**
 * Streaming merge: for each tensor, read the base and the experts, form the task vectors,
 * merge, and hand the result to a writer as a thunk. Memory holds one tensor of each model at
 * a time, never a whole model.
 */
import { resolve, sep } from "node:path";
import type { FloatDType } from "../tensors/dtype.ts";
import type { TensorReader, TensorToWrite } from "../tensors/types.ts";
import { openMergeInputs } from "./inputs.ts";
import {
  type MergeMethod,
  type MergeMethodName,
  type MergeParams,
  mergeMethod,
} from "./methods.ts";
import { outputFormat, writeMergedModel } from "./output.ts";
import { type MergeParamsInput, resolveParams } from "./params.ts";
import { keptByDensity } from "./sparsify.ts";

const WRITABLE: readonly string[] = ["F32", "F16", "BF16"];

export interface MergedTensorsOptions {
  /**
   * Storage type of every tensor with two or more dimensions; default each tensor keeps the
   * base's type (F32 where the base's type cannot be written). 1-D tensors (norm weights)
   * always keep the base's type, as llama.cpp expects F32 norms.
   */
  dtype?: FloatDType;
}

/** The storage type of a merged tensor (see MergedTensorsOptions.dtype). */
export function outputDtype(baseDtype: string, shape: readonly number[], dtype?: FloatDType) {
  const own: FloatDType = WRITABLE.includes(baseDtype) ? (baseDtype as FloatDType) : "F32";
  return shape.length >= 2 && dtype !== undefined ? dtype : own;
}

/**
 * The merged model's tensors in the base's order, each a thunk that reads that tensor from
 * the base and every expert and merges it. Inputs must already be checked (openMergeInputs).
 */
export function mergedTensors(
  method: MergeMethod,
  base: TensorReader,
  experts: readonly TensorReader[],
  params: MergeParams,
  opts: MergedTensorsOptions = {},
): TensorToWrite[] {
  if (opts.dtype !== undefined && !WRITABLE.includes(opts.dtype)) {
    throw new Error(`merge: dtype must be F32, F16 or BF16, got ${String(opts.dtype)}`);
  }
  if (method.params.includes("density")) checkDensityKeepsSomething(base, params.density);
  return base.tensors.map((t) => ({
    name: t.name,
    dtype: outputDtype(t.dtype, t.shape, opts.dtype),
    shape: [...t.shape],
    data: async () => {
      const theta0 = finite(base, t.name, await base.read(t.name));
      const tau: Float32Array[] = [];
      for (const e of experts) {
        // Each expert's array becomes its task vector in place: no second copy.
        const theta = finite(e, t.name, await e.read(t.name));
        for (let i = 0; i < theta.length; i++) theta[i] -= theta0[i];
        tau.push(theta);
      }
      return method.merge({ name: t.name, base: theta0, tau }, params);
    },
  }));
}

/** A NaN or infinity in a model is corruption; merging it would spread it silently. */
function finite(r: TensorReader, name: string, data: Float32Array): Float32Array {
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) {
      throw new Error(
        `${r.path}: tensor "${name}" holds ${data[i]} at index ${i}; the model is corrupt or overflowed, so it cannot be merged`,
      );
    }
  }
  return data;
}

/** TIES keeps ⌊density·n⌋ entries per tensor: fail before writing if that is 0 anywhere. */
function checkDensityKeepsSomething(base: TensorReader, density: number): void {
  for (const t of base.tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n > 0 && keptByDensity(n, density) === 0) {
      throw new Error(
        `merge: density ${density} keeps no entry of tensor "${t.name}" (${n} values); use a density of at least ${1 / n}`,
      );
    }
  }
}

/**
 * A baseline merge of a base θ₀ and its experts (`mergeModels`). The method's parameters
 * (weights, one per expert in the experts' order; λ; TIES density in (0, 1]; DARE drop
 * probability in [0, 1) and seed) come from `MergeParamsInput`; a parameter the method does
 * not read is an error.
 */
export interface MergeModelsOptions extends MergeParamsInput {
  /** linear, task-arithmetic, ties (≥ 2 experts), dare or dare-ties (≥ 2 experts). */
  method: MergeMethodName;
  /** GGUF file, or a safetensors file / Hugging Face folder. */
  base: string;
  /** Fine-tunes of the base, each in the base's format with its tensors, shapes and tokenizer. */
  experts: readonly string[];
  /**
   * A .gguf file, or a folder for safetensors output; missing parent folders are created. A
   * path ending in a slash, or an existing folder, means a safetensors folder.
   */
  out: string;
  /** Storage type of tensors with two or more dimensions (default: the base's types). */
  dtype?: FloatDType;
  /**
   * Default: safetensors where `out` ends in a slash or is a folder, else the base's format.
   * GGUF output needs a GGUF base.
   */
  format?: "gguf" | "safetensors";
}

/** What `mergeModels` wrote. */
export interface MergeSummary {
  method: MergeMethodName;
  /** Every parameter as used, defaults filled in. */
  params: MergeParams;
  format: "gguf" | "safetensors";
  /** Files written (for safetensors, the weights and any copied config files). */
  files: string[];
  /** Number of tensors written. */
  tensors: number;
}

/**
 * Merges a base and its experts from files into `out`, streaming one tensor at a time.
 * Throws, before writing, for an unknown method, a bad, unused or missing (DARE's seed)
 * parameter, too few experts, an unknown format, an `out` that is or holds an input or
 * cannot hold the format, and experts that differ from the base (format, tensors, shapes,
 * dtypes, architecture metadata, tokenizer); while writing, for a tensor holding NaN or
 * infinity, or a failed write.
 */
export async function mergeModels(opts: MergeModelsOptions): Promise<MergeSummary> {
  const method = mergeMethod(opts.method);
  const params = resolveParams(method, opts, opts.experts?.length ?? 0);
  if (opts.format !== undefined && opts.format !== "gguf" && opts.format !== "safetensors") {
    throw new Error(`merge: format must be gguf or safetensors, got ${String(opts.format)}`);
  }
  if (typeof opts.out !== "string" || opts.out === "") {
    throw new Error("merge: give the output path (out)");
  }
  const out = resolve(opts.out);
  for (const p of [opts.base, ...(opts.experts ?? [])]) {
    // A safetensors output folder holding an input would overwrite it.
    if (resolve(p) === out || resolve(p).startsWith(out + sep)) {
      throw new Error(
        `merge: the output ${opts.out} is or holds the input ${p}; write somewhere else`,
      );
    }
  }
  const inputs = await openMergeInputs(opts.base, opts.experts);
  try {
    const format = await outputFormat(opts.out, opts.format, inputs.base.format);
    const tensors = mergedTensors(method, inputs.base, inputs.experts, params, {
      dtype: opts.dtype,
    });
    const files = await writeMergedModel(opts.out, format, inputs, tensors, opts.dtype);
    return { method: method.name, params, format, files, tensors: tensors.length };
  } finally {
    await inputs.close();
  }
}
