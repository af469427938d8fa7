/**
 * A tiny random `llama` model as GGUF, small enough to load in milliseconds, with a character
 * vocabulary that llama.cpp accepts: specials, the 256 byte tokens, `▁` and printable ASCII.
 */
import type { FloatDType } from "../../src/tensors/dtype.ts";
import {
  type GgufReader,
  type GgufValue,
  gguf,
  openGguf,
  writeGguf,
} from "../../src/tensors/gguf.ts";
import type { TensorToWrite } from "../../src/tensors/types.ts";
import { Rng } from "../../src/util/rng.ts";

export interface TinyLlamaOptions {
  nEmbd?: number;
  nLayer?: number;
  nHead?: number;
  nHeadKv?: number;
  nFf?: number;
  contextLength?: number;
  seed?: number;
  /** Storage type of the matrices; norm weights are always F32. */
  dtype?: FloatDType;
  /** Standard deviation of the random matrix entries. */
  std?: number;
}

export interface TinyLlamaConfig extends Required<TinyLlamaOptions> {
  nVocab: number;
}

/** Token type ids as llama.cpp defines them. */
export const TOKEN_TYPE = { normal: 1, unknown: 2, control: 3, byte: 6 } as const;

export interface TinyVocab {
  tokens: string[];
  types: number[];
  scores: number[];
}

/** ids 0–2 `<unk>` `<s>` `</s>`; 3–258 `<0x00>`…`<0xFF>`; then `▁` and ASCII 0x21–0x7E. */
export function tinyVocab(): TinyVocab {
  const tokens = ["<unk>", "<s>", "</s>"];
  const types: number[] = [TOKEN_TYPE.unknown, TOKEN_TYPE.control, TOKEN_TYPE.control];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
    types.push(TOKEN_TYPE.byte);
  }
  tokens.push("▁");
  types.push(TOKEN_TYPE.normal);
  for (let c = 0x21; c <= 0x7e; c++) {
    tokens.push(String.fromCharCode(c));
    types.push(TOKEN_TYPE.normal);
  }
  // Higher scores for single characters keep SentencePiece's choice deterministic.
  const scores = types.map((t, i) => (t === TOKEN_TYPE.normal ? -i : 0));
  return { tokens, types, scores };
}

export function tinyLlamaConfig(opts: TinyLlamaOptions = {}): TinyLlamaConfig {
  return {
    nEmbd: opts.nEmbd ?? 32,
    nLayer: opts.nLayer ?? 2,
    nHead: opts.nHead ?? 4,
    nHeadKv: opts.nHeadKv ?? opts.nHead ?? 4,
    nFf: opts.nFf ?? 64,
    contextLength: opts.contextLength ?? 64,
    seed: opts.seed ?? 1,
    dtype: opts.dtype ?? "F32",
    std: opts.std ?? 0.1,
    nVocab: tinyVocab().tokens.length,
  };
}

export function tinyLlamaMetadata(cfg: TinyLlamaConfig): Map<string, GgufValue> {
  const vocab = tinyVocab();
  return new Map<string, GgufValue>([
    ["general.architecture", gguf.str("llama")],
    ["general.name", gguf.str("tiny-random-llama")],
    ["llama.context_length", gguf.u32(cfg.contextLength)],
    ["llama.embedding_length", gguf.u32(cfg.nEmbd)],
    ["llama.block_count", gguf.u32(cfg.nLayer)],
    ["llama.feed_forward_length", gguf.u32(cfg.nFf)],
    ["llama.attention.head_count", gguf.u32(cfg.nHead)],
    ["llama.attention.head_count_kv", gguf.u32(cfg.nHeadKv)],
    ["llama.attention.layer_norm_rms_epsilon", gguf.f32(1e-5)],
    ["llama.rope.dimension_count", gguf.u32(cfg.nEmbd / cfg.nHead)],
    ["llama.vocab_size", gguf.u32(cfg.nVocab)],
    ["tokenizer.ggml.model", gguf.str("llama")],
    ["tokenizer.ggml.tokens", gguf.arr("string", vocab.tokens)],
    ["tokenizer.ggml.scores", gguf.arr("float32", vocab.scores)],
    ["tokenizer.ggml.token_type", gguf.arr("int32", vocab.types)],
    ["tokenizer.ggml.bos_token_id", gguf.u32(1)],
    ["tokenizer.ggml.eos_token_id", gguf.u32(2)],
    ["tokenizer.ggml.unknown_token_id", gguf.u32(0)],
    ["tokenizer.ggml.add_bos_token", gguf.bool(true)],
    ["tokenizer.ggml.add_space_prefix", gguf.bool(false)],
  ]);
}

