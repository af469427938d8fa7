/**
 * GGUF v3 writer for F32/F16/BF16 tensors. Tensor data is streamed one tensor at a time, and
 * the file appears under its name only when complete (written to `path.tmp`, then renamed).
 */
import { type FileHandle, open, rename, rm } from "node:fs/promises";
import { assertLittleEndianHost, encodeFromF32, type FloatDType } from "./dtype.ts";
import {
  checkValue,
  GGML_MAX_DIMS,
  GGML_MAX_NAME,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GGUF_VALUE_TYPES,
  type GgufArray,
  type GgufMetadata,
  type GgufValue,
  type GgufValueType,
  ggmlTypeByName,
  metadataEntries,
} from "./gguf-types.ts";
import type { TensorToWrite } from "./types.ts";

export interface WriteGgufOptions {
  /** Tensor data alignment in bytes (a power of two); default 32 or `general.alignment`. */
  alignment?: number;
}

const WRITABLE: readonly FloatDType[] = ["F32", "F16", "BF16"];
/** Elements converted per write when a tensor changes precision. */
const CONVERT_CHUNK = 1 << 20;

/**
 * Writes a GGUF v3 file. `general.alignment` is written only when it is not the default 32;
 * `tensors` keep their order, and thunks in `data` are called one at a time. `shape` is
 * PyTorch order (reversed into GGUF's ne). The file is written as `path`.tmp and renamed.
 * Throws, before writing, for bad metadata (empty or duplicate keys, invalid values), an
 * alignment that is not a power of two or conflicts with `general.alignment`, or a bad
 * tensor (empty, duplicate or over-63-byte name, dtype other than F32/F16/BF16, bad shape,
 * data length ≠ shape); while writing, when a thunk's data does not fit or a write fails.
 */
export async function writeGguf(
  path: string,
  metadata: GgufMetadata,
  tensors: readonly TensorToWrite[],
  opts: WriteGgufOptions = {},
): Promise<void> {
  assertLittleEndianHost();
  const alignment = resolveAlignment(path, metadata, opts);
  const entries = metadataForFile(path, metadata, alignment);
  const layout = layoutTensors(path, tensors, alignment);
  const header = encodeHeader(entries, layout, alignment);
  const tmp = `${path}.tmp`;
  const fh = await open(tmp, "w").catch((e: NodeJS.ErrnoException) => {
    throw new Error(`${path}: cannot create ${tmp} (${e.code ?? e.message})`);
  });
  try {
    await writeAll(fh, header);
    for (const t of layout) await writeTensor(path, fh, t, alignment);
    await fh.close();
    await rename(tmp, path);
  } catch (e) {
    await fh.close().catch(() => {});
    await rm(tmp, { force: true });
    throw e;
  }
}

function resolveAlignment(path: string, metadata: GgufMetadata, opts: WriteGgufOptions): number {
  const inMeta = metadataEntries(metadata).find(([k]) => k === "general.alignment")?.[1];
  let fromMeta: number | undefined;
  if (inMeta !== undefined) {
    const v = inMeta.value;
    fromMeta = typeof v === "bigint" ? Number(v) : typeof v === "number" ? v : Number.NaN;
  }
  if (opts.alignment !== undefined && fromMeta !== undefined && opts.alignment !== fromMeta) {
    throw new Error(
      `${path}: alignment ${opts.alignment} conflicts with general.alignment ${fromMeta} in the metadata`,
    );
  }
  const a = opts.alignment ?? fromMeta ?? GGUF_DEFAULT_ALIGNMENT;
  if (!Number.isInteger(a) || a <= 0 || a > 2 ** 30 || a & (a - 1)) {
    throw new Error(`${path}: alignment must be a power of two, got ${a}`);
  }
  return a;
}

/** Validated entries, with general.alignment present only when not the default. */
function metadataForFile(
  path: string,
  metadata: GgufMetadata,
  alignment: number,
): [string, GgufValue][] {
  const out: [string, GgufValue][] = [];
  const seen = new Set<string>();
  for (const [key, value] of metadataEntries(metadata)) {
    if (typeof key !== "string" || key.length === 0) {
      throw new Error(`${path}: metadata keys must be non-empty strings`);
    }
    if (seen.has(key)) throw new Error(`${path}: duplicate metadata key "${key}"`);
    seen.add(key);
    if (key === "general.alignment") continue;
    checkValue(value, `${path}: metadata "${key}"`);
    out.push([key, value]);
  }
  if (alignment !== GGUF_DEFAULT_ALIGNMENT) {
    out.push(["general.alignment", { type: "uint32", value: alignment }]);
  }
  return out;
}

