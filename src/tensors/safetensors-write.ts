/**
 * Safetensors writing: one file (atomically, via `NAME.tmp`), or a Hugging Face sharded
 * checkpoint (shard planning, shards, then the index).
 */
import { type FileHandle, mkdir, open, rename, unlink } from "node:fs/promises";
import { join } from "node:path";
import { byteLengthOf, encodeFromF32 } from "./dtype.ts";
import {
  checkShape,
  elementCount,
  INDEX_FILE,
  IO_CHUNK,
  isPlainObject,
  SafetensorsError,
  short,
  typeName,
} from "./safetensors-format.ts";
import type { TensorToWrite } from "./types.ts";

const WRITABLE_DTYPES: readonly string[] = ["F32", "F16", "BF16"];

export interface ShardedWriteOptions {
  /** Largest shard in bytes of tensor data (default 5 GB, as transformers uses); a larger tensor gets a shard of its own. */
  maxShardBytes?: number;
  /** Stored as `__metadata__` in every shard. */
  metadata?: Record<string, string>;
}

export interface ShardedWriteResult {
  index: string;
  shards: string[];
}

/**
 * Writes tensors (F32/F16/BF16) to one .safetensors file. Data thunks are called one at a
 * time and each tensor is written before the next is loaded. The file appears under `path`
 * only when complete. `__metadata__` gets `format: "pt"` unless given, since transformers
 * refuses safetensors metadata without a format. Throws a SafetensorsError, before writing,
 * for an invalid, duplicate or unwritable tensor (name, dtype, shape) or metadata that is
 * not an object of strings; while writing, when a tensor's data does not match its shape or
 * a write fails (the partial file is removed).
 */
export async function writeSafetensors(
  path: string,
  tensors: readonly TensorToWrite[],
  metadata?: Record<string, string>,
): Promise<void> {
  checkTensorsToWrite(path, tensors);
  const header = buildHeader(path, tensors, metadata);
  await writeAtomically(path, async (handle) => {
    let position = await writeAll(handle, header, 0);
    for (const t of tensors)
      position = await writeAll(handle, await tensorBytes(path, t), position);
  });
}

/**
 * Writes a Hugging Face sharded checkpoint into `dir`: `model-0000i-of-0000N.safetensors`
 * plus `model.safetensors.index.json` ({ metadata: { total_size }, weight_map }). Any old
 * index is removed first and the new one is written last, so a crash never leaves an index
 * that points at a mix of old and new shards.
 */
export async function writeShardedSafetensors(
  dir: string,
  tensors: readonly TensorToWrite[],
  options: ShardedWriteOptions = {},
): Promise<ShardedWriteResult> {
  const { maxShardBytes = 5_000_000_000, metadata } = options;
  if (!Number.isSafeInteger(maxShardBytes) || maxShardBytes <= 0) {
    throw new SafetensorsError(
      dir,
      `maxShardBytes must be a positive integer, got ${maxShardBytes}`,
    );
  }
  checkTensorsToWrite(dir, tensors);
  checkMetadata(dir, metadata);
  const groups = planShards(tensors, maxShardBytes);
  const names = groups.map((_, i) => shardFileName(i + 1, groups.length));
  await mkdir(dir, { recursive: true });
  const indexPath = join(dir, INDEX_FILE);
  await unlink(indexPath).catch(() => {});
  const weightMap: [string, string][] = [];
  for (let i = 0; i < groups.length; i++) {
    await writeSafetensors(join(dir, names[i]), groups[i], metadata);
    for (const t of groups[i]) weightMap.push([t.name, names[i]]);
  }
  weightMap.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const totalSize = tensors.reduce((sum, t) => sum + tensorByteLength(t), 0);
  const index = { metadata: { total_size: totalSize }, weight_map: Object.fromEntries(weightMap) };
  const text = `${JSON.stringify(index, null, 2)}\n`;
  await writeAtomically(indexPath, (handle) => handle.writeFile(text, "utf8"));
  return { index: indexPath, shards: names.map((n) => join(dir, n)) };
}

function shardFileName(i: number, n: number): string {
  const pad = (x: number) => String(x).padStart(5, "0");
  return `model-${pad(i)}-of-${pad(n)}.safetensors`;
}

/** Greedy split in the given order; a shard closes when the next tensor would overflow it. */
function planShards(tensors: readonly TensorToWrite[], maxBytes: number): TensorToWrite[][] {
  const groups: TensorToWrite[][] = [];
  let current: TensorToWrite[] = [];
  let size = 0;
  for (const t of tensors) {
    const bytes = tensorByteLength(t);
    if (current.length > 0 && size + bytes > maxBytes) {
      groups.push(current);
      current = [];
      size = 0;
    }
    current.push(t);
    size += bytes;
  }
  if (current.length > 0 || groups.length === 0) groups.push(current);
  return groups;
}

