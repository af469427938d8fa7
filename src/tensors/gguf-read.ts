/**
 * Lazy GGUF reader: parses the header, metadata and tensor infos with bounded reads, checks
 * every length against the bytes the file really has, and reads tensor data on demand.
 */
import { type FileHandle, open } from "node:fs/promises";
import { assertLittleEndianHost, decodeToF32 } from "./dtype.ts";
import {
  GGML_MAX_DIMS,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GGUF_READABLE_TYPES,
  GGUF_SCALAR_BYTES,
  GGUF_VALUE_TYPES,
  type GgmlTypeInfo,
  type GgufArray,
  type GgufArrayItem,
  type GgufValue,
  type GgufValueType,
  ggmlTypeById,
  MAX_ARRAY_DEPTH,
} from "./gguf-types.ts";
import type { TensorInfo, TensorReader } from "./types.ts";

/** A tensor as listed in a GGUF file. */
export interface GgufTensorInfo extends TensorInfo {
  /** ggml's own dimension order, fastest first: the reverse of `shape`. */
  ne: number[];
  /** ggml type id as stored in the file. */
  ggmlTypeId: number;
  /** Absolute byte offset of the tensor's data in the file. */
  offset: number;
}

export interface GgufReader extends TensorReader {
  readonly format: "gguf";
  readonly version: number;
  readonly alignment: number;
  /** Metadata in file order. */
  readonly metadata: Map<string, GgufValue>;
  readonly tensors: readonly GgufTensorInfo[];
  /** File offset where the tensor data section starts. */
  readonly dataOffset: number;
  info(name: string): GgufTensorInfo;
  /** The tensor's dims in ggml order (fastest first). */
  ne(name: string): number[];
  /** The tensor's bytes exactly as stored (any ggml type). */
  readBytes(name: string): Promise<Uint8Array>;
}

/** Bytes fetched per refill of the header cursor. */
const CHUNK = 1 << 16;
/** No real key, token or value comes near these; beyond them a length is corrupt. */
const MAX_STRING_BYTES = 1 << 26;
/** gguf.md caps keys at 65535 bytes; tensor names get the same bound. */
const MAX_NAME_BYTES = 65535;
const MAX_ARRAY_ITEMS = 1 << 24;
/** Smallest encodings: a kv is key length + type + 1 byte; a tensor info is 8+4+4+8 bytes. */
const MIN_KV_BYTES = 13;
const MIN_TENSOR_INFO_BYTES = 24;

/**
 * Opens a GGUF file (version 2 or 3) for lazy reading: only the header is parsed here. Close
 * it when done. Throws, naming the path, when the file cannot be opened, is not a regular
 * file, or its header is not valid GGUF (bad magic or version, truncated, corrupt lengths),
 * and on a big-endian host. `read` throws for a type it cannot convert to float32.
 */
export async function openGguf(path: string): Promise<GgufReader> {
  assertLittleEndianHost();
  const fh = await open(path, "r").catch((e: NodeJS.ErrnoException) => {
    throw new Error(`${path}: cannot open GGUF file (${e.code ?? e.message})`);
  });
  try {
    const stat = await fh.stat();
    if (!stat.isFile()) throw new Error(`${path}: not a regular file`);
    const header = await parseHeader(new Cursor(fh, stat.size, path));
    return new Reader(fh, path, header);
  } catch (e) {
    await fh.close();
    throw e;
  }
}

interface Header {
  version: number;
  alignment: number;
  metadata: Map<string, GgufValue>;
  tensors: GgufTensorInfo[];
  dataOffset: number;
}

/** Reads ahead through the file in chunks; every read first checks the bytes left. */
class Cursor {
  pos = 0;
  private buf = Buffer.alloc(0);
  private start = 0;
  private readonly fh: FileHandle;
  readonly size: number;
  readonly file: string;

  constructor(fh: FileHandle, size: number, file: string) {
    this.fh = fh;
    this.size = size;
    this.file = file;
  }

  get remaining(): number {
    return this.size - this.pos;
  }

  fail(msg: string): never {
    throw new Error(`${this.file}: ${msg}`);
  }

