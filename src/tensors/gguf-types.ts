/**
 * GGUF metadata values and the ggml tensor-type table, shared by the reader and the writer.
 * Layout reference: ggml's docs/gguf.md (version 3, little-endian).
 */
import type { DType } from "./dtype.ts";

export type GgufValueType =
  | "uint8"
  | "int8"
  | "uint16"
  | "int16"
  | "uint32"
  | "int32"
  | "float32"
  | "bool"
  | "string"
  | "array"
  | "uint64"
  | "int64"
  | "float64";

/** One element of an array value; elements of a nested array are arrays themselves. */
export type GgufArrayItem = number | bigint | boolean | string | GgufArray;

export interface GgufArray {
  type: "array";
  itemType: GgufValueType;
  value: GgufArrayItem[];
}

export type GgufNumberType = "uint8" | "int8" | "uint16" | "int16" | "uint32" | "int32";

/** A typed metadata value. 64-bit integers are bigints so that no bit is lost. */
export type GgufValue =
  | { type: GgufNumberType | "float32" | "float64"; value: number }
  | { type: "uint64" | "int64"; value: bigint }
  | { type: "bool"; value: boolean }
  | { type: "string"; value: string }
  | GgufArray;

/** Metadata as the reader returns it (in file order) or as a writer accepts it. */
export type GgufMetadata = Map<string, GgufValue> | Record<string, GgufValue>;

/** Value type ids in file order: the index is the id. */
export const GGUF_VALUE_TYPES: readonly GgufValueType[] = [
  "uint8",
  "int8",
  "uint16",
  "int16",
  "uint32",
  "int32",
  "float32",
  "bool",
  "string",
  "array",
  "uint64",
  "int64",
  "float64",
];

/** Bytes of a fixed-size value type; strings and arrays have none. */
export const GGUF_SCALAR_BYTES: Partial<Record<GgufValueType, number>> = {
  uint8: 1,
  int8: 1,
  uint16: 2,
  int16: 2,
  uint32: 4,
  int32: 4,
  float32: 4,
  bool: 1,
  uint64: 8,
  int64: 8,
  float64: 8,
};

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_DEFAULT_ALIGNMENT = 32;
/** llama.cpp refuses tensor names of GGML_MAX_NAME (64) bytes or more. */
export const GGML_MAX_NAME = 64;
export const GGML_MAX_DIMS = 4;

export interface GgmlTypeInfo {
  id: number;
  name: DType;
  /** Elements per block (1 for plain types). */
  blockSize: number;
  /** Bytes per block. */
  typeSize: number;
}

// Sizes as in ggml's type_traits / gguf-py's GGML_QUANT_SIZES. Ids 4, 5 and 31–33, 36–38
// belonged to types that ggml has removed.
const GGML_TYPE_LIST: [number, DType, number, number][] = [
  [0, "F32", 1, 4],
  [1, "F16", 1, 2],
  [2, "Q4_0", 32, 18],
  [3, "Q4_1", 32, 20],
  [6, "Q5_0", 32, 22],
  [7, "Q5_1", 32, 24],
  [8, "Q8_0", 32, 34],
  [9, "Q8_1", 32, 36],
  [10, "Q2_K", 256, 84],
  [11, "Q3_K", 256, 110],
  [12, "Q4_K", 256, 144],
  [13, "Q5_K", 256, 176],
  [14, "Q6_K", 256, 210],
  [15, "Q8_K", 256, 292],
  [16, "IQ2_XXS", 256, 66],
  [17, "IQ2_XS", 256, 74],
  [18, "IQ3_XXS", 256, 98],
  [19, "IQ1_S", 256, 50],
  [20, "IQ4_NL", 32, 18],
  [21, "IQ3_S", 256, 110],
  [22, "IQ2_S", 256, 82],
  [23, "IQ4_XS", 256, 136],
  [24, "I8", 1, 1],
  [25, "I16", 1, 2],
  [26, "I32", 1, 4],
  [27, "I64", 1, 8],
  [28, "F64", 1, 8],
  [29, "IQ1_M", 256, 56],
  [30, "BF16", 1, 2],
  [34, "TQ1_0", 256, 54],
  [35, "TQ2_0", 256, 66],
  [39, "MXFP4", 32, 17],
  [40, "NVFP4", 64, 36],
  [41, "Q1_0", 128, 18],
];

