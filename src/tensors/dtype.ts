/**
 * Element types of tensor files and the float conversions between them.
 * In memory cycleqd computes in Float32Array; F16/BF16 exist only in files.
 */
export type DType =
  | "F64"
  | "F32"
  | "F16"
  | "BF16"
  | "I64"
  | "I32"
  | "I16"
  | "I8"
  | "U8"
  | "BOOL"
  | "Q8_0"
  | GgmlQuantDType;

/**
 * ggml block-quantised types other than Q8_0: GGUF files may hold them and `inspect` lists
 * them, but cycleqd does not decode them.
 */
export type GgmlQuantDType =
  | "Q4_0"
  | "Q4_1"
  | "Q5_0"
  | "Q5_1"
  | "Q8_1"
  | "Q2_K"
  | "Q3_K"
  | "Q4_K"
  | "Q5_K"
  | "Q6_K"
  | "Q8_K"
  | "IQ2_XXS"
  | "IQ2_XS"
  | "IQ3_XXS"
  | "IQ1_S"
  | "IQ4_NL"
  | "IQ3_S"
  | "IQ2_S"
  | "IQ4_XS"
  | "IQ1_M"
  | "TQ1_0"
  | "TQ2_0"
  | "MXFP4"
  | "NVFP4"
  | "Q1_0";

/** Float element types that cycleqd can write. */
export type FloatDType = "F32" | "F16" | "BF16";

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE half (as a 16-bit integer) to a JS number. */
export function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** A JS number to IEEE half bits, rounding to nearest even. */
export function f32ToF16(v: number): number {
  f32[0] = v;
  return f16FromF32Bits(u32[0]);
}

/** The bits of a float32 to IEEE half bits, rounding to nearest even. */
function f16FromF32Bits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // Inf / NaN
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow to Inf
  if (e <= 0) {
    if (e < -10) return sign; // below half the smallest subnormal: zero
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && half & 1)) half++;
    return sign | half;
  }
  // A carry out of the mantissa rolls into the exponent, up to Inf: that is the right result.
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
  return sign | half;
}

/** bfloat16 bits to a JS number. */
export function bf16ToF32(b: number): number {
  u32[0] = (b & 0xffff) << 16;
  return f32[0];
}

/** A JS number to bfloat16 bits, rounding to nearest even (NaN stays NaN). */
export function f32ToBf16(v: number): number {
  f32[0] = v;
  return bf16FromF32Bits(u32[0]);
}

