/**
 * The safetensors format, shared by the reader and the writer: the error type, file names,
 * header types and the (pure) header parser, and small helpers for error messages.
 *
 * Layout of a file: an 8-byte little-endian header length N, N bytes of JSON
 * `{ name: { dtype, shape, data_offsets: [begin, end] }, __metadata__?: {...} }`, then the
 * data section; offsets count from its start.
 */
import { byteLengthOf, type DType } from "./dtype.ts";
import type { TensorInfo } from "./types.ts";

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

export const INDEX_FILE = "model.safetensors.index.json";
export const SINGLE_FILE = "model.safetensors";
/** One fs read or write moves less than 2 GiB; larger tensors go in pieces. */
export const IO_CHUNK = 1 << 30;
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

export function checkShape(file: string, where: string, shape: unknown): number[] {
  if (!Array.isArray(shape) || !shape.every(isIndex)) {
    throw new SafetensorsError(
      file,
      `${where} has shape ${short(shape)}; expected an array of non-negative integers`,
    );
  }
  return shape as number[];
}

export function elementCount(file: string, where: string, shape: number[]): number {
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
// Small helpers

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isIndex(v: unknown): v is number {
  return Number.isSafeInteger(v) && (v as number) >= 0;
}

export function typeName(v: unknown): string {
  return v === null ? "null" : Array.isArray(v) ? "an array" : `a ${typeof v}`;
}

/** A value for an error message, cut short: hostile headers may hold huge values. */
export function short(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}
