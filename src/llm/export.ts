/**
 * Model files: GGUF for llama.cpp (the tiny models' own vocabulary included) and safetensors
 * in Hugging Face layout, written and read back. In memory the weights always use GGUF names
 * and GGUF's adjacent-pair Q/K row order; the HF files hold the rotate-half order.
 */
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { FloatDType } from "../tensors/dtype.ts";
import {
  type GgufValue,
  gguf,
  openGguf,
  type PlainValue,
  plainMetadata,
  writeGguf,
} from "../tensors/gguf.ts";
import {
  ggufToHfName,
  permuteQKGgufToHf,
  permuteQKHfToGguf,
  qkPermuteHeads,
} from "../tensors/names.ts";
import { openSafetensors, writeSafetensors } from "../tensors/safetensors.ts";
import type { TensorReader, TensorToWrite } from "../tensors/types.ts";
import { headDim, type LlamaConfig, validateConfig } from "./config.ts";
import { type Params, paramSpecs, validateParams } from "./model.ts";
import { BOS_ID, EOS_ID, UNK_ID, VOCAB_SIZE, type Vocabulary, vocabulary } from "./tokenizer.ts";

export interface ExportGgufOptions {
  /** `general.name` (default "cycleqd-tiny-llama"). */
  name?: string;
  /** Precision of the weight matrices; norm weights are always F32 (default F32). */
  dtype?: FloatDType;
  /** Vocabulary to embed; default the tiny models' byte/character vocabulary. */
  vocabulary?: Vocabulary;
  /** `tokenizer.ggml.add_bos_token` (default true). */
  addBos?: boolean;
}

const FILE_TYPE: Record<FloatDType, number> = { F32: 0, F16: 1, BF16: 32 };

/** Writes a llama.cpp-loadable GGUF (`llama` arch) of the model and its tokenizer. */
export async function exportGguf(
  path: string,
  config: LlamaConfig,
  params: Params,
  opts: ExportGgufOptions = {},
): Promise<void> {
  const c = validateConfig(config);
  validateParams(params, c);
  const vocab = opts.vocabulary ?? vocabulary();
  if (vocab.tokens.length !== c.vocabSize) {
    throw new Error(
      `exportGguf: the vocabulary has ${vocab.tokens.length} tokens but the model's vocabSize is ${c.vocabSize}` +
        (opts.vocabulary
          ? ""
          : `; the built-in tokenizer needs vocabSize ${VOCAB_SIZE} or pass opts.vocabulary`),
    );
  }
  const dtype = opts.dtype ?? "F32";
  if (!(dtype in FILE_TYPE))
    throw new Error(`exportGguf: dtype must be F32, F16 or BF16, got ${dtype}`);
  const metadata: Record<string, GgufValue> = {
    "general.architecture": gguf.str("llama"),
    "general.name": gguf.str(opts.name ?? "cycleqd-tiny-llama"),
    "general.file_type": gguf.u32(FILE_TYPE[dtype]),
    "llama.vocab_size": gguf.u32(c.vocabSize),
    "llama.context_length": gguf.u32(c.contextLength),
    "llama.embedding_length": gguf.u32(c.dim),
    "llama.block_count": gguf.u32(c.nLayers),
    "llama.feed_forward_length": gguf.u32(c.ffnDim),
    "llama.attention.head_count": gguf.u32(c.nHeads),
    "llama.attention.head_count_kv": gguf.u32(c.nKvHeads),
    "llama.rope.dimension_count": gguf.u32(headDim(c)),
    "llama.rope.freq_base": gguf.f32(c.ropeTheta),
    "llama.attention.layer_norm_rms_epsilon": gguf.f32(c.normEps),
    "tokenizer.ggml.model": gguf.str("llama"),
    "tokenizer.ggml.tokens": gguf.arr("string", vocab.tokens),
    "tokenizer.ggml.scores": gguf.arr("float32", vocab.scores),
    "tokenizer.ggml.token_type": gguf.arr("int32", vocab.types),
    "tokenizer.ggml.bos_token_id": gguf.u32(BOS_ID),
    "tokenizer.ggml.eos_token_id": gguf.u32(EOS_ID),
    "tokenizer.ggml.unknown_token_id": gguf.u32(UNK_ID),
    "tokenizer.ggml.add_bos_token": gguf.bool(opts.addBos ?? true),
    "tokenizer.ggml.add_eos_token": gguf.bool(false),
    "tokenizer.ggml.add_space_prefix": gguf.bool(false),
  };
  const tensors: TensorToWrite[] = paramSpecs(c).map(({ name, shape }) => ({
    name,
    dtype: shape.length === 1 ? "F32" : dtype,
    shape,
    data: params.get(name) as Float32Array,
  }));
  await writeGguf(path, metadata, tensors);
}

