/**
 * Writing a merged model: GGUF with the base's metadata, or a Hugging Face safetensors folder
 * (converted from GGUF names and Q/K row order where the base was GGUF).
 */
import { copyFile, mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join, sep } from "node:path";
import type { FloatDType } from "../tensors/dtype.ts";
import { type GgufReader, type GgufValue, plainValue, writeGguf } from "../tensors/gguf.ts";
import { ggufToHfName, permuteQKGgufToHf, qkPermuteHeads } from "../tensors/names.ts";
import { INDEX_FILE, writeSafetensors, writeShardedSafetensors } from "../tensors/safetensors.ts";
import type { TensorToWrite } from "../tensors/types.ts";
import type { MergeInputs } from "./inputs.ts";

/** llama.cpp's general.file_type for a model whose matrices are all of one type. */
const FILE_TYPE: Record<FloatDType, number> = { F32: 0, F16: 1, BF16: 32 };
const TORCH_DTYPE: Record<FloatDType, string> = {
  F32: "float32",
  F16: "float16",
  BF16: "bfloat16",
};
/** Files of a Hugging Face folder that describe the model rather than hold weights. */
const HF_SIDE_FILES = [
  "config.json",
  "generation_config.json",
  "tokenizer.json",
  "tokenizer.model",
  "tokenizer_config.json",
  "special_tokens_map.json",
];
const MAX_SHARD_BYTES = 5_000_000_000;

/**
 * The format to write to `out`: the requested one, else a safetensors folder where `out` ends
 * in a slash or is an existing folder, else the base's format. Throws where `out` cannot hold
 * that format, saying what to give instead.
 */
export async function outputFormat(
  out: string,
  requested: "gguf" | "safetensors" | undefined,
  baseFormat: "gguf" | "safetensors",
): Promise<"gguf" | "safetensors"> {
  const info = await stat(out).catch(() => null);
  const isFolder = info?.isDirectory() === true;
  const slash = out.endsWith("/") || out.endsWith(sep);
  const format = requested ?? (isFolder || slash ? "safetensors" : baseFormat);
  if (format === "gguf" && (isFolder || slash)) {
    throw new Error(
      `merge: GGUF output is one file, but ${out} ${isFolder ? "is a folder" : "ends in a slash, which names a folder"}; give a file path such as ${join(out, "merged.gguf")}, or write safetensors (a Hugging Face folder) there`,
    );
  }
  if (format === "safetensors" && info && !isFolder) {
    throw new Error(`merge: safetensors output is a folder, but ${out} is a file; give a folder`);
  }
  return format;
}

/** Writes `tensors` as `format` to `out`, creating missing folders; returns the files written. */
export async function writeMergedModel(
  out: string,
  format: "gguf" | "safetensors",
  inputs: MergeInputs,
  tensors: TensorToWrite[],
  dtype?: FloatDType,
): Promise<string[]> {
  const { base } = inputs;
  if (format === "gguf") {
    if (base.format !== "gguf") {
      throw new Error(
        `merge: GGUF output needs a GGUF base (the tokenizer lives in GGUF metadata), but ${base.path} is safetensors; write safetensors, or convert the models with llama.cpp's convert_hf_to_gguf.py first`,
      );
    }
    await makeFolder(dirname(out));
    await writeGguf(out, ggufMetadata(base, tensors), tensors);
    return [out];
  }
  const hfTensors = base.format === "gguf" ? toHfLayout(base, tensors) : tensors;
  await makeFolder(out);
  const files: string[] = [];
  const bytes = hfTensors.reduce(
    (s, t) => s + t.shape.reduce((a, b) => a * b, 1) * (t.dtype === "F32" ? 4 : 2),
    0,
  );
  if (bytes <= MAX_SHARD_BYTES) {
    // A stale index from an earlier sharded write would take precedence over the new file.
    await rm(join(out, INDEX_FILE), { force: true });
    await writeSafetensors(join(out, "model.safetensors"), hfTensors);
    files.push(join(out, "model.safetensors"));
  } else {
    const r = await writeShardedSafetensors(out, hfTensors, { maxShardBytes: MAX_SHARD_BYTES });
    files.push(...r.shards, r.index);
  }
  if (base.format === "gguf") {
    const config = join(out, "config.json");
    await writeFile(config, `${JSON.stringify(hfConfigFromGguf(base, hfTensors), null, 2)}\n`);
    files.push(config);
  } else {
    files.push(...(await copySideFiles(inputs.basePath, out, dtype)));
  }
  return files;
}

/** Creates `dir` and its parents; where it cannot, says why and what to do. */
async function makeFolder(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? String(e);
    const why =
      code === "EEXIST" || code === "ENOTDIR"
        ? "a file is in the way (part of the path is a file, not a folder)"
        : "check that the path is writable";
    throw new Error(
      `merge: cannot create the output folder ${dir} (${code}): ${why}; give another output path`,
    );
  }
}

