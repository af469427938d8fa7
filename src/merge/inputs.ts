/**
 * The models a merge reads: a base and its experts, opened lazily and checked to be one
 * architecture (same tensors, shapes and vocabulary) before any tensor is read.
 */
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import type { GgufReader } from "../tensors/gguf.ts";
import { plainValue } from "../tensors/gguf.ts";
import { type AnyTensorReader, openTensorFile } from "../tensors/open.ts";

/** Tensor types a merge reads (decoded to float32); integer tensors are not weights. */
const MERGEABLE_DTYPES: readonly string[] = ["F64", "F32", "F16", "BF16", "Q8_0"];

export interface MergeInputs {
  base: AnyTensorReader;
  experts: AnyTensorReader[];
  /** Paths as the caller gave them (a directory for a Hugging Face checkpoint). */
  basePath: string;
  expertPaths: string[];
  close(): Promise<void>;
}

/** Opens the base and every expert and checks that they can be merged. */
export async function openMergeInputs(
  basePath: string,
  expertPaths: readonly string[],
): Promise<MergeInputs> {
  if (typeof basePath !== "string" || basePath === "") {
    throw new Error("merge: give the base model (a GGUF file or a safetensors file/folder)");
  }
  if (!Array.isArray(expertPaths) || expertPaths.length === 0) {
    throw new Error("merge: give at least one expert model");
  }
  const opened: AnyTensorReader[] = [];
  const close = async () => {
    await Promise.all(opened.map((r) => r.close()));
  };
  try {
    for (const p of [basePath, ...expertPaths]) opened.push(await openTensorFile(p));
    const [base, ...experts] = opened;
    checkMergeable(base, experts);
    await checkHfTokenizers(basePath, expertPaths);
    return { base, experts, basePath, expertPaths: [...expertPaths], close };
  } catch (e) {
    await close();
    throw e;
  }
}

/**
 * Throws unless every expert has the base's format, tensor names and shapes, mergeable
 * types, and (GGUF) architecture, layer and head counts and vocabulary.
 */
export function checkMergeable(base: AnyTensorReader, experts: readonly AnyTensorReader[]): void {
  for (const t of base.tensors) {
    if (!MERGEABLE_DTYPES.includes(t.dtype)) {
      throw new Error(
        `${base.path}: tensor "${t.name}" is ${t.dtype}; merge reads ${MERGEABLE_DTYPES.join(", ")} (convert the model to F16 or F32 first)`,
      );
    }
  }
  for (const e of experts) {
    if (e.format !== base.format) {
      throw new Error(
        `${e.path}: is ${e.format} but the base ${base.path} is ${base.format}; give every model in one format (convert with llama.cpp's convert_hf_to_gguf.py)`,
      );
    }
    checkSameTensors(base, e);
    if (base.format === "gguf" && e.format === "gguf") checkSameGgufModel(base, e);
  }
}

function checkSameTensors(base: AnyTensorReader, e: AnyTensorReader): void {
  const missing = base.tensors.filter((t) => !e.has(t.name)).map((t) => t.name);
  if (missing.length > 0) {
    throw new Error(
      `${e.path}: lacks ${missing.length} tensor(s) of the base ${base.path}, e.g. "${missing[0]}"; experts must be fine-tunes of the base with the same architecture`,
    );
  }
  const extra = e.tensors.filter((t) => !base.has(t.name)).map((t) => t.name);
  if (extra.length > 0) {
    throw new Error(
      `${e.path}: has ${extra.length} tensor(s) the base ${base.path} lacks, e.g. "${extra[0]}"; experts must be fine-tunes of the base with the same architecture`,
    );
  }
  for (const t of base.tensors) {
    const s = e.info(t.name);
    if (s.shape.join(",") !== t.shape.join(",")) {
      throw new Error(
        `${e.path}: tensor "${t.name}" has shape [${s.shape.join(", ")}] but [${t.shape.join(", ")}] in the base ${base.path}; experts must share the base's architecture`,
      );
    }
    if (!MERGEABLE_DTYPES.includes(s.dtype)) {
      throw new Error(
        `${e.path}: tensor "${t.name}" is ${s.dtype}; merge reads ${MERGEABLE_DTYPES.join(", ")} (convert the model to F16 or F32 first)`,
      );
    }
  }
}

/** Keys whose values must agree for tensors of equal shape to mean the same thing. */
function structuralKeys(arch: string): string[] {
  return [
    "general.architecture",
    `${arch}.block_count`,
    `${arch}.embedding_length`,
    `${arch}.attention.head_count`,
    `${arch}.attention.head_count_kv`,
    "tokenizer.ggml.model",
  ];
}

function checkSameGgufModel(base: GgufReader, e: GgufReader): void {
  const arch = String(base.metadata.get("general.architecture")?.value ?? "");
  for (const key of structuralKeys(arch)) {
    const a = base.metadata.get(key);
    const b = e.metadata.get(key);
    const show = (v: typeof a) => (v === undefined ? "missing" : JSON.stringify(plainValue(v)));
    if (show(a) !== show(b)) {
      throw new Error(
        `${e.path}: metadata ${key} is ${show(b)} but ${show(a)} in the base ${base.path}; experts must share the base's architecture`,
      );
    }
  }
  const key = "tokenizer.ggml.tokens";
  const a = base.metadata.get(key);
  const b = e.metadata.get(key);
  if (a === undefined && b === undefined) return;
  const ta = a?.type === "array" ? a.value : undefined;
  const tb = b?.type === "array" ? b.value : undefined;
  if (ta === undefined || tb === undefined) {
    const which = ta === undefined ? `the base ${base.path}` : e.path;
    throw new Error(
      `${e.path}: ${which} has no ${key} array while the other has one; experts must use the base's tokenizer`,
    );
  }
  if (ta.length !== tb.length) {
    throw new Error(
      `${e.path}: vocabulary has ${tb.length} tokens but the base ${base.path} has ${ta.length}; experts must use the base's tokenizer`,
    );
  }
  for (let i = 0; i < ta.length; i++) {
    if (ta[i] !== tb[i]) {
      throw new Error(
        `${e.path}: token ${i} is ${JSON.stringify(tb[i])} but ${JSON.stringify(ta[i])} in the base ${base.path}; experts must use the base's tokenizer`,
      );
    }
  }
}

/**
 * Hugging Face folders keep the vocabulary in tokenizer.json beside the weights: where the base
 * and an expert both have one, their vocabularies and added tokens must agree.
 */
async function checkHfTokenizers(basePath: string, expertPaths: readonly string[]) {
  const base = await tokenizerVocab(basePath);
  if (base === undefined) return;
  for (const p of expertPaths) {
    const v = await tokenizerVocab(p);
    if (v !== undefined && v !== base) {
      throw new Error(
        `${join(p, "tokenizer.json")}: vocabulary differs from the base's ${join(basePath, "tokenizer.json")}; experts must use the base's tokenizer`,
      );
    }
  }
}

async function tokenizerVocab(path: string): Promise<string | undefined> {
  const info = await stat(path).catch(() => null);
  if (!info?.isDirectory()) return undefined;
  const file = join(path, "tokenizer.json");
  const text = await readFile(file, "utf8").catch(() => null);
  if (text === null) return undefined;
  try {
    const json = JSON.parse(text) as { model?: { vocab?: unknown }; added_tokens?: unknown };
    return JSON.stringify([json.model?.vocab ?? null, json.added_tokens ?? null]);
  } catch (e) {
    throw new Error(`${file}: is not valid JSON (${(e as Error).message})`);
  }
}