const BY_ID = new Map<number, GgmlTypeInfo>();
const BY_NAME = new Map<string, GgmlTypeInfo>();
for (const [id, name, blockSize, typeSize] of GGML_TYPE_LIST) {
  const t = { id, name, blockSize, typeSize };
  BY_ID.set(id, t);
  BY_NAME.set(name, t);
}

export function ggmlTypeById(id: number): GgmlTypeInfo | undefined {
  return BY_ID.get(id);
}

export function ggmlTypeByName(name: string): GgmlTypeInfo | undefined {
  return BY_NAME.get(name);
}

/** ggml types that `read` converts to float32. */
export const GGUF_READABLE_TYPES: readonly DType[] = ["F32", "F16", "BF16", "Q8_0"];

/** Throws unless `v` is an integer in [lo, hi]. */
function intIn(v: number, lo: number, hi: number, type: string): number {
  if (!Number.isInteger(v) || v < lo || v > hi) {
    throw new Error(`gguf.${type}: ${v} is not an integer in [${lo}, ${hi}]`);
  }
  return v;
}

function bigIn(v: number | bigint, lo: bigint, hi: bigint, type: string): bigint {
  if (typeof v === "number" && !Number.isSafeInteger(v)) {
    throw new Error(`gguf.${type}: ${v} is not a safe integer; pass a bigint`);
  }
  const b = BigInt(v);
  if (b < lo || b > hi) throw new Error(`gguf.${type}: ${b} is out of range [${lo}, ${hi}]`);
  return b;
}

/** Constructors for typed metadata values, checked for range. */
export const gguf = {
  u8: (v: number): GgufValue => ({ type: "uint8", value: intIn(v, 0, 0xff, "u8") }),
  i8: (v: number): GgufValue => ({ type: "int8", value: intIn(v, -0x80, 0x7f, "i8") }),
  u16: (v: number): GgufValue => ({ type: "uint16", value: intIn(v, 0, 0xffff, "u16") }),
  i16: (v: number): GgufValue => ({ type: "int16", value: intIn(v, -0x8000, 0x7fff, "i16") }),
  u32: (v: number): GgufValue => ({ type: "uint32", value: intIn(v, 0, 0xffffffff, "u32") }),
  i32: (v: number): GgufValue => ({
    type: "int32",
    value: intIn(v, -0x80000000, 0x7fffffff, "i32"),
  }),
  u64: (v: number | bigint): GgufValue => ({
    type: "uint64",
    value: bigIn(v, 0n, 0xffffffffffffffffn, "u64"),
  }),
  i64: (v: number | bigint): GgufValue => ({
    type: "int64",
    value: bigIn(v, -0x8000000000000000n, 0x7fffffffffffffffn, "i64"),
  }),
  f32: (v: number): GgufValue => ({ type: "float32", value: Math.fround(v) }),
  f64: (v: number): GgufValue => ({ type: "float64", value: v }),
  bool: (v: boolean): GgufValue => ({ type: "bool", value: v }),
  str: (v: string): GgufValue => ({ type: "string", value: v }),
  /** An array of `itemType`; a nested array's items are `gguf.arr(...)` values. */
  arr: (itemType: GgufValueType, values: readonly GgufArrayItem[]): GgufArray => {
    const arr: GgufArray = { type: "array", itemType, value: [...values] };
    checkArrayItems(arr, "gguf.arr");
    return arr;
  },
};

