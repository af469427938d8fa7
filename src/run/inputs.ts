/**
 * The run's input models: checked before any work (files exist, one format, the same
 * tensors and shapes, the same tokenizer), then made ready for llama.cpp. GGUF files are
 * used as they are; a Hugging Face folder of the project's tiny LLaMA layout is converted to
 * GGUF once, under RUN/inputs.
 */
import { createHash } from "node:crypto";
import { mkdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { exportGguf, loadHfSafetensors } from "../llm/export.ts";
import { VOCAB_SIZE } from "../llm/tokenizer.ts";
import { plainValue } from "../tensors/gguf.ts";
import { type AnyTensorReader, openTensorFile } from "../tensors/open.ts";
import { PACKAGE_ROOT, type RunConfig } from "./config.ts";
import { buildSkills } from "./skill-sources.ts";

/** A model as the user named it and the GGUF file that is evaluated and factored. */
export interface InputModel {
  /** "base" or the skill whose expert it is. */
  role: string;
  source: string;
  format: "gguf" | "safetensors";
  /** The GGUF path (equal to `source` for GGUF inputs). */
  gguf: string;
}

export interface Inputs {
  base: InputModel;
  /** In the config's skill order. */
  experts: InputModel[];
}

/** Hugging Face tokenizer files compared byte for byte between models. */
const HF_TOKENIZER_FILES = [
  "tokenizer.json",
  "tokenizer.model",
  "tokenizer_config.json",
  "special_tokens_map.json",
  "vocab.json",
  "merges.txt",
];

const label = (role: string) => (role === "base" ? "models.base" : `models.experts.${role}`);

/**
 * Checks the models and skills of a config without writing anything: each model exists, all
 * share one format, every expert has exactly the base's tensors with the same shapes, and
 * all use the same tokenizer; every skill's data files load. Returns the base's parameter
 * count. Throws one error naming the model or data file and what is wrong.
 */
export async function checkInputs(config: RunConfig): Promise<{ baseParameters: number }> {
  buildSkills(config);
  const entries: [string, string][] = [
    ["base", config.models.base],
    ...config.skills.map((s) => [s, config.models.experts[s]] as [string, string]),
  ];
  if (entries.length < 3) {
    throw new Error(
      `CycleQD needs at least two experts (one per skill); the config has ${entries.length - 1}`,
    );
  }
  for (const [role, path] of entries) await mustExist(role, path);
  const readers: AnyTensorReader[] = [];
  try {
    for (const [role, path] of entries) {
      try {
        readers.push(await openTensorFile(path));
      } catch (e) {
        throw new Error(`${label(role)}: ${(e as Error).message}`);
      }
    }
    const [base, ...experts] = readers;
    for (let i = 0; i < experts.length; i++) {
      const role = entries[i + 1][0];
      const ex = experts[i];
      if (ex.format !== base.format) {
        throw new Error(
          `${label(role)} is ${ex.format} but models.base is ${base.format}; give every model in one format`,
        );
      }
      compareTensors(base, ex, role);
      await compareTokenizers(base, ex, entries[0][1], entries[i + 1][1], role);
    }
    if (base.format === "safetensors") {
      for (const [role, path] of entries) await checkConvertible(role, path);
    }
    const baseParameters = base.tensors.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
    return { baseParameters };
  } finally {
    for (const r of readers) await r.close();
  }
}

async function mustExist(role: string, path: string): Promise<void> {
  try {
    await stat(path);
  } catch {
    const zoo = path.startsWith(join(PACKAGE_ROOT, "zoo"))
      ? " (a default zoo model: build the zoo with `cycleqd zoo build`, or name your models in the config)"
      : "";
    throw new Error(`${label(role)}: ${path} does not exist${zoo}`);
  }
}

function compareTensors(base: AnyTensorReader, ex: AnyTensorReader, role: string): void {
  const missing = base.tensors.filter((t) => !ex.has(t.name)).map((t) => t.name);
  if (missing.length) {
    throw new Error(
      `${label(role)} (${ex.path}) lacks ${missing.length} tensor(s) of the base: ${list(missing)}; experts must be fine-tunes of the base`,
    );
  }
  const names = new Set(base.tensors.map((t) => t.name));
  const extra = ex.tensors.filter((t) => !names.has(t.name)).map((t) => t.name);
  if (extra.length) {
    throw new Error(
      `${label(role)} (${ex.path}) has ${extra.length} tensor(s) the base lacks: ${list(extra)}; experts must be fine-tunes of the base`,
    );
  }
  for (const t of base.tensors) {
    const shape = ex.info(t.name).shape;
    if (shape.join(",") !== t.shape.join(",")) {
      throw new Error(
        `${label(role)} (${ex.path}): tensor "${t.name}" has shape [${shape.join(", ")}] but [${t.shape.join(", ")}] in the base; experts must have the base's architecture`,
      );
    }
  }
}

async function compareTokenizers(
  base: AnyTensorReader,
  ex: AnyTensorReader,
  basePath: string,
  exPath: string,
  role: string,
): Promise<void> {
  const fail = (what: string) => {
    throw new Error(
      `${label(role)} (${exPath}) uses a different tokenizer than the base: ${what}; merging needs one shared vocabulary`,
    );
  };
  if (base.format === "gguf" && ex.format === "gguf") {
    const keys = new Set(
      [...base.metadata.keys(), ...ex.metadata.keys()].filter(
        (k) => k.startsWith("tokenizer.") || k === "general.architecture",
      ),
    );
    for (const k of [...keys].sort()) {
      const a = base.metadata.get(k);
      const b = ex.metadata.get(k);
      if (!a || !b) fail(`metadata ${k} is only in ${a ? "the base" : "the expert"}`);
      else if (JSON.stringify(plainValue(a)) !== JSON.stringify(plainValue(b))) {
        fail(`metadata ${k} differs`);
      }
    }
    return;
  }
  for (const f of HF_TOKENIZER_FILES) {
    const [a, b] = [await fileHash(join(basePath, f)), await fileHash(join(exPath, f))];
    if (a !== b) fail(a && b ? `${f} differs` : `${f} is only in ${a ? "the base" : "the expert"}`);
  }
  const [va, vb] = [await hfVocabSize(basePath), await hfVocabSize(exPath)];
  if (va !== vb) fail(`config.json vocab_size ${vb} vs ${va}`);
}

async function fileHash(path: string): Promise<string | null> {
  try {
    return createHash("sha256")
      .update(await readFile(path))
      .digest("hex");
  } catch {
    return null;
  }
}

async function hfVocabSize(dir: string): Promise<number | undefined> {
  try {
    return JSON.parse(await readFile(join(dir, "config.json"), "utf8")).vocab_size;
  } catch {
    return undefined;
  }
}

/** llama.cpp runs GGUF only; cycleqd converts HF folders with its own tiny vocabulary. */
async function checkConvertible(role: string, path: string): Promise<void> {
  const how = "convert it with llama.cpp's convert_hf_to_gguf.py and name the .gguf in the config";
  if (!(await stat(path)).isDirectory()) {
    throw new Error(
      `${label(role)}: ${path} is a bare safetensors file without config.json; ${how}`,
    );
  }
  for (const f of HF_TOKENIZER_FILES) {
    if (await fileHash(join(path, f))) {
      throw new Error(
        `${label(role)}: ${path} has its own tokenizer (${f}), which cycleqd cannot convert to GGUF; ${how}`,
      );
    }
  }
  const v = await hfVocabSize(path);
  if (v !== VOCAB_SIZE) {
    throw new Error(
      `${label(role)}: ${path} has vocab_size ${v}, not the ${VOCAB_SIZE} of cycleqd's tiny-model tokenizer; ${how}`,
    );
  }
}

/**
 * Checks the inputs and returns their GGUF paths, converting HF folders into `dir`
 * (RUN/inputs) the first time.
 */
export async function prepareInputs(config: RunConfig, dir: string): Promise<Inputs> {
  await checkInputs(config);
  const fmt = (await openFormat(config.models.base)) as "gguf" | "safetensors";
  const one = async (role: string, source: string): Promise<InputModel> => {
    if (fmt === "gguf") return { role, source, format: fmt, gguf: source };
    const gguf = join(dir, `${role}.gguf`);
    if (!(await exists(gguf))) {
      const { config: c, params } = await loadHfSafetensors(source);
      await mkdir(dir, { recursive: true });
      await exportGguf(gguf, c, params, { name: `cycleqd-input-${role}` });
    }
    return { role, source, format: fmt, gguf };
  };
  const base = await one("base", config.models.base);
  const experts: InputModel[] = [];
  for (const s of config.skills) experts.push(await one(s, config.models.experts[s]));
  return { base, experts };
}

async function openFormat(path: string): Promise<string> {
  const r = await openTensorFile(path);
  const f = r.format;
  await r.close();
  return f;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

function list(names: string[]): string {
  const head = names.slice(0, 3).map((n) => `"${n}"`);
  return head.join(", ") + (names.length > 3 ? `, … (${names.length - 3} more)` : "");
}
