import { open, stat } from "node:fs/promises";
import { type GgufReader, openGguf } from "./gguf.ts";
import { openSafetensors, type SafetensorsReader } from "./safetensors.ts";

export type AnyTensorReader = GgufReader | SafetensorsReader;

/**
 * Opens a GGUF file, a safetensors file, or a Hugging Face checkpoint directory (sharded or
 * not), telling them apart by content rather than by file name. Throws when `path` does not
 * exist, and as `openGguf` or `openSafetensors` when the file is not valid.
 */
export async function openTensorFile(path: string): Promise<AnyTensorReader> {
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(path);
  } catch {
    throw new Error(`${path}: no such file or directory`);
  }
  if (info.isDirectory() || path.endsWith(".json")) return openSafetensors(path);
  const fh = await open(path, "r");
  try {
    const magic = Buffer.alloc(4);
    await fh.read(magic, 0, 4, 0);
    if (magic.toString("latin1") === "GGUF") return openGguf(path);
  } finally {
    await fh.close();
  }
  return openSafetensors(path);
}
