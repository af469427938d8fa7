/**
 * Checks on a model file before and just after llama.cpp loads it, for the failures llama.cpp
 * would report badly (a missing or non-GGUF file) or not at all (it aborts the process).
 */
import { open, stat } from "node:fs/promises";
import type { LlamaModel } from "node-llama-cpp";

const GGUF_MAGIC = "GGUF";

export async function checkGgufFile(path: string): Promise<void> {
  let size: number;
  try {
    const s = await stat(path);
    if (!s.isFile()) throw new Error(`model path ${path} is not a file`);
    size = s.size;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") {
      throw new Error(`model file not found: ${path}`);
    }
    throw e;
  }
  const head = Buffer.alloc(4);
  const file = await open(path, "r");
  try {
    await file.read(head, 0, 4, 0);
  } finally {
    await file.close();
  }
  if (size < 4 || head.toString("latin1") !== GGUF_MAGIC) {
    throw new Error(
      `${path} is not a GGUF file (it does not start with "GGUF"); convert the model to GGUF first`,
    );
  }
}

/**
 * A SentencePiece vocabulary without the 256 byte tokens makes llama.cpp abort the whole
 * process (uncatchably) on the first character it cannot spell, so refuse such models early.
 */
export function checkVocabulary(model: LlamaModel, path: string): void {
  const tokenizer = (
    model.fileInfo.metadata as unknown as {
      tokenizer?: {
        ggml?: { model?: string; tokens?: readonly string[]; token_type?: readonly number[] };
      };
    }
  ).tokenizer?.ggml;
  if (tokenizer?.model !== "llama" || tokenizer.tokens === undefined) return;
  const bytes = new Set<string>();
  const types = tokenizer.token_type;
  tokenizer.tokens.forEach((t, i) => {
    if (/^<0x[0-9A-F]{2}>$/.test(t) && (types === undefined || types[i] === 6)) bytes.add(t);
  });
  if (bytes.size < 256) {
    throw new Error(
      `${path} has a SentencePiece ("llama") vocabulary with ${bytes.size} of the 256 byte ` +
        "tokens <0x00>…<0xFF> (token type 6); llama.cpp aborts on characters it cannot spell, " +
        "so add the byte tokens to the vocabulary",
    );
  }
}