function bf16FromF32Bits(x: number): number {
  if ((x & 0x7f800000) === 0x7f800000 && x & 0x7fffff) return ((x >>> 16) | 0x40) & 0xffff;
  const rounded = x + 0x7fff + ((x >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}

/**
 * Elements and bytes per block of the types `decodeToF32` handles (plain types: blocks of
 * one element). Other ggml quantisations are listed in gguf-types.ts but never decoded.
 */
const LAYOUT: Partial<Record<DType, { block: number; bytes: number }>> = {
  F64: { block: 1, bytes: 8 },
  F32: { block: 1, bytes: 4 },
  F16: { block: 1, bytes: 2 },
  BF16: { block: 1, bytes: 2 },
  I64: { block: 1, bytes: 8 },
  I32: { block: 1, bytes: 4 },
  I16: { block: 1, bytes: 2 },
  I8: { block: 1, bytes: 1 },
  U8: { block: 1, bytes: 1 },
  BOOL: { block: 1, bytes: 1 },
  Q8_0: { block: 32, bytes: 34 },
};

function layoutOf(dtype: DType): { block: number; bytes: number } {
  const layout = LAYOUT[dtype];
  if (!layout) throw new Error(`cycleqd cannot convert ${dtype} tensors to float32`);
  return layout;
}

/**
 * Bytes that `count` elements of `dtype` take, for the types `decodeToF32` handles. Throws
 * for a count that is not a whole number of blocks (Q8_0 packs 32 elements per block).
 */
export function byteLengthOf(dtype: DType, count: number): number {
  const { block, bytes } = layoutOf(dtype);
  if (!Number.isSafeInteger(count) || count < 0 || count % block !== 0) {
    throw new Error(`${count} elements do not fit ${dtype} (blocks of ${block})`);
  }
  return (count / block) * bytes;
}

// Typed-array views read in host byte order; tensor files are little-endian.
const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Throws on big-endian hosts, where typed-array views would misread little-endian files. */
export function assertLittleEndianHost(): void {
  if (!HOST_IS_LITTLE_ENDIAN) {
    throw new Error("cycleqd reads and writes tensor files only on little-endian machines");
  }
}

/** `bytes` as a fresh, zero-offset buffer when its offset breaks the alignment a view needs. */
function aligned(bytes: Uint8Array, length: number, align: number): Uint8Array {
  if (bytes.byteOffset % align === 0) return bytes.subarray(0, length);
  return bytes.slice(0, length);
}

let f16Table: Float32Array | null = null;

/** All 65536 half values, built once: decoding then costs one lookup per element. */
function halfTable(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16ToF32(h);
  }
  return f16Table;
}

/**
 * Decodes `count` little-endian elements of `dtype` from `bytes` into a new Float32Array.
 * Integer types convert numerically (I64 exactly up to 2^53, then rounded to float32);
 * BOOL gives 0 or 1. The result never shares memory with `bytes`.
 */
export function decodeToF32(bytes: Uint8Array, dtype: DType, count: number): Float32Array {
  assertLittleEndianHost();
  const length = byteLengthOf(dtype, count);
  if (bytes.byteLength < length) {
    throw new Error(`${count} ${dtype} elements need ${length} bytes, got ${bytes.byteLength}`);
  }
  const out = new Float32Array(count);
  const { block, bytes: size } = layoutOf(dtype);
  const src = aligned(bytes, length, block === 1 ? size : 1);
  const { buffer, byteOffset } = src;
  switch (dtype) {
    case "F32":
      new Uint8Array(out.buffer).set(src);
      break;
    case "F64":
      out.set(new Float64Array(buffer, byteOffset, count));
      break;
    case "F16": {
      const table = halfTable();
      const h = new Uint16Array(buffer, byteOffset, count);
      for (let i = 0; i < count; i++) out[i] = table[h[i]];
      break;
    }
    case "BF16": {
      const b = new Uint16Array(buffer, byteOffset, count);
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < count; i++) bits[i] = b[i] << 16;
      break;
    }
    case "I64": {
      const w = new Int32Array(buffer, byteOffset, 2 * count);
      for (let i = 0; i < count; i++) out[i] = w[2 * i + 1] * 4294967296 + (w[2 * i] >>> 0);
      break;
    }
    case "I32":
      out.set(new Int32Array(buffer, byteOffset, count));
      break;
    case "I16":
      out.set(new Int16Array(buffer, byteOffset, count));
      break;
    case "I8":
      out.set(new Int8Array(buffer, byteOffset, count));
      break;
    case "U8":
      out.set(src);
      break;
    case "BOOL":
      for (let i = 0; i < count; i++) out[i] = src[i] === 0 ? 0 : 1;
      break;
    case "Q8_0":
      decodeQ8_0(src, out);
      break;
    default:
      throw new Error(`cycleqd cannot convert ${dtype} tensors to float32`);
  }
  return out;
}

/** Q8_0: blocks of a float16 scale followed by 32 signed bytes; value = scale · byte. */
function decodeQ8_0(src: Uint8Array, out: Float32Array): void {
  const table = halfTable();
  const q = new Int8Array(src.buffer, src.byteOffset, src.byteLength);
  for (let b = 0, at = 0; b < out.length; b += 32, at += 34) {
    const scale = table[src[at] | (src[at + 1] << 8)];
    for (let j = 0; j < 32; j++) out[b + j] = scale * q[at + 2 + j];
  }
}

/**
 * Encodes float32 values as little-endian `dtype` bytes (F16/BF16 round to nearest even).
 * The result may share memory with `data` for F32.
 */
export function encodeFromF32(data: Float32Array, dtype: FloatDType): Uint8Array {
  assertLittleEndianHost();
  const bits = new Uint32Array(data.buffer, data.byteOffset, data.length);
  switch (dtype) {
    case "F32":
      return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    case "F16": {
      const out = new Uint16Array(data.length);
      for (let i = 0; i < data.length; i++) out[i] = f16FromF32Bits(bits[i]);
      return new Uint8Array(out.buffer);
    }
    case "BF16": {
      const out = new Uint16Array(data.length);
      for (let i = 0; i < data.length; i++) out[i] = bf16FromF32Bits(bits[i]);
      return new Uint8Array(out.buffer);
    }
    default:
      throw new Error(`cannot write ${dtype as string}: cycleqd writes F32, F16 or BF16`);
  }
}
