import { MERGE_METHODS, type MergeMethodName, mergeModels } from "../../merge/index.ts";
import { DEFAULT_DENSITY, DEFAULT_DROP, DEFAULT_LAMBDA } from "../../merge/params.ts";
import type { FloatDType } from "../../tensors/dtype.ts";
import { type Command, type ParsedArgs, UsageError } from "../command.ts";

const DTYPES: readonly string[] = ["F32", "F16", "BF16"];
const FORMATS: readonly string[] = ["gguf", "safetensors"];

/** "  name  summary" with the summary wrapped under itself to fit 100 columns. */
function methodLines(): string {
  const indent = " ".repeat(19);
  return [...MERGE_METHODS.values()]
    .map((m) => {
      const lines: string[] = [];
      let line = "";
      for (const word of m.summary.split(" ")) {
        if (line && indent.length + line.length + 1 + word.length > 100) {
          lines.push(line);
          line = word;
        } else line = line ? `${line} ${word}` : word;
      }
      lines.push(line);
      return `  ${m.name.padEnd(16)} ${lines.join(`\n${indent}`)}`;
    })
    .join("\n");
}

function text(args: ParsedArgs, name: string): string | undefined {
  const v = args.values[name];
  return typeof v === "string" ? v : undefined;
}

/** A number option: undefined when absent, a usage error when not a number. */
function number(args: ParsedArgs, name: string): number | undefined {
  const v = text(args, name);
  if (v === undefined) return undefined;
  const x = v.trim() === "" ? Number.NaN : Number(v);
  if (!Number.isFinite(x))
    throw new UsageError(`--${name} must be a number, got ${JSON.stringify(v)}`);
  return x;
}

function weights(args: ParsedArgs): number[] | undefined {
  const v = text(args, "weights");
  if (v === undefined) return undefined;
  return v.split(",").map((s, i) => {
    const x = s.trim() === "" ? Number.NaN : Number(s);
    if (!Number.isFinite(x)) {
      throw new UsageError(`--weights: value ${i + 1} (${JSON.stringify(s)}) is not a number`);
    }
    return x;
  });
}

export const merge: Command = {
  name: "merge",
  summary:
    "Merge a base model and its experts with a baseline method (linear, task arithmetic, TIES, DARE).",
  usage: "--method METHOD --base BASE --expert FILE [--expert FILE...] --out OUT [options]",
  help: `
Merges K experts fine-tuned from one base into a single model, tensor by tensor, streaming
(one tensor of each model in memory at a time). With task vectors τ_k = θ_k − θ₀ and weights w_k:

${methodLines()}

Every tensor is merged the same way, 1-D norm weights included. TIES trims each tensor's task
vector on its own. DARE's drop masks come from (seed, tensor name, expert), so a merge is
reproducible. linear averages the experts only; to include the base, give it as an expert too.

Options:
  --method METHOD     ${[...MERGE_METHODS.keys()].join(" | ")}
  --base BASE         the base model: GGUF file, or safetensors file / Hugging Face folder
  --expert FILE       an expert of the same architecture and tokenizer (repeat; ties and
                      dare need at least 2)
  --out OUT           output .gguf file, or folder for safetensors (a path ending in / or
                      an existing folder means safetensors); missing folders are created
  --weights W1,W2,..  one weight per expert, in order (default 1 each)
  --lambda X          scale of the merged task vector (default ${DEFAULT_LAMBDA}; not linear)
  --density D         ties: fraction of each task vector kept, in (0, 1] (default ${DEFAULT_DENSITY})
  --drop P            dare, dare-ties: drop probability, in [0, 1) (default ${DEFAULT_DROP})
  --seed N            dare, dare-ties: seed of the drop masks (default 0)
  --normalize         divide by the summed weights (of agreeing entries for ties and
                      dare-ties); default on for linear and ties, off for the others
  --no-normalize      do not divide
  --dtype T           F32 | F16 | BF16 for every tensor of 2+ dimensions; 1-D tensors keep the
                      base's type (default: every tensor keeps the base's type, F32 for types
                      that cannot be written)
  --format F          gguf | safetensors (default: safetensors where --out ends in / or is a
                      folder, else the base's format). GGUF output copies the base's
                      metadata; safetensors output is a Hugging Face folder with the base
                      folder's config.json and tokenizer files (from a GGUF llama base: HF
                      names, rotate-half Q/K rows and a generated config.json)
  --json              print the summary as JSON`,
  options: {
    method: { type: "string" },
    base: { type: "string" },
    expert: { type: "string", multiple: true },
    out: { type: "string" },
    weights: { type: "string" },
    lambda: { type: "string" },
    density: { type: "string" },
    drop: { type: "string" },
    seed: { type: "string" },
    normalize: { type: "boolean" },
    "no-normalize": { type: "boolean" },
    dtype: { type: "string" },
    format: { type: "string" },
    json: { type: "boolean" },
  },
  async run(args) {
    if (args.positionals.length > 0) {
      throw new UsageError(
        `unexpected argument ${JSON.stringify(args.positionals[0])}; give experts with --expert`,
      );
    }
    const method = text(args, "method");
    if (method === undefined) throw new UsageError("--method is required");
    if (!MERGE_METHODS.has(method as MergeMethodName)) {
      throw new UsageError(
        `unknown --method ${JSON.stringify(method)}; choose one of ${[...MERGE_METHODS.keys()].join(", ")}`,
      );
    }
    const base = text(args, "base");
    if (base === undefined) throw new UsageError("--base is required");
    const experts = (args.values.expert ?? []) as string[];
    if (experts.length === 0) throw new UsageError("give at least one --expert");
    const out = text(args, "out");
    if (out === undefined) throw new UsageError("--out is required");
    if (args.values.normalize && args.values["no-normalize"]) {
      throw new UsageError("--normalize and --no-normalize contradict each other; give one");
    }
    const dtype = text(args, "dtype")?.toUpperCase();
    if (dtype !== undefined && !DTYPES.includes(dtype)) {
      throw new UsageError(`--dtype must be one of ${DTYPES.join(", ")}, got ${dtype}`);
    }
    const format = text(args, "format")?.toLowerCase();
    if (format !== undefined && !FORMATS.includes(format)) {
      throw new UsageError(`--format must be gguf or safetensors, got ${format}`);
    }
    const m = MERGE_METHODS.get(method as MergeMethodName);
    const seed = number(args, "seed") ?? (m?.params.includes("seed") ? 0 : undefined);
    const summary = await mergeModels({
      method: method as MergeMethodName,
      base,
      experts,
      out,
      weights: weights(args),
      lambda: number(args, "lambda"),
      density: number(args, "density"),
      drop: number(args, "drop"),
      seed,
      normalize: args.values.normalize ? true : args.values["no-normalize"] ? false : undefined,
      dtype: dtype as FloatDType | undefined,
      format: format as "gguf" | "safetensors" | undefined,
    });
    if (args.values.json) {
      console.log(JSON.stringify({ base, experts, ...summary }, null, 2));
      return 0;
    }
    const p = summary.params;
    const used = m?.params ?? [];
    const parts = [
      `weights ${p.weights.join(",")}`,
      ...used.map((k) => `${k} ${p[k]}`),
      p.normalize ? "normalized" : "not normalized",
    ];
    console.log(
      `merged ${summary.tensors} tensors of ${base} + ${experts.length} expert(s) with ${summary.method} (${parts.join(", ")})`,
    );
    console.log(`wrote ${summary.format}: ${summary.files.join(", ")}`);
    return 0;
  },
};