  /** Makes the next `n` bytes available, or fails naming `what` was being read. */
  async need(n: number, what: string): Promise<void> {
    if (this.pos + n <= this.start + this.buf.length) return;
    if (n > this.remaining) {
      this.fail(
        `truncated: ${what} at byte ${this.pos} needs ${n} bytes but the file ends at byte ${this.size}`,
      );
    }
    const len = Math.min(Math.max(n, CHUNK), this.remaining);
    const buf = Buffer.allocUnsafe(len);
    await readFully(this.fh, buf, this.pos, this.file);
    this.buf = buf;
    this.start = this.pos;
  }

  private take(n: number): number {
    const at = this.pos - this.start;
    this.pos += n;
    return at;
  }

  u8(): number {
    return this.buf.readUInt8(this.take(1));
  }
  i8(): number {
    return this.buf.readInt8(this.take(1));
  }
  u16(): number {
    return this.buf.readUInt16LE(this.take(2));
  }
  i16(): number {
    return this.buf.readInt16LE(this.take(2));
  }
  u32(): number {
    return this.buf.readUInt32LE(this.take(4));
  }
  i32(): number {
    return this.buf.readInt32LE(this.take(4));
  }
  u64(): bigint {
    return this.buf.readBigUInt64LE(this.take(8));
  }
  i64(): bigint {
    return this.buf.readBigInt64LE(this.take(8));
  }
  f32(): number {
    return this.buf.readFloatLE(this.take(4));
  }
  f64(): number {
    return this.buf.readDoubleLE(this.take(8));
  }
  /** A length-prefixed string if it is wholly buffered already, else undefined (no await). */
  bufferedString(): string | undefined {
    const at = this.pos - this.start;
    if (at + 8 > this.buf.length) return undefined;
    const len = this.buf.readBigUInt64LE(at);
    if (len > BigInt(this.buf.length - at - 8)) return undefined;
    this.pos += 8;
    return this.utf8(Number(len));
  }

  utf8(n: number): string {
    const at = this.take(n);
    return this.buf.toString("utf8", at, at + n);
  }
}

async function readFully(fh: FileHandle, dst: Uint8Array, position: number, file: string) {
  let done = 0;
  while (done < dst.length) {
    const len = Math.min(dst.length - done, 1 << 30);
    const { bytesRead } = await fh.read(dst, done, len, position + done).catch((e: Error) => {
      throw new Error(`${file}: read failed at byte ${position + done} (${e.message})`);
    });
    if (bytesRead === 0) {
      throw new Error(
        `${file}: unexpected end of file at byte ${position + done} (did the file change while being read?)`,
      );
    }
    done += bytesRead;
  }
}

async function parseHeader(c: Cursor): Promise<Header> {
  const version = await readPreamble(c);
  await c.need(16, "the tensor and metadata counts");
  const tensorCount = c.u64();
  const kvCount = c.u64();
  if (kvCount * BigInt(MIN_KV_BYTES) > BigInt(c.remaining)) {
    c.fail(
      `metadata count ${kvCount} is impossible: only ${c.remaining} bytes follow (truncated or corrupt)`,
    );
  }
  if (tensorCount * BigInt(MIN_TENSOR_INFO_BYTES) > BigInt(c.remaining)) {
    c.fail(
      `tensor count ${tensorCount} is impossible: only ${c.remaining} bytes follow (truncated or corrupt)`,
    );
  }
  const metadata = await readMetadata(c, Number(kvCount));
  const alignment = alignmentOf(c, metadata);
  const infos = await readTensorInfos(c, Number(tensorCount));
  const dataOffset = alignUp(c.pos, alignment);
  const tensors = placeTensors(c, infos, dataOffset, alignment);
  return { version, alignment, metadata, tensors, dataOffset };
}

