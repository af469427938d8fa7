import { aggregateRun, exportElite, type WrittenModel } from "../../run/export.ts";
import { type Command, type ParsedArgs, table, UsageError } from "../command.ts";

function report(m: WrittenModel, json: boolean): void {
  if (json) {
    console.log(JSON.stringify(m, null, 2));
    return;
  }
  console.log(
    table(
      ["id", "archive", "weight"],
      m.sources.map((s) => [s.id, s.archive ?? "", s.weight.toFixed(4)]),
    ),
  );
  console.log(`\nwrote ${m.gguf}${m.safetensors ? ` and ${m.safetensors}/` : ""}`);
}

function runAndOut(
  args: ParsedArgs,
  what: string,
): { dir: string; out: string; safetensors?: string } {
  if (args.positionals.length !== 1) throw new UsageError(`expects exactly one RUN directory`);
  const out = args.values.out as string | undefined;
  if (!out) throw new UsageError(`--out FILE.gguf is required: where to write the ${what}`);
  return {
    dir: args.positionals[0],
    out,
    safetensors: args.values.safetensors as string | undefined,
  };
}

const outputOptions = {
  out: { type: "string" },
  safetensors: { type: "string" },
  json: { type: "boolean" },
} as const;

const outputHelp = `
  --out FILE          the GGUF file to write (required)
  --safetensors DIR   also write a Hugging Face folder (config.json + model.safetensors)
  --json              print what was written as JSON`;

export const aggregate: Command = {
  name: "aggregate",
  summary: "Merge the best elite of every archive of a run into one model (the CycleQD result).",
  usage: "RUN --out MODEL.gguf [--safetensors DIR] [--json]",
  help: `
Takes the best elite (highest quality) of each archive and writes
θ = θ₀ + Σ_k β_k τ_k, with β the softmax of those qualities. Works on finished,
interrupted and running searches: it reads the archives as they are now.

Options:${outputHelp}`,
  options: outputOptions,
  async run(args) {
    const { dir, out, safetensors } = runAndOut(args, "aggregated model");
    report(await aggregateRun(dir, out, { safetensors }), Boolean(args.values.json));
    return 0;
  },
};

export const exportCmd: Command = {
  name: "export",
  summary: "Write one elite of a run's archives as a model file.",
  usage: "RUN --elite ARCHIVE:CELL --out FILE.gguf [--safetensors DIR] [--json]",
  help: `
ARCHIVE is a skill name (or its index); CELL is the flat cell index or the bin
coordinates of the other skills' scores, e.g. code:3,7. \`cycleqd status RUN\` lists them.

Options:
  --elite ARCHIVE:CELL  which elite (required)${outputHelp}`,
  options: { ...outputOptions, elite: { type: "string" } },
  async run(args) {
    const { dir, out, safetensors } = runAndOut(args, "elite");
    const elite = args.values.elite as string | undefined;
    if (!elite) throw new UsageError("--elite ARCHIVE:CELL is required");
    report(await exportElite(dir, elite, out, { safetensors }), Boolean(args.values.json));
    return 0;
  },
};
