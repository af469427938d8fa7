import { plainMetadata, plainValue } from "../../tensors/gguf.ts";
import { type AnyTensorReader, openTensorFile } from "../../tensors/open.ts";
import { type Command, table, UsageError } from "../command.ts";

/** Long arrays (vocabularies) are shortened in the text view, as gguf-dump does. */
function preview(value: unknown): string {
  if (Array.isArray(value)) {
    const head = value.slice(0, 8).map((v) => JSON.stringify(v));
    return `[${head.join(", ")}${value.length > 8 ? `, … (${value.length} items)` : ""}]`;
  }
  const s = typeof value === "string" ? JSON.stringify(value) : String(value);
  return s.length > 120 ? `${s.slice(0, 117)}…` : s;
}

function metadataOf(file: AnyTensorReader): Record<string, unknown> {
  return file.format === "gguf" ? plainMetadata(file.metadata) : { ...file.metadata };
}

function shapeText(file: AnyTensorReader, name: string): string {
  // GGUF users know tensors by ne (fastest dimension first), as gguf-dump prints them.
  if (file.format === "gguf") return `ne=[${file.ne(name).join(", ")}]`;
  return `[${file.info(name).shape.join(", ")}]`;
}

async function tensorSum(file: AnyTensorReader, name: string): Promise<number | null> {
  try {
    const data = await file.read(name);
    let sum = 0;
    for (let i = 0; i < data.length; i++) sum += data[i];
    return sum;
  } catch {
    return null; // a type cycleqd does not decode (e.g. K-quants): listed, not summed
  }
}

export const inspect: Command = {
  name: "inspect",
  summary: "Show the metadata and tensors of a GGUF or safetensors file (or a sharded directory).",
  usage: "FILE [--json]",
  help: `
FILE is a .gguf file, a .safetensors file, a model.safetensors.index.json, or a Hugging Face
model directory. Prints the metadata and a table of tensors (name, dtype, shape, bytes).
GGUF shapes are shown as ne (fastest dimension first), as llama.cpp's gguf-dump does.

Options:
  --json   every metadata value in full and, per tensor, shape (row-major), dtype, bytes and
           the float sum of its values (reads every tensor)`,
  options: { json: { type: "boolean" } },
  async run(args) {
    if (args.positionals.length !== 1) throw new UsageError("expects exactly one FILE");
    const file = await openTensorFile(args.positionals[0]);
    try {
      const metadata = metadataOf(file);
      if (args.values.json) {
        const tensors = [];
        for (const t of file.tensors) {
          tensors.push({
            name: t.name,
            dtype: t.dtype,
            shape: t.shape,
            ...(file.format === "gguf" ? { ne: file.ne(t.name) } : {}),
            bytes: t.byteLength,
            sum: await tensorSum(file, t.name),
          });
        }
        const extra =
          file.format === "gguf" ? { version: file.version, alignment: file.alignment } : {};
        console.log(
          JSON.stringify(
            { path: file.path, format: file.format, ...extra, metadata, tensors },
            null,
            2,
          ),
        );
        return 0;
      }
      const totalBytes = file.tensors.reduce((s, t) => s + t.byteLength, 0);
      const version = file.format === "gguf" ? ` v${file.version}` : "";
      console.log(
        `${file.path}: ${file.format}${version}, ${file.tensors.length} tensors, ${totalBytes} bytes of tensor data`,
      );
      console.log(`\nMetadata (${Object.keys(metadata).length} keys):`);
      const meta =
        file.format === "gguf"
          ? [...file.metadata].map(([k, v]) => [k, v.type, preview(plainValue(v))])
          : Object.entries(metadata).map(([k, v]) => [k, "string", preview(v)]);
      console.log(table(["key", "type", "value"], meta));
      console.log(`\nTensors:`);
      console.log(
        table(
          ["#", "name", "dtype", "shape", "bytes"],
          file.tensors.map((t, i) => [i, t.name, t.dtype, shapeText(file, t.name), t.byteLength]),
        ),
      );
      return 0;
    } finally {
      await file.close();
    }
  },
};
