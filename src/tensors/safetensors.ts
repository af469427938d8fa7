/**
 * Safetensors read/write: single files and Hugging Face sharded checkpoints.
 *
 * Layout of a file: an 8-byte little-endian header length N, N bytes of JSON
 * `{ name: { dtype, shape, data_offsets: [begin, end] }, __metadata__?: {...} }`, then the
 * data section; offsets count from its start. Reading is lazy: opening parses headers only
 * and each tensor is fetched with a positioned read when asked for.
 */
import { type FileHandle, mkdir, open, readdir, rename, stat, unlink } from "node:fs/promises";
import { basename, dirname, isAbsolute, join, normalize } from "node:path";
import {
  assertLittleEndianHost,
  byteLengthOf,
  type DType,
  decodeToF32,
  encodeFromF32,
} from "./dtype.ts";
import type { TensorInfo, TensorReader, TensorToWrite } from "./types.ts";

/** Error about one tensor file; the message starts with the file's path. */
export class SafetensorsError extends Error {
  constructor(
    readonly file: string,
    problem: string,
  ) {
    super(`${file}: ${problem}`);
    this.name = "SafetensorsError";
  }
}

export type SafetensorsReader = TensorReader & {
  readonly format: "safetensors";
  readonly metadata: Record<string, string>;
};

export const INDEX_FILE = "model.safetensors.index.json";
const SINGLE_FILE = "model.safetensors";
/** Real headers are a few MB at most; a larger claim is corruption or an attack. */
const MAX_HEADER_BYTES = 100 * 1024 * 1024;
const MAX_INDEX_BYTES = 100 * 1024 * 1024;
/** One fs read or write moves less than 2 GiB; larger tensors go in pieces. */
const IO_CHUNK = 1 << 30;
const READABLE_DTYPES: readonly DType[] = [
  "F64",
  "F32",
  "F16",
  "BF16",
  "I64",
  "I32",
  "I16",
  "I8",
  "U8",
  "BOOL",
];
const WRITABLE_DTYPES: readonly string[] = ["F32", "F16", "BF16"];

// ---------------------------------------------------------------------------------------
// Header parsing (pure)

/** A tensor of a parsed header; `begin` and `end` are offsets into the data section. */
export interface HeaderEntry extends TensorInfo {
  begin: number;
  end: number;
}

export interface ParsedHeader {
  entries: HeaderEntry[];
  metadata: Record<string, string>;
}

/**
 * Parses and checks a header's JSON text against a data section of `dataLength` bytes.
 * Entries come back in data order.
 */
export function parseHeader(file: string, text: string, dataLength: number): ParsedHeader {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new SafetensorsError(
      file,
      `header is not valid JSON (${(err as Error).message}); the file is corrupt or not safetensors`,
    );
  }
  if (!isPlainObject(json)) {
    throw new SafetensorsError(file, "header is not a JSON object; the file is not safetensors");
  }
  let metadata: Record<string, string> = {};
  const entries: HeaderEntry[] = [];
  for (const [name, value] of Object.entries(json)) {
    if (name === "__metadata__") metadata = parseMetadata(file, value);
    else entries.push(parseEntry(file, name, value, dataLength));
  }
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  checkNoOverlap(file, entries);
  return { entries, metadata };
}

function parseMetadata(file: string, value: unknown): Record<string, string> {
  if (!isPlainObject(value)) {
    throw new SafetensorsError(file, "__metadata__ is not an object of strings");
  }
  const out: Record<string, string> = {};
  for (const [key, v] of Object.entries(value)) {
    if (typeof v !== "string") {
      throw new SafetensorsError(
        file,
        `__metadata__ must map strings to strings, but ${JSON.stringify(key)} holds ${typeName(v)}`,
      );
    }
    out[key] = v;
  }
  return out;
}

function parseEntry(file: string, name: string, value: unknown, dataLength: number): HeaderEntry {
  const where = `tensor ${JSON.stringify(name)}`;
  if (!isPlainObject(value)) {
    throw new SafetensorsError(file, `${where} is not an object with dtype, shape, data_offsets`);
  }
  const { dtype, shape, data_offsets: offsets } = value;
  if (typeof dtype !== "string" || !READABLE_DTYPES.includes(dtype as DType)) {
    throw new SafetensorsError(
      file,
      `${where} has unsupported dtype ${JSON.stringify(dtype)}; cycleqd reads ${READABLE_DTYPES.join(", ")} (convert the model to one of these)`,
    );
  }
  const dims = checkShape(file, where, shape);
  const count = elementCount(file, where, dims);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isIndex)) {
    throw new SafetensorsError(
      file,
      `${where} has data_offsets ${short(offsets)}; expected [begin, end] with 0 <= begin <= end`,
    );
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end) {
    throw new SafetensorsError(
      file,
      `${where} has data_offsets [${begin}, ${end}] with begin > end`,
    );
  }
  if (end > dataLength) {
    throw new SafetensorsError(
      file,
      `${where} has data_offsets [${begin}, ${end}] past the end of the data section (${dataLength} bytes): the file is truncated or its header is corrupt; re-download or re-export it`,
    );
  }
  const byteLength = byteLengthOf(dtype as DType, count);
  if (end - begin !== byteLength) {
    throw new SafetensorsError(
      file,
      `${where} spans ${end - begin} bytes but shape [${dims.join(", ")}] of ${dtype} needs ${byteLength}`,
    );
  }
  return { name, dtype: dtype as DType, shape: dims, byteLength, begin, end };
}

function checkShape(file: string, where: string, shape: unknown): number[] {
  if (!Array.isArray(shape) || !shape.every(isIndex)) {
    throw new SafetensorsError(
      file,
      `${where} has shape ${short(shape)}; expected an array of non-negative integers`,
    );
  }
  return shape as number[];
}

function elementCount(file: string, where: string, shape: number[]): number {
  if (shape.includes(0)) return 0;
  let count = 1;
  for (const d of shape) count *= d;
  if (!Number.isSafeInteger(count)) {
    throw new SafetensorsError(file, `${where} has shape [${shape.join(", ")}]: too many elements`);
  }
  return count;
}

function checkNoOverlap(file: string, sorted: HeaderEntry[]): void {
  let previous: HeaderEntry | null = null;
  for (const e of sorted) {
    if (e.begin === e.end) continue;
    if (previous && e.begin < previous.end) {
      throw new SafetensorsError(
        file,
        `tensors ${JSON.stringify(previous.name)} [${previous.begin}, ${previous.end}] and ${JSON.stringify(e.name)} [${e.begin}, ${e.end}] overlap; the header is corrupt`,
      );
    }
    previous = e;
  }
}

// ---------------------------------------------------------------------------------------
// Reading

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

// ---------------------------------------------------------------------------------------
// Writing

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
 * refuses safetensors metadata without a format.
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

// ---------------------------------------------------------------------------------------
// Small helpers

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isIndex(v: unknown): v is number {
  return Number.isSafeInteger(v) && (v as number) >= 0;
}

function typeName(v: unknown): string {
  return v === null ? "null" : Array.isArray(v) ? "an array" : `a ${typeof v}`;
}

/** A value for an error message, cut short: hostile headers may hold huge values. */
function short(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

async function statOrNull(path: string) {
  try {
    return await stat(path);
  } catch {
    return null;
  }
}