async function readPreamble(c: Cursor): Promise<number> {
  if (c.size < 4) c.fail(`not a GGUF file: it is only ${c.size} bytes long`);
  await c.need(4, "the GGUF magic");
  const magic = c.u32();
  if (magic !== GGUF_MAGIC) {
    const hex = magic.toString(16).padStart(8, "0");
    c.fail(`not a GGUF file: magic bytes are 0x${hex}, expected "GGUF"`);
  }
  await c.need(4, "the GGUF version");
  const version = c.u32();
  if (version === 2 || version === 3) return version;
  if (version === 1) c.fail("GGUF version 1 is not supported (only versions 2 and 3)");
  if (version === 0x02000000 || version === 0x03000000) {
    c.fail("big-endian GGUF files are not supported");
  }
  c.fail(`unsupported GGUF version ${version} (cycleqd reads versions 2 and 3)`);
}

async function readMetadata(c: Cursor, count: number): Promise<Map<string, GgufValue>> {
  const metadata = new Map<string, GgufValue>();
  for (let i = 0; i < count; i++) {
    const key = await readString(c, `metadata key #${i}`, MAX_NAME_BYTES);
    if (metadata.has(key)) c.fail(`duplicate metadata key ${quote(key)}`);
    const what = `metadata ${quote(key)}`;
    await c.need(4, `the type of ${what}`);
    const type = valueType(c, c.u32(), what);
    metadata.set(key, await readValue(c, type, what));
  }
  return metadata;
}

function valueType(c: Cursor, id: number, what: string): GgufValueType {
  const type = GGUF_VALUE_TYPES[id];
  if (type === undefined) c.fail(`${what} has unknown value type id ${id}`);
  return type;
}

async function readString(c: Cursor, what: string, max = MAX_STRING_BYTES): Promise<string> {
  await c.need(8, `the length of ${what}`);
  const len = c.u64();
  if (len > BigInt(c.remaining)) {
    c.fail(
      `${what}: string length ${len} runs past the end of the file (${c.remaining} bytes left)`,
    );
  }
  if (len > BigInt(max)) c.fail(`${what}: string length ${len} is absurd (limit ${max})`);
  const n = Number(len);
  await c.need(n, what);
  return c.utf8(n);
}

async function readValue(c: Cursor, type: GgufValueType, what: string): Promise<GgufValue> {
  if (type === "array") return readArray(c, what, 0);
  if (type === "string") return { type, value: await readString(c, what) };
  await c.need(GGUF_SCALAR_BYTES[type] as number, what);
  return { type, value: readScalar(c, type, what) } as GgufValue;
}

/** Reads one fixed-size value whose bytes are already available. */
function readScalar(c: Cursor, type: GgufValueType, what: string): number | bigint | boolean {
  switch (type) {
    case "uint8":
      return c.u8();
    case "int8":
      return c.i8();
    case "uint16":
      return c.u16();
    case "int16":
      return c.i16();
    case "uint32":
      return c.u32();
    case "int32":
      return c.i32();
    case "float32":
      return c.f32();
    case "float64":
      return c.f64();
    case "uint64":
      return c.u64();
    case "int64":
      return c.i64();
    case "bool": {
      const b = c.u8();
      if (b > 1) c.fail(`${what}: bool byte is ${b}, expected 0 or 1`);
      return b === 1;
    }
    default:
      return c.fail(`${what}: ${type} is not a fixed-size type`);
  }
}

function minItemBytes(type: GgufValueType): number {
  if (type === "string") return 8;
  if (type === "array") return 12;
  return GGUF_SCALAR_BYTES[type] as number;
}