/** Tensors in GGUF names; shapes are PyTorch order ([out, in]), so ne = [in, out] on disk. */
export function tinyLlamaTensors(cfg: TinyLlamaConfig): TensorToWrite[] {
  const rng = new Rng(cfg.seed);
  const { nEmbd: e, nFf: f, nVocab: v } = cfg;
  const kv = (e / cfg.nHead) * cfg.nHeadKv;
  const matrix = (name: string, rows: number, cols: number): TensorToWrite => ({
    name,
    dtype: cfg.dtype,
    shape: [rows, cols],
    data: randomArray(rng, rows * cols, 0, cfg.std),
  });
  const norm = (name: string): TensorToWrite => ({
    name,
    dtype: "F32",
    shape: [e],
    data: randomArray(rng, e, 1, 0.05),
  });
  const out = [matrix("token_embd.weight", v, e)];
  for (let i = 0; i < cfg.nLayer; i++) {
    const b = `blk.${i}`;
    out.push(
      norm(`${b}.attn_norm.weight`),
      matrix(`${b}.attn_q.weight`, e, e),
      matrix(`${b}.attn_k.weight`, kv, e),
      matrix(`${b}.attn_v.weight`, kv, e),
      matrix(`${b}.attn_output.weight`, e, e),
      norm(`${b}.ffn_norm.weight`),
      matrix(`${b}.ffn_gate.weight`, f, e),
      matrix(`${b}.ffn_up.weight`, f, e),
      matrix(`${b}.ffn_down.weight`, e, f),
    );
  }
  out.push(norm("output_norm.weight"), matrix("output.weight", v, e));
  return out;
}

function randomArray(rng: Rng, n: number, mean: number, std: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal(mean, std);
  return a;
}

/** Writes a tiny random llama model to `path` and returns its configuration. */
export async function writeTinyLlamaGguf(
  path: string,
  opts: TinyLlamaOptions = {},
): Promise<TinyLlamaConfig> {
  const cfg = tinyLlamaConfig(opts);
  await writeGguf(path, tinyLlamaMetadata(cfg), tinyLlamaTensors(cfg));
  return cfg;
}

/** Writes `base` with N(0, 0.02²) noise added to every weight: a stand-in expert. */
export async function writeNoisyCopy(base: GgufReader, path: string, rng: Rng): Promise<void> {
  await writeGguf(
    path,
    base.metadata,
    base.tensors.map((t) => ({
      name: t.name,
      dtype: "F32" as const,
      shape: t.shape,
      data: async () => (await base.read(t.name)).map((x) => x + rng.normal(0, 0.02)),
    })),
  );
}

/**
 * A tiny random LLaMA on a real vocabulary: its config sized to `vocab`'s token list, and
 * metadata carrying every tokenizer.* key of `vocab` and its general.name (llama.cpp gives
 * phi-3's special tokens their attributes by the model's name).
 */
export function tinyLlamaOnVocab(
  vocab: Map<string, GgufValue>,
  opts: TinyLlamaOptions = {},
): { cfg: TinyLlamaConfig; metadata: Map<string, GgufValue>; tensors: TensorToWrite[] } {
  const tokens = vocab.get("tokenizer.ggml.tokens") as { value: string[] };
  const cfg = { ...tinyLlamaConfig(opts), nVocab: tokens.value.length };
  const metadata = new Map(
    [...tinyLlamaMetadata(cfg)].filter(([k]) => !k.startsWith("tokenizer.")),
  );
  for (const [k, v] of vocab) if (k.startsWith("tokenizer.")) metadata.set(k, v);
  metadata.set("general.name", vocab.get("general.name") as GgufValue);
  return { cfg, metadata, tensors: tinyLlamaTensors(cfg) };
}

/** A GGUF file's metadata (every key), read and the file closed again. */
export async function ggufMetadataOf(path: string): Promise<Map<string, GgufValue>> {
  const reader = await openGguf(path);
  try {
    return reader.metadata;
  } finally {
    await reader.close();
  }
}
