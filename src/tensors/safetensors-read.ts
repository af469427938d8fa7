/**
 * Safetensors reading: single files, Hugging Face sharded checkpoints (index + shards) and
 * directories holding either. Reading is lazy: opening parses headers only and each tensor
 * is fetched with a positioned read when asked for.
 */
import { type FileHandle, open, readdir, stat } from "node:fs/promises";
import { basename, dirname, isAbsolute, join, normalize } from "node:path";
import { assertLittleEndianHost, decodeToF32 } from "./dtype.ts";
import {
  type HeaderEntry,
  INDEX_FILE,
  IO_CHUNK,
  isPlainObject,
  type ParsedHeader,
  parseHeader,
  SafetensorsError,
  SINGLE_FILE,
  short,
} from "./safetensors-format.ts";
import type { TensorInfo, TensorReader } from "./types.ts";

export type SafetensorsReader = TensorReader & {
  readonly format: "safetensors";
  readonly metadata: Record<string, string>;
};

/** Real headers are a few MB at most; a larger claim is corruption or an attack. */
const MAX_HEADER_BYTES = 100 * 1024 * 1024;
const MAX_INDEX_BYTES = 100 * 1024 * 1024;

/** One opened .safetensors file: its handle and where its data section starts. */
interface ShardFile {
  path: string;
  handle: FileHandle;
  dataStart: number;
  header: ParsedHeader;
}

interface Located {
  info: TensorInfo;
  shard: ShardFile;
  begin: number;
}

/**
 * Opens a .safetensors file, a sharded checkpoint's `model.safetensors.index.json`, or a
 * directory holding either. Only headers are read here; `read` fetches one tensor at a time.
 * Throws a SafetensorsError naming the file when it is missing or unreadable, its header is
 * invalid or corrupt, or an index and its shards disagree.
 */
export async function openSafetensors(path: string): Promise<SafetensorsReader> {
  assertLittleEndianHost();
  const target = await resolveInput(path);
  if (target.kind === "index") return openIndex(target.path);
  const shard = await openShardFile(target.path);
  return new Reader(target.path, [shard], placeAll(shard));
}

async function resolveInput(path: string): Promise<{ kind: "file" | "index"; path: string }> {
  const st = await statOrNull(path);
  if (!st) throw new SafetensorsError(path, "no such file or directory");
  if (!st.isDirectory()) return { kind: path.endsWith(".json") ? "index" : "file", path };
  if (await statOrNull(join(path, INDEX_FILE)))
    return { kind: "index", path: join(path, INDEX_FILE) };
  if (await statOrNull(join(path, SINGLE_FILE)))
    return { kind: "file", path: join(path, SINGLE_FILE) };
  const found = (await readdir(path)).filter((f) => f.endsWith(".safetensors"));
  if (found.length === 1) return { kind: "file", path: join(path, found[0]) };
  throw new SafetensorsError(
    path,
    found.length === 0
      ? `holds neither ${SINGLE_FILE} nor ${INDEX_FILE}; point to a .safetensors file or a model directory`
      : `holds ${found.length} .safetensors files but no ${INDEX_FILE}; point to one file or add the index`,
  );
}

async function openShardFile(path: string): Promise<ShardFile> {
  let handle: FileHandle;
  try {
    handle = await open(path, "r");
  } catch (err) {
    throw new SafetensorsError(path, `cannot open (${(err as NodeJS.ErrnoException).code ?? err})`);
  }
  try {
    const size = (await handle.stat()).size;
    const { dataStart, text } = await readHeaderText(path, handle, size);
    const header = parseHeader(path, text, size - dataStart);
    return { path, handle, dataStart, header };
  } catch (err) {
    await handle.close();
    throw err;
  }
}