interface PlannedTensor {
  src: TensorToWrite;
  ne: number[];
  count: number;
  byteLength: number;
  /** Offset within the data section. */
  offset: number;
}

function layoutTensors(
  path: string,
  tensors: readonly TensorToWrite[],
  alignment: number,
): PlannedTensor[] {
  const names = new Set<string>();
  let offset = 0;
  return tensors.map((t) => {
    checkTensor(path, t, names);
    const count = t.shape.reduce((a, b) => a * b, 1);
    const byteLength = count * (t.dtype === "F32" ? 4 : 2);
    const planned = { src: t, ne: [...t.shape].reverse(), count, byteLength, offset };
    offset = alignUp(offset + byteLength, alignment);
    return planned;
  });
}

function checkTensor(path: string, t: TensorToWrite, names: Set<string>): void {
  const what = `${path}: tensor "${t.name}"`;
  if (typeof t.name !== "string" || t.name.length === 0) {
    throw new Error(`${path}: tensor names must be non-empty strings`);
  }
  if (Buffer.byteLength(t.name) >= GGML_MAX_NAME) {
    throw new Error(`${what}: name is ${Buffer.byteLength(t.name)} bytes; llama.cpp allows 63`);
  }
  if (names.has(t.name)) throw new Error(`${path}: duplicate tensor name "${t.name}"`);
  names.add(t.name);
  if (!WRITABLE.includes(t.dtype)) {
    throw new Error(`${what}: cannot write dtype ${String(t.dtype)} (use F32, F16 or BF16)`);
  }
  if (!Array.isArray(t.shape) || t.shape.length < 1 || t.shape.length > GGML_MAX_DIMS) {
    throw new Error(`${what}: shape must have 1 to ${GGML_MAX_DIMS} dimensions`);
  }
  if (!t.shape.every((d) => Number.isSafeInteger(d) && d > 0)) {
    throw new Error(`${what}: shape [${t.shape.join(", ")}] must hold positive integers`);
  }
  const count = t.shape.reduce((a, b) => a * b, 1);
  if (!Number.isSafeInteger(count * 4)) throw new Error(`${what}: shape is too large`);
  if (t.data instanceof Float32Array && t.data.length !== count) {
    throw new Error(`${what}: shape needs ${count} values but data has ${t.data.length}`);
  }
}

function alignUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

/** A growable little-endian byte buffer for the header. */
class ByteWriter {
  private buf = Buffer.alloc(1 << 16);
  length = 0;

  /** Reserves `n` bytes and returns their offset; may replace `buf`, so call it first. */
  private room(n: number): number {
    if (this.length + n > this.buf.length) {
      const next = Buffer.alloc(Math.max(this.buf.length * 2, this.length + n));
      this.buf.copy(next, 0, 0, this.length);
      this.buf = next;
    }
    const at = this.length;
    this.length += n;
    return at;
  }

  u8(v: number) {
    const at = this.room(1);
    this.buf.writeUInt8(v, at);
  }
  i8(v: number) {
    const at = this.room(1);
    this.buf.writeInt8(v, at);
  }
  u16(v: number) {
    const at = this.room(2);
    this.buf.writeUInt16LE(v, at);
  }
  i16(v: number) {
    const at = this.room(2);
    this.buf.writeInt16LE(v, at);
  }
  u32(v: number) {
    const at = this.room(4);
    this.buf.writeUInt32LE(v, at);
  }
  i32(v: number) {
    const at = this.room(4);
    this.buf.writeInt32LE(v, at);
  }
  u64(v: number | bigint) {
    const at = this.room(8);
    this.buf.writeBigUInt64LE(BigInt(v), at);
  }
  i64(v: bigint) {
    const at = this.room(8);
    this.buf.writeBigInt64LE(v, at);
  }
  f32(v: number) {
    const at = this.room(4);
    this.buf.writeFloatLE(v, at);
  }
  f64(v: number) {
    const at = this.room(8);
    this.buf.writeDoubleLE(v, at);
  }
  str(s: string) {
    const n = Buffer.byteLength(s);
    this.u64(n);
    const at = this.room(n);
    this.buf.write(s, at, n, "utf8");
  }
  pad(alignment: number) {
    this.room(alignUp(this.length, alignment) - this.length);
  }
  bytes(): Buffer {
    return this.buf.subarray(0, this.length);
  }
}