/** The shortest decimal that is the same float32: a stored 1e-5 reads back as 1e-5. */
function shortestFloat32(x: number): number {
  if (Math.fround(x) !== x) return x;
  for (let p = 1; p < 17; p++) {
    const y = Number(x.toPrecision(p));
    if (Math.fround(y) === x) return y;
  }
  return x;
}

function asNumber(meta: Record<string, PlainValue>, key: string, path: string): number | undefined {
  const v = meta[key];
  if (v === undefined) return undefined;
  if (typeof v !== "number") throw new Error(`${path}: metadata ${key} is not a number`);
  return v;
}

/** Reads every tensor of `config` from a reader, by the name `fileName(ggufName)`. */
async function readParams(
  reader: TensorReader,
  c: LlamaConfig,
  fileName: (name: string) => string,
  tiedOutput: boolean,
): Promise<Params> {
  const params: Params = new Map();
  for (const { name, shape } of paramSpecs(c)) {
    let source = fileName(name);
    if (name === "output.weight" && !reader.has(source) && tiedOutput)
      source = fileName("token_embd.weight");
    if (!reader.has(source)) throw new Error(`${reader.path}: tensor ${source} is missing`);
    const info = reader.info(source);
    if (info.shape.join(",") !== shape.join(",")) {
      throw new Error(
        `${reader.path}: tensor ${source} has shape [${info.shape}], expected [${shape}]`,
      );
    }
    params.set(name, await reader.read(source));
  }
  return params;
}

/** Config and weights of a `llama`-arch GGUF with F32/F16/BF16 (or Q8_0) tensors. */
export async function loadGguf(path: string): Promise<{ config: LlamaConfig; params: Params }> {
  const reader = await openGguf(path);
  try {
    const meta = plainMetadata(reader.metadata);
    const arch = meta["general.architecture"];
    if (arch !== "llama") {
      throw new Error(
        `${path}: general.architecture is ${JSON.stringify(arch)}; only "llama" models can be loaded`,
      );
    }
    const need = (key: string) => {
      const v = asNumber(meta, key, path);
      if (v === undefined) throw new Error(`${path}: metadata ${key} is missing`);
      return v;
    };
    const embd = reader.has("token_embd.weight") ? reader.info("token_embd.weight").shape : [];
    const tokens = meta["tokenizer.ggml.tokens"];
    const vocabSize =
      asNumber(meta, "llama.vocab_size", path) ?? (Array.isArray(tokens) ? tokens.length : embd[0]);
    const nHeads = need("llama.attention.head_count");
    const config = validateConfig({
      vocabSize,
      dim: need("llama.embedding_length"),
      nLayers: need("llama.block_count"),
      nHeads,
      nKvHeads: asNumber(meta, "llama.attention.head_count_kv", path) ?? nHeads,
      ffnDim: need("llama.feed_forward_length"),
      contextLength: need("llama.context_length"),
      ropeTheta: shortestFloat32(asNumber(meta, "llama.rope.freq_base", path) ?? 10000),
      normEps: shortestFloat32(need("llama.attention.layer_norm_rms_epsilon")),
    });
    const ropeDims = asNumber(meta, "llama.rope.dimension_count", path);
    if (ropeDims !== undefined && ropeDims !== headDim(config)) {
      throw new Error(
        `${path}: partial RoPE (rope.dimension_count ${ropeDims} ≠ head size ${headDim(config)}) is not supported`,
      );
    }
    const params = await readParams(reader, config, (n) => n, true);
    return { config, params };
  } finally {
    await reader.close();
  }
}