async function readArray(c: Cursor, what: string, depth: number): Promise<GgufArray> {
  if (depth > MAX_ARRAY_DEPTH) c.fail(`${what}: arrays nested more than ${MAX_ARRAY_DEPTH} deep`);
  await c.need(12, `the array header of ${what}`);
  const itemType = valueType(c, c.u32(), `${what} (array item)`);
  const count = c.u64();
  const minBytes = minItemBytes(itemType);
  if (count * BigInt(minBytes) > BigInt(c.remaining)) {
    c.fail(
      `${what}: array of ${count} ${itemType} items runs past the end of the file (${c.remaining} bytes left)`,
    );
  }
  if (count > BigInt(MAX_ARRAY_ITEMS)) c.fail(`${what}: array length ${count} is absurd`);
  const n = Number(count);
  const value: GgufArrayItem[] = new Array(n);
  if (itemType === "array") {
    for (let i = 0; i < n; i++) value[i] = await readArray(c, `${what}[${i}]`, depth + 1);
  } else if (itemType === "string") {
    for (let i = 0; i < n; i++) {
      value[i] = c.bufferedString() ?? (await readString(c, `${what}[${i}]`));
    }
  } else {
    // Fixed-size items: fetch them a chunk at a time rather than one await per item.
    const per = Math.max(1, Math.floor(CHUNK / minBytes));
    for (let i = 0; i < n; ) {
      const m = Math.min(per, n - i);
      await c.need(m * minBytes, what);
      for (const end = i + m; i < end; i++) value[i] = readScalar(c, itemType, `${what}[${i}]`);
    }
  }
  return { type: "array", itemType, value };
}

function alignmentOf(c: Cursor, metadata: Map<string, GgufValue>): number {
  const v = metadata.get("general.alignment");
  if (v === undefined) return GGUF_DEFAULT_ALIGNMENT;
  const a = typeof v.value === "bigint" ? Number(v.value) : v.value;
  if (typeof a !== "number" || !Number.isInteger(a) || a <= 0 || a > 2 ** 30 || a & (a - 1)) {
    c.fail(`general.alignment must be a power of two, got ${String(v.value)} (${v.type})`);
  }
  return a;
}

interface RawTensorInfo {
  name: string;
  ne: number[];
  type: GgmlTypeInfo;
  relOffset: bigint;
}

async function readTensorInfos(c: Cursor, count: number): Promise<RawTensorInfo[]> {
  const infos: RawTensorInfo[] = [];
  const names = new Set<string>();
  for (let i = 0; i < count; i++) {
    const name = await readString(c, `the name of tensor #${i}`, MAX_NAME_BYTES);
    if (names.has(name)) c.fail(`duplicate tensor name ${quote(name)}`);
    names.add(name);
    const what = `tensor ${quote(name)}`;
    await c.need(4, `the dimension count of ${what}`);
    const nDims = c.u32();
    if (nDims < 1 || nDims > GGML_MAX_DIMS) {
      c.fail(`${what} has ${nDims} dimensions (expected 1 to ${GGML_MAX_DIMS})`);
    }
    await c.need(8 * nDims + 12, `the dims, type and offset of ${what}`);
    const ne: number[] = [];
    for (let d = 0; d < nDims; d++) {
      const n = c.u64();
      if (n > BigInt(Number.MAX_SAFE_INTEGER)) c.fail(`${what} has an absurd dimension ${n}`);
      ne.push(Number(n));
    }
    const typeId = c.u32();
    const type = ggmlTypeById(typeId);
    if (type === undefined) c.fail(`${what} has unknown ggml type id ${typeId}`);
    infos.push({ name, ne, type, relOffset: c.u64() });
  }
  return infos;
}

/** Turns raw infos into tensor infos, checking sizes, alignment, bounds and overlaps. */
function placeTensors(
  c: Cursor,
  infos: RawTensorInfo[],
  dataOffset: number,
  alignment: number,
): GgufTensorInfo[] {
  const tensors = infos.map((t) => {
    const byteLength = tensorBytes(c, t);
    const what = `tensor ${quote(t.name)}`;
    if (t.relOffset % BigInt(alignment) !== 0n) {
      c.fail(`${what} data offset ${t.relOffset} is not a multiple of the alignment ${alignment}`);
    }
    const end = BigInt(dataOffset) + t.relOffset + BigInt(byteLength);
    if (end > BigInt(c.size)) {
      c.fail(
        `truncated or corrupt: ${what} data ends at byte ${end}, past the end of the file (${c.size} bytes)`,
      );
    }
    const info: GgufTensorInfo = {
      name: t.name,
      dtype: t.type.name,
      shape: [...t.ne].reverse(),
      byteLength,
      ne: t.ne,
      ggmlTypeId: t.type.id,
      offset: dataOffset + Number(t.relOffset),
    };
    return info;
  });
  checkOverlaps(c, tensors);
  return tensors;
}