async function readHeaderText(
  path: string,
  handle: FileHandle,
  size: number,
): Promise<{ dataStart: number; text: string }> {
  if (size < 8) {
    throw new SafetensorsError(path, `file is ${size} bytes, too short to be safetensors`);
  }
  const prefix = new Uint8Array(8);
  await readExact(path, handle, prefix, 0, "the header length");
  const claimed = new DataView(prefix.buffer).getBigUint64(0, true);
  if (claimed > BigInt(MAX_HEADER_BYTES)) {
    throw new SafetensorsError(
      path,
      `header length ${claimed} exceeds the ${MAX_HEADER_BYTES / 1024 / 1024} MB limit; the file is corrupt or not safetensors`,
    );
  }
  const length = Number(claimed);
  if (length > size - 8) {
    throw new SafetensorsError(
      path,
      `header length ${length} is larger than the ${size}-byte file; the file is truncated or not safetensors`,
    );
  }
  const bytes = new Uint8Array(length);
  await readExact(path, handle, bytes, 8, "the header");
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new SafetensorsError(path, "header is not valid UTF-8; the file is corrupt");
  }
  return { dataStart: 8 + length, text };
}

/** Every tensor of one file, under its own name. */
function placeAll(shard: ShardFile): Map<string, Located> {
  const placed = new Map<string, Located>();
  for (const e of shard.header.entries) placed.set(e.name, locate(shard, e));
  return placed;
}

function locate(shard: ShardFile, e: HeaderEntry): Located {
  const info: TensorInfo = {
    name: e.name,
    dtype: e.dtype,
    shape: e.shape,
    byteLength: e.byteLength,
  };
  return { info, shard, begin: shard.dataStart + e.begin };
}

async function openIndex(indexPath: string): Promise<SafetensorsReader> {
  const weightMap = await readWeightMap(indexPath);
  const dir = dirname(indexPath);
  const shards: ShardFile[] = [];
  try {
    for (const shardName of new Set(weightMap.values())) {
      shards.push(await openShard(indexPath, join(dir, shardName), shardName));
    }
    return new Reader(indexPath, shards, placeIndexed(indexPath, weightMap, shards));
  } catch (err) {
    await Promise.all(shards.map((s) => s.handle.close()));
    throw err;
  }
}

async function openShard(indexPath: string, path: string, shardName: string): Promise<ShardFile> {
  if (!(await statOrNull(path))) {
    throw new SafetensorsError(
      indexPath,
      `shard ${JSON.stringify(shardName)} named in weight_map is missing (looked for ${path}); download every shard of the checkpoint`,
    );
  }
  return openShardFile(path);
}

/** Reads an index's weight_map: tensor name → shard file name. */
async function readWeightMap(indexPath: string): Promise<Map<string, string>> {
  const st = await statOrNull(indexPath);
  if (!st) throw new SafetensorsError(indexPath, "no such file");
  if (st.size > MAX_INDEX_BYTES) {
    throw new SafetensorsError(indexPath, `index is ${st.size} bytes, larger than any real index`);
  }
  const handle = await open(indexPath, "r");
  let text: string;
  try {
    text = await handle.readFile("utf8");
  } finally {
    await handle.close();
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new SafetensorsError(indexPath, `index is not valid JSON (${(err as Error).message})`);
  }
  if (!isPlainObject(json) || !isPlainObject(json.weight_map)) {
    throw new SafetensorsError(
      indexPath,
      "index has no weight_map object; it is not a safetensors index",
    );
  }
  const map = new Map<string, string>();
  for (const [name, shard] of Object.entries(json.weight_map)) {
    if (typeof shard !== "string" || !isPlainShardName(shard)) {
      throw new SafetensorsError(
        indexPath,
        `weight_map entry ${JSON.stringify(name)} points to ${short(shard)}; expected a shard file name in the index's directory`,
      );
    }
    map.set(name, shard);
  }
  return map;
}

/** Shard names are file names beside the index, never paths that leave its directory. */
function isPlainShardName(name: string): boolean {
  if (name === "" || isAbsolute(name) || name.includes("\0")) return false;
  return !normalize(name).split(/[\\/]/).includes("..");
}