/** Hugging Face `config.json` fields of a LlamaForCausalLM with this shape. */
export function hfConfig(c: LlamaConfig): Record<string, unknown> {
  return {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    vocab_size: c.vocabSize,
    hidden_size: c.dim,
    intermediate_size: c.ffnDim,
    num_hidden_layers: c.nLayers,
    num_attention_heads: c.nHeads,
    num_key_value_heads: c.nKvHeads,
    head_dim: headDim(c),
    max_position_embeddings: c.contextLength,
    rms_norm_eps: c.normEps,
    rope_theta: c.ropeTheta,
    rope_scaling: null,
    hidden_act: "silu",
    attention_bias: false,
    attention_dropout: 0,
    mlp_bias: false,
    tie_word_embeddings: false,
    initializer_range: 0.02,
    pretraining_tp: 1,
    use_cache: true,
    bos_token_id: BOS_ID,
    eos_token_id: EOS_ID,
    torch_dtype: "float32",
  };
}

/** Writes `dir/model.safetensors` (HF names, rotate-half Q/K rows) and `dir/config.json`. */
export async function exportHfSafetensors(
  dir: string,
  config: LlamaConfig,
  params: Params,
  opts: { dtype?: FloatDType } = {},
): Promise<void> {
  const c = validateConfig(config);
  validateParams(params, c);
  const dtype = opts.dtype ?? "F32";
  await mkdir(dir, { recursive: true });
  const tensors: TensorToWrite[] = paramSpecs(c).map(({ name, shape }) => {
    const w = params.get(name) as Float32Array;
    const heads = qkPermuteHeads(name, c.nHeads, c.nKvHeads);
    return {
      name: ggufToHfName(name),
      dtype: shape.length === 1 ? "F32" : dtype,
      shape,
      data: heads === null ? w : permuteQKGgufToHf(w, shape[0], shape[1], heads),
    };
  });
  await writeSafetensors(join(dir, "model.safetensors"), tensors);
  await writeFile(join(dir, "config.json"), `${JSON.stringify(hfConfig(c), null, 2)}\n`);
}

/** Config and weights (GGUF names and row order) of a Hugging Face LLaMA checkpoint directory. */
export async function loadHfSafetensors(
  dir: string,
): Promise<{ config: LlamaConfig; params: Params }> {
  let hf: Record<string, unknown>;
  try {
    hf = JSON.parse(await readFile(join(dir, "config.json"), "utf8"));
  } catch (e) {
    throw new Error(`${dir}: cannot read config.json (${(e as Error).message})`);
  }
  if (hf.model_type !== "llama") {
    throw new Error(
      `${dir}: config.json model_type is ${JSON.stringify(hf.model_type)}; only "llama" is supported`,
    );
  }
  const num = (key: string, fallback?: number) => {
    const v = hf[key] ?? fallback;
    if (typeof v !== "number") throw new Error(`${dir}: config.json ${key} must be a number`);
    return v;
  };
  const nHeads = num("num_attention_heads");
  const config = validateConfig({
    vocabSize: num("vocab_size"),
    dim: num("hidden_size"),
    nLayers: num("num_hidden_layers"),
    nHeads,
    nKvHeads: num("num_key_value_heads", nHeads),
    ffnDim: num("intermediate_size"),
    contextLength: num("max_position_embeddings"),
    ropeTheta: num("rope_theta", 10000),
    normEps: num("rms_norm_eps"),
  });
  if (hf.head_dim !== undefined && hf.head_dim !== null && hf.head_dim !== headDim(config)) {
    throw new Error(
      `${dir}: head_dim ${hf.head_dim} ≠ hidden_size / num_attention_heads; not supported`,
    );
  }
  const reader = await openSafetensors(dir);
  try {
    const params = await readParams(reader, config, ggufToHfName, hf.tie_word_embeddings === true);
    for (const { name, shape } of paramSpecs(config)) {
      const heads = qkPermuteHeads(name, config.nHeads, config.nKvHeads);
      if (heads !== null) {
        params.set(
          name,
          permuteQKHfToGguf(params.get(name) as Float32Array, shape[0], shape[1], heads),
        );
      }
    }
    return { config, params };
  } finally {
    await reader.close();
  }
}