/** The base's metadata, with general.file_type following the merged matrices' type. */
function ggufMetadata(base: GgufReader, tensors: TensorToWrite[]): Map<string, GgufValue> {
  const metadata = new Map(base.metadata);
  const types = new Set(tensors.filter((t) => t.shape.length >= 2).map((t) => t.dtype));
  if (metadata.has("general.file_type") && types.size === 1) {
    metadata.set("general.file_type", { type: "uint32", value: FILE_TYPE[[...types][0]] });
  }
  return metadata;
}

function metaNumber(base: GgufReader, key: string): number | undefined {
  const v = base.metadata.get(key);
  if (v === undefined || v.type === "array") return undefined;
  const x = plainValue(v);
  return typeof x === "number" ? x : undefined;
}

function requireNumber(base: GgufReader, key: string): number {
  const x = metaNumber(base, key);
  if (x === undefined) {
    throw new Error(
      `${base.path}: metadata ${key} is missing; cannot describe the model for Hugging Face`,
    );
  }
  return x;
}

function llamaBase(base: GgufReader): void {
  const arch = base.metadata.get("general.architecture")?.value;
  if (arch !== "llama") {
    throw new Error(
      `${base.path}: safetensors output from GGUF maps the llama architecture only, but this is ${JSON.stringify(arch)}; write GGUF instead`,
    );
  }
}

/** GGUF names → Hugging Face names, and GGUF's adjacent-pair Q/K rows → rotate-half rows. */
function toHfLayout(base: GgufReader, tensors: TensorToWrite[]): TensorToWrite[] {
  llamaBase(base);
  const nHead = requireNumber(base, "llama.attention.head_count");
  const nKvHead = metaNumber(base, "llama.attention.head_count_kv") ?? nHead;
  return tensors.map((t) => {
    const heads = qkPermuteHeads(t.name, nHead, nKvHead);
    const data = t.data;
    if (heads === null || typeof data !== "function") return { ...t, name: ggufToHfName(t.name) };
    const [rows, cols] = t.shape;
    return {
      ...t,
      name: ggufToHfName(t.name),
      data: async () => permuteQKGgufToHf(await data(), rows, cols, heads),
    };
  });
}

/** A LlamaForCausalLM config.json from the GGUF hyperparameters. */
function hfConfigFromGguf(base: GgufReader, tensors: TensorToWrite[]): Record<string, unknown> {
  const get = (k: string) => requireNumber(base, `llama.${k}`);
  const nHead = get("attention.head_count");
  const hidden = get("embedding_length");
  const tokens = base.metadata.get("tokenizer.ggml.tokens");
  const embed = tensors.find((t) => t.name === "model.embed_tokens.weight");
  const matrix = tensors.find((t) => t.shape.length >= 2);
  return {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    vocab_size:
      metaNumber(base, "llama.vocab_size") ??
      (tokens?.type === "array" ? tokens.value.length : embed?.shape[0]),
    hidden_size: hidden,
    intermediate_size: get("feed_forward_length"),
    num_hidden_layers: get("block_count"),
    num_attention_heads: nHead,
    num_key_value_heads: metaNumber(base, "llama.attention.head_count_kv") ?? nHead,
    head_dim: metaNumber(base, "llama.rope.dimension_count") ?? hidden / nHead,
    max_position_embeddings: get("context_length"),
    rms_norm_eps: get("attention.layer_norm_rms_epsilon"),
    rope_theta: metaNumber(base, "llama.rope.freq_base") ?? 10000,
    hidden_act: "silu",
    tie_word_embeddings: !tensors.some((t) => t.name === "lm_head.weight"),
    bos_token_id: metaNumber(base, "tokenizer.ggml.bos_token_id"),
    eos_token_id: metaNumber(base, "tokenizer.ggml.eos_token_id"),
    torch_dtype: TORCH_DTYPE[matrix?.dtype ?? "F32"],
  };
}

/**
 * Copies config.json and the tokenizer files from the base's folder, so the output loads as a
 * Hugging Face model; config.json's torch_dtype follows a chosen dtype.
 */
async function copySideFiles(basePath: string, out: string, dtype?: FloatDType) {
  const info = await stat(basePath).catch(() => null);
  const dir = info?.isDirectory()
    ? basePath
    : basePath.endsWith(".json")
      ? dirname(basePath)
      : null;
  if (dir === null) return [];
  const copied: string[] = [];
  for (const name of HF_SIDE_FILES) {
    const from = join(dir, name);
    if (!(await stat(from).catch(() => null))?.isFile()) continue;
    const to = join(out, name);
    if (name === "config.json" && dtype !== undefined) {
      let config: Record<string, unknown>;
      try {
        config = JSON.parse(await readFile(from, "utf8"));
      } catch (e) {
        throw new Error(`${from}: is not valid JSON (${(e as Error).message})`);
      }
      config.torch_dtype = TORCH_DTYPE[dtype];
      await writeFile(to, `${JSON.stringify(config, null, 2)}\n`);
    } else {
      await copyFile(from, to);
    }
    copied.push(to);
  }
  return copied;
}