function typeId(t: GgufValueType): number {
  return GGUF_VALUE_TYPES.indexOf(t);
}

function encodeHeader(
  entries: [string, GgufValue][],
  tensors: PlannedTensor[],
  alignment: number,
): Buffer {
  const w = new ByteWriter();
  w.u32(GGUF_MAGIC);
  w.u32(3);
  w.u64(tensors.length);
  w.u64(entries.length);
  for (const [key, value] of entries) {
    w.str(key);
    w.u32(typeId(value.type));
    writeValue(w, value);
  }
  for (const t of tensors) {
    w.str(t.src.name);
    w.u32(t.ne.length);
    for (const d of t.ne) w.u64(d);
    w.u32(ggmlTypeByName(t.src.dtype)?.id as number);
    w.u64(t.offset);
  }
  w.pad(alignment);
  return w.bytes();
}

function writeValue(w: ByteWriter, v: GgufValue): void {
  if (v.type === "array") writeArray(w, v);
  else writeScalar(w, v.type, v.value);
}

function writeArray(w: ByteWriter, a: GgufArray): void {
  w.u32(typeId(a.itemType));
  w.u64(a.value.length);
  for (const item of a.value) {
    if (a.itemType === "array") writeArray(w, item as GgufArray);
    else writeScalar(w, a.itemType, item);
  }
}

type ScalarWriter = (w: ByteWriter, v: unknown) => void;

const SCALAR_WRITERS: Record<Exclude<GgufValueType, "array">, ScalarWriter> = {
  uint8: (w, v) => w.u8(v as number),
  int8: (w, v) => w.i8(v as number),
  uint16: (w, v) => w.u16(v as number),
  int16: (w, v) => w.i16(v as number),
  uint32: (w, v) => w.u32(v as number),
  int32: (w, v) => w.i32(v as number),
  float32: (w, v) => w.f32(v as number),
  float64: (w, v) => w.f64(v as number),
  uint64: (w, v) => w.u64(v as bigint),
  int64: (w, v) => w.i64(v as bigint),
  bool: (w, v) => w.u8(v ? 1 : 0),
  string: (w, v) => w.str(v as string),
};

function writeScalar(w: ByteWriter, type: GgufValueType, v: unknown): void {
  if (type === "array") throw new Error("an array cannot be written as a scalar");
  SCALAR_WRITERS[type](w, v);
}

async function writeAll(fh: FileHandle, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await fh.write(bytes, done, bytes.length - done);
    done += bytesWritten;
  }
}

async function writeTensor(
  path: string,
  fh: FileHandle,
  t: PlannedTensor,
  alignment: number,
): Promise<void> {
  const data = typeof t.src.data === "function" ? await t.src.data() : t.src.data;
  if (!(data instanceof Float32Array)) {
    throw new Error(`${path}: tensor "${t.src.name}": data must be a Float32Array`);
  }
  if (data.length !== t.count) {
    throw new Error(
      `${path}: tensor "${t.src.name}": shape needs ${t.count} values but data has ${data.length}`,
    );
  }
  if (t.src.dtype === "F32") {
    await writeAll(fh, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  } else {
    await writeHalf(fh, data, t.src.dtype);
  }
  const padding = alignUp(t.byteLength, alignment) - t.byteLength;
  if (padding > 0) await writeAll(fh, new Uint8Array(padding));
}

/** Converts to F16 or BF16 a chunk at a time so that no second full copy is held. */
async function writeHalf(fh: FileHandle, data: Float32Array, dtype: "F16" | "BF16") {
  for (let start = 0; start < data.length; start += CONVERT_CHUNK) {
    await writeAll(fh, encodeFromF32(data.subarray(start, start + CONVERT_CHUNK), dtype));
  }
}