/** Places each weight_map tensor in its shard; checks the shards agree with the index. */
function placeIndexed(
  indexPath: string,
  weightMap: Map<string, string>,
  shards: ShardFile[],
): Map<string, Located> {
  const owner = new Map<string, ShardFile>();
  for (const shard of shards) {
    for (const e of shard.header.entries) {
      const other = owner.get(e.name);
      if (other) {
        throw new SafetensorsError(
          indexPath,
          `tensor ${JSON.stringify(e.name)} appears in two shards, ${basename(other.path)} and ${basename(shard.path)}; the checkpoint is inconsistent`,
        );
      }
      owner.set(e.name, shard);
    }
  }
  const byPath = new Map(shards.map((s) => [s.path, s]));
  const dir = dirname(indexPath);
  const placed = new Map<string, Located>();
  for (const shard of shards) {
    for (const e of shard.header.entries) {
      const listed = weightMap.get(e.name);
      if (listed !== undefined && byPath.get(join(dir, listed)) === shard) {
        placed.set(e.name, locate(shard, e));
      }
    }
  }
  for (const [name, shardName] of weightMap) {
    if (!placed.has(name)) {
      throw new SafetensorsError(
        indexPath,
        `weight_map puts tensor ${JSON.stringify(name)} in ${shardName}, but that shard has no such tensor; the index does not match its shards`,
      );
    }
  }
  return placed;
}

class Reader implements SafetensorsReader {
  readonly format = "safetensors";
  readonly tensors: readonly TensorInfo[];
  readonly metadata: Record<string, string>;
  private closed = false;

  constructor(
    readonly path: string,
    private readonly shards: ShardFile[],
    private readonly placed: Map<string, Located>,
  ) {
    this.tensors = [...placed.values()].map((p) => p.info);
    this.metadata = Object.assign({}, ...shards.map((s) => s.header.metadata));
  }

  has(name: string): boolean {
    return this.placed.has(name);
  }

  info(name: string): TensorInfo {
    return this.find(name).info;
  }

  async read(name: string): Promise<Float32Array> {
    const { info, shard, begin } = this.find(name);
    if (this.closed) throw new SafetensorsError(this.path, "read after close");
    const count = info.shape.reduce((a, b) => a * b, 1);
    const what = `tensor ${JSON.stringify(name)}`;
    if (info.dtype === "F32") {
      // Read straight into the result: no second copy of a large tensor.
      const out = new Float32Array(count);
      await readExact(shard.path, shard.handle, new Uint8Array(out.buffer), begin, what);
      return out;
    }
    const bytes = new Uint8Array(info.byteLength);
    await readExact(shard.path, shard.handle, bytes, begin, what);
    return decodeToF32(bytes, info.dtype, count);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.shards.map((s) => s.handle.close()));
  }

  private find(name: string): Located {
    const found = this.placed.get(name);
    if (!found) {
      const some = [...this.placed.keys()].slice(0, 3).map((n) => JSON.stringify(n));
      throw new SafetensorsError(
        this.path,
        `no tensor named ${JSON.stringify(name)} (it has ${this.placed.size} tensors${some.length ? `, e.g. ${some.join(", ")}` : ""})`,
      );
    }
    return found;
  }
}

async function readExact(
  path: string,
  handle: FileHandle,
  target: Uint8Array,
  position: number,
  what: string,
): Promise<void> {
  let done = 0;
  while (done < target.byteLength) {
    const length = Math.min(IO_CHUNK, target.byteLength - done);
    const { bytesRead } = await handle.read(target, done, length, position + done);
    if (bytesRead === 0) {
      throw new SafetensorsError(
        path,
        `file ends early while reading ${what} (${target.byteLength} bytes at offset ${position}); it was truncated or changed after opening`,
      );
    }
    done += bytesRead;
  }
}

async function statOrNull(path: string) {
  try {
    return await stat(path);
  } catch {
    return null;
  }
}