/** Throws unless `v` is a well-formed value of its declared type (writer input is user input). */
export function checkValue(v: GgufValue, where: string, depth = 0): void {
  if (v === null || typeof v !== "object" || !GGUF_VALUE_TYPES.includes(v.type)) {
    throw new Error(`${where}: not a GGUF value (expected {type, value} with a known type)`);
  }
  if (v.type === "array") {
    checkArrayItems(v, where, depth);
    return;
  }
  checkScalar(v.type, v.value, where);
}

function checkArrayItems(a: GgufArray, where: string, depth = 0): void {
  if (depth > MAX_ARRAY_DEPTH) throw new Error(`${where}: arrays nested too deeply`);
  if (!GGUF_VALUE_TYPES.includes(a.itemType)) {
    throw new Error(`${where}: unknown array item type ${String(a.itemType)}`);
  }
  if (!Array.isArray(a.value)) throw new Error(`${where}: array value must be a JS array`);
  for (let i = 0; i < a.value.length; i++) {
    const item = a.value[i];
    if (a.itemType === "array") {
      const inner = item as GgufArray;
      if (inner === null || typeof inner !== "object" || inner.type !== "array") {
        throw new Error(`${where}[${i}]: items of an array of arrays must be gguf.arr(...) values`);
      }
      checkArrayItems(inner, `${where}[${i}]`, depth + 1);
    } else {
      checkScalar(a.itemType, item, `${where}[${i}]`);
    }
  }
}

/** Nesting limit for arrays of arrays, far beyond anything real files use. */
export const MAX_ARRAY_DEPTH = 16;

const INT_RANGES: Record<GgufNumberType, [number, number]> = {
  uint8: [0, 0xff],
  int8: [-0x80, 0x7f],
  uint16: [0, 0xffff],
  int16: [-0x8000, 0x7fff],
  uint32: [0, 0xffffffff],
  int32: [-0x80000000, 0x7fffffff],
};

function checkScalar(type: GgufValueType, value: unknown, where: string): void {
  const bad = (what: string) => new Error(`${where}: ${type} value ${String(value)} ${what}`);
  switch (type) {
    case "string":
      if (typeof value !== "string") throw bad("is not a string");
      return;
    case "bool":
      if (typeof value !== "boolean") throw bad("is not a boolean");
      return;
    case "float32":
    case "float64":
      if (typeof value !== "number") throw bad("is not a number");
      return;
    case "uint64":
    case "int64": {
      if (typeof value !== "bigint") throw bad("is not a bigint");
      const [lo, hi] =
        type === "uint64" ? [0n, 0xffffffffffffffffn] : [-(2n ** 63n), 2n ** 63n - 1n];
      if (value < lo || value > hi) throw bad("is out of range");
      return;
    }
    case "array":
      throw bad("is not allowed here");
    default: {
      const [lo, hi] = INT_RANGES[type];
      if (typeof value !== "number" || !Number.isInteger(value) || value < lo || value > hi) {
        throw bad(`is not an integer in [${lo}, ${hi}]`);
      }
    }
  }
}

export type PlainValue = number | boolean | string | PlainValue[];

/** Metadata as plain JS values for printing or JSON: bigints become numbers when exact. */
export function plainMetadata(meta: GgufMetadata): Record<string, PlainValue> {
  const out: Record<string, PlainValue> = {};
  for (const [k, v] of metadataEntries(meta)) out[k] = plainValue(v);
  return out;
}

/** One value as a plain JS value (see `plainMetadata`). */
export function plainValue(v: GgufValue): PlainValue {
  return v.type === "array" ? v.value.map(plainItem) : plainItem(v.value);
}

function plainItem(v: GgufArrayItem): PlainValue {
  if (typeof v === "bigint") {
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(v)
      : v.toString();
  }
  if (typeof v === "object") return plainValue(v);
  return v;
}

/** Entries of either metadata form, in order. */
export function metadataEntries(meta: GgufMetadata): [string, GgufValue][] {
  return meta instanceof Map ? [...meta.entries()] : Object.entries(meta);
}