function tensorBytes(c: Cursor, t: RawTensorInfo): number {
  let n = 1;
  for (const d of t.ne) {
    n *= d;
    if (n > Number.MAX_SAFE_INTEGER) {
      c.fail(`tensor ${quote(t.name)} dims [${t.ne.join(", ")}] overflow: too many elements`);
    }
  }
  const { blockSize, typeSize, name } = t.type;
  if (t.ne[0] % blockSize !== 0) {
    c.fail(
      `tensor ${quote(t.name)} has ne[0] = ${t.ne[0]}, not a multiple of the ${name} block size ${blockSize}`,
    );
  }
  const bytes = (n / blockSize) * typeSize;
  if (bytes > c.size) {
    c.fail(
      `tensor ${quote(t.name)} needs ${bytes} bytes, more than the whole file (${c.size} bytes)`,
    );
  }
  return bytes;
}

function checkOverlaps(c: Cursor, tensors: GgufTensorInfo[]): void {
  const sorted = tensors.filter((t) => t.byteLength > 0).sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1];
    const cur = sorted[i];
    if (cur.offset < prev.offset + prev.byteLength) {
      c.fail(`tensors ${quote(prev.name)} and ${quote(cur.name)} overlap in the data section`);
    }
  }
}

/** A name from the file, escaped and shortened for an error message. */
function quote(s: string): string {
  return JSON.stringify(s.length > 80 ? `${s.slice(0, 77)}...` : s);
}

function alignUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

class Reader implements GgufReader {
  readonly format = "gguf" as const;
  readonly version: number;
  readonly alignment: number;
  readonly metadata: Map<string, GgufValue>;
  readonly tensors: readonly GgufTensorInfo[];
  readonly dataOffset: number;
  readonly path: string;
  private readonly fh: FileHandle;
  private readonly byName: Map<string, GgufTensorInfo>;
  private closed = false;

  constructor(fh: FileHandle, path: string, h: Header) {
    this.fh = fh;
    this.path = path;
    this.version = h.version;
    this.alignment = h.alignment;
    this.metadata = h.metadata;
    this.tensors = h.tensors;
    this.dataOffset = h.dataOffset;
    this.byName = new Map(h.tensors.map((t) => [t.name, t]));
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  info(name: string): GgufTensorInfo {
    const t = this.byName.get(name);
    if (t === undefined) throw new Error(`${this.path}: no tensor named ${quote(name)}`);
    return t;
  }

  ne(name: string): number[] {
    return [...this.info(name).ne];
  }

  async readBytes(name: string): Promise<Uint8Array> {
    this.assertOpen();
    const t = this.info(name);
    const out = new Uint8Array(t.byteLength);
    await this.fill(out, t);
    return out;
  }

  async read(name: string): Promise<Float32Array> {
    this.assertOpen();
    const t = this.info(name);
    if (!GGUF_READABLE_TYPES.includes(t.dtype)) {
      const kind = t.dtype.startsWith("I") && !t.dtype.startsWith("IQ") ? "integer" : "quantised";
      const plain = t.dtype === "F64" ? "float64" : kind;
      throw new Error(
        `${this.path}: tensor ${quote(name)} has unsupported type ${t.dtype} (${plain}); cycleqd reads ${GGUF_READABLE_TYPES.join("/")}`,
      );
    }
    const n = elementCount(t);
    if (t.dtype === "F32") {
      const out = new Float32Array(n);
      await this.fill(new Uint8Array(out.buffer), t);
      return out;
    }
    const raw = new Uint8Array(t.byteLength);
    await this.fill(raw, t);
    return decodeToF32(raw, t.dtype, n);
  }

  private assertOpen(): void {
    if (this.closed) throw new Error(`${this.path}: reader is closed`);
  }

  private async fill(dst: Uint8Array, t: GgufTensorInfo): Promise<void> {
    await readFully(this.fh, dst, t.offset, this.path);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fh.close();
  }
}

function elementCount(t: GgufTensorInfo): number {
  return t.ne.reduce((a, b) => a * b, 1);
}