function checkTensorsToWrite(file: string, tensors: readonly TensorToWrite[]): void {
  if (!Array.isArray(tensors)) throw new SafetensorsError(file, "tensors must be an array");
  const seen = new Set<string>();
  for (const t of tensors) {
    if (typeof t?.name !== "string" || t.name === "" || t.name === "__metadata__") {
      throw new SafetensorsError(file, `invalid tensor name ${short(t?.name)}`);
    }
    const where = `tensor ${JSON.stringify(t.name)}`;
    if (seen.has(t.name)) throw new SafetensorsError(file, `${where} is listed twice`);
    seen.add(t.name);
    if (!WRITABLE_DTYPES.includes(t.dtype)) {
      throw new SafetensorsError(
        file,
        `${where} has dtype ${short(t.dtype)}; cycleqd writes ${WRITABLE_DTYPES.join(", ")}`,
      );
    }
    elementCount(file, where, checkShape(file, where, t.shape));
    if (!(t.data instanceof Float32Array) && typeof t.data !== "function") {
      throw new SafetensorsError(
        file,
        `${where}: data must be a Float32Array or a function returning one`,
      );
    }
  }
}

function checkMetadata(file: string, metadata: unknown): void {
  if (metadata === undefined) return;
  if (!isPlainObject(metadata))
    throw new SafetensorsError(file, "metadata must be an object of strings");
  for (const [key, v] of Object.entries(metadata)) {
    if (typeof v !== "string") {
      throw new SafetensorsError(
        file,
        `metadata must map strings to strings, but ${JSON.stringify(key)} holds ${typeName(v)}; convert it with String() or JSON.stringify()`,
      );
    }
  }
}

/** Header bytes: length prefix plus JSON padded with spaces so the data starts 8-aligned. */
function buildHeader(
  file: string,
  tensors: readonly TensorToWrite[],
  metadata: Record<string, string> | undefined,
): Uint8Array {
  checkMetadata(file, metadata);
  let offset = 0;
  const entries: [string, unknown][] = [["__metadata__", { format: "pt", ...metadata }]];
  for (const t of tensors) {
    const end = offset + tensorByteLength(t);
    entries.push([t.name, { dtype: t.dtype, shape: t.shape, data_offsets: [offset, end] }]);
    offset = end;
  }
  // fromEntries defines own properties, so a tensor named "__proto__" stays a tensor.
  const json = new TextEncoder().encode(JSON.stringify(Object.fromEntries(entries)));
  const padded = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + padded).fill(0x20, 8 + json.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  return out;
}

function tensorByteLength(t: TensorToWrite): number {
  return byteLengthOf(
    t.dtype,
    t.shape.reduce((a, b) => a * b, 1),
  );
}

async function tensorBytes(file: string, t: TensorToWrite): Promise<Uint8Array> {
  const data = typeof t.data === "function" ? await t.data() : t.data;
  const count = t.shape.reduce((a, b) => a * b, 1);
  if (!(data instanceof Float32Array) || data.length !== count) {
    const got = data instanceof Float32Array ? `${data.length} values` : typeName(data);
    throw new SafetensorsError(
      file,
      `tensor ${JSON.stringify(t.name)}: data has ${got} but shape [${t.shape.join(", ")}] needs a Float32Array of ${count}`,
    );
  }
  return encodeFromF32(data, t.dtype);
}

async function createFile(path: string): Promise<FileHandle> {
  try {
    return await open(path, "w");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new SafetensorsError(
      path,
      `cannot create (${code}); check that the directory exists and is writable`,
    );
  }
}

async function writeAll(handle: FileHandle, bytes: Uint8Array, position: number): Promise<number> {
  let done = 0;
  while (done < bytes.byteLength) {
    const length = Math.min(IO_CHUNK, bytes.byteLength - done);
    const { bytesWritten } = await handle.write(bytes, done, length, position + done);
    done += bytesWritten;
  }
  return position + done;
}

/** Writes `path.tmp` with `write`, syncs it and renames it to `path`; removes it on failure. */
async function writeAtomically(
  path: string,
  write: (handle: FileHandle) => Promise<void>,
): Promise<void> {
  const tmp = `${path}.tmp`;
  const handle = await createFile(tmp);
  try {
    await write(handle);
    await handle.sync();
    await handle.close();
    await rename(tmp, path);
  } catch (err) {
    await handle.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw err;
  }
}
