import assert from "node:assert/strict";
import { existsSync, statSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import {
  bf16ToF32,
  decodeToF32,
  encodeFromF32,
  f16ToF32,
  f32ToBf16,
  f32ToF16,
} from "../src/tensors/dtype.ts";
import {
  openSafetensors,
  writeSafetensors,
  writeShardedSafetensors,
} from "../src/tensors/safetensors.ts";
import type { TensorToWrite } from "../src/tensors/types.ts";
import { Rng } from "../src/util/rng.ts";

let dir = "";
let counter = 0;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "cycleqd-safetensors-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A fresh path inside the test folder. */
function fresh(name = "t.safetensors"): string {
  return join(dir, `${counter++}-${name}`);
}

/** A safetensors file built by hand: header JSON (object or raw text) then data bytes. */
function rawFile(header: unknown, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const json = new TextEncoder().encode(
    typeof header === "string" ? header : JSON.stringify(header),
  );
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

async function writeRaw(header: unknown, data?: Uint8Array): Promise<string> {
  const path = fresh();
  await writeFile(path, rawFile(header, data));
  return path;
}

/** Asserts the promise fails with a message `<file>: ...` matching `re`. */
async function failsWith(p: Promise<unknown>, file: string, re: RegExp): Promise<void> {
  await assert.rejects(p, (err: Error) => {
    assert.ok(
      err.message.startsWith(`${file}: `),
      `message should start with the file: ${err.message}`,
    );
    assert.match(err.message, re);
    return true;
  });
}

function bits(a: Float32Array): number[] {
  return [...new Uint32Array(a.buffer, a.byteOffset, a.length)];
}

// ---------------------------------------------------------------------------------------
// Round trips

test("F32, F16 and BF16 round-trip bit-exactly for representable values", async () => {
  const rng = new Rng(1);
  const special = [
    0,
    -0,
    1,
    -2.5,
    0.25,
    Number.POSITIVE_INFINITY,
    Number.NEGATIVE_INFINITY,
    Number.NaN,
  ];
  const f32 = Float32Array.from([
    ...special,
    3.4028234663852886e38,
    1e-45,
    ...Array.from({ length: 50 }, () => rng.normal()),
  ]);
  const f16 = Float32Array.from([
    ...special,
    65504,
    -65504,
    2 ** -24,
    1023 * 2 ** -24,
    2 ** -14,
    1 + 2 ** -10,
  ]);
  const bf16 = Float32Array.from([
    ...special,
    2 ** -133,
    3.3895313892515355e38,
    1 + 2 ** -7,
    -1.5 * 2 ** -100,
  ]);
  const path = fresh();
  await writeSafetensors(path, [
    { name: "a.f32", dtype: "F32", shape: [f32.length], data: f32 },
    { name: "b.f16", dtype: "F16", shape: [2, f16.length / 2], data: f16 },
    { name: "c.bf16", dtype: "BF16", shape: [bf16.length, 1], data: async () => bf16 },
  ]);
  const reader = await openSafetensors(path);
  try {
    assert.equal(reader.format, "safetensors");
    assert.deepEqual(
      reader.tensors.map((t) => [t.name, t.dtype, t.shape, t.byteLength]),
      [
        ["a.f32", "F32", [f32.length], 4 * f32.length],
        ["b.f16", "F16", [2, f16.length / 2], 2 * f16.length],
        ["c.bf16", "BF16", [bf16.length, 1], 2 * bf16.length],
      ],
    );
    assert.deepEqual(bits(await reader.read("a.f32")), bits(f32));
    assert.deepEqual(bits(await reader.read("b.f16")), bits(f16));
    assert.deepEqual(bits(await reader.read("c.bf16")), bits(bf16));
  } finally {
    await reader.close();
  }
});

test("F16/BF16 writing rounds values to nearest even", async () => {
  const values = Float32Array.from([1 + 2 ** -11, 1 + 3 * 2 ** -11, 1 + 2 ** -8 + 2 ** -20]);
  const path = fresh();
  await writeSafetensors(path, [
    { name: "h", dtype: "F16", shape: [3], data: values },
    { name: "b", dtype: "BF16", shape: [3], data: values },
  ]);
  const reader = await openSafetensors(path);
  assert.deepEqual([...(await reader.read("h"))], [1, 1 + 2 ** -9, 1 + 2 ** -8]);
  assert.deepEqual([...(await reader.read("b"))], [1, 1, 1 + 2 ** -7]);
  await reader.close();
});

test("integer, F64 and BOOL tensors are read as their numeric values", async () => {
  const i64 = [-5, 2 ** 40 + 3, -(2 ** 53), 123456789];
  const parts: [string, string, number[], Uint8Array][] = [
    ["i8", "I8", [-128, -1, 0, 127], new Uint8Array(Int8Array.from([-128, -1, 0, 127]).buffer)],
    ["i64", "I64", i64, new Uint8Array(BigInt64Array.from(i64.map(BigInt)).buffer)],
    ["u8", "U8", [0, 200, 255], Uint8Array.from([0, 200, 255])],
    ["i16", "I16", [-32768, 32767, 5], new Uint8Array(Int16Array.from([-32768, 32767, 5]).buffer)],
    ["bool", "BOOL", [0, 1, 1], Uint8Array.from([0, 1, 2])],
    [
      "i32",
      "I32",
      [-(2 ** 31), 2 ** 31 - 1, 16777217],
      new Uint8Array(Int32Array.from([-(2 ** 31), 2 ** 31 - 1, 16777217]).buffer),
    ],
    [
      "f64",
      "F64",
      [0.1, 1e300, -2.5],
      new Uint8Array(Float64Array.from([0.1, 1e300, -2.5]).buffer),
    ],
  ];
  // Packed back to back, so the wider types sit at unaligned offsets.
  const header: Record<string, unknown> = {};
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const [name, dtype, values, bytes] of parts) {
    header[name] = { dtype, shape: [values.length], data_offsets: [offset, offset + bytes.length] };
    chunks.push(bytes);
    offset += bytes.length;
  }
  const data = new Uint8Array(offset);
  let at = 0;
  for (const c of chunks) {
    data.set(c, at);
    at += c.length;
  }
  const path = await writeRaw(header, data);
  const reader = await openSafetensors(path);
  for (const [name, , values] of parts) {
    assert.deepEqual([...(await reader.read(name))], [...Float32Array.from(values)], name);
  }
  await reader.close();
});

test("scalars and empty tensors", async () => {
  const path = fresh();
  await writeSafetensors(path, [
    { name: "scalar", dtype: "F32", shape: [], data: Float32Array.of(4.5) },
    { name: "empty", dtype: "F16", shape: [0, 7], data: new Float32Array(0) },
  ]);
  const reader = await openSafetensors(path);
  assert.deepEqual([...(await reader.read("scalar"))], [4.5]);
  assert.equal((await reader.read("empty")).length, 0);
  await reader.close();
});

test("header is space-padded to a multiple of 8 and metadata is kept", async () => {
  const path = fresh();
  const metadata = { note: "merged by cycleqd", "odd key \u00e9": "v\n" };
  await writeSafetensors(
    path,
    [{ name: "x", dtype: "F32", shape: [1], data: Float32Array.of(1) }],
    metadata,
  );
  const bytes = await readFile(path);
  const n = Number(bytes.readBigUInt64LE(0));
  assert.equal(n % 8, 0);
  assert.equal(bytes.length, 8 + n + 4);
  const text = bytes.subarray(8, 8 + n).toString("utf8");
  assert.match(text, /^\{.*\} *$/);
  const reader = await openSafetensors(path);
  assert.deepEqual(reader.metadata, { format: "pt", ...metadata });
  await reader.close();
});

test("metadata must map strings to strings", async () => {
  const path = fresh();
  const bad = { epoch: 3 } as unknown as Record<string, string>;
  await failsWith(
    writeSafetensors(path, [], bad),
    path,
    /metadata must map strings to strings, but "epoch" holds a number/,
  );
  const raw = await writeRaw({ __metadata__: { epoch: 3 } });
  await failsWith(openSafetensors(raw), raw, /__metadata__ must map strings to strings/);
});

// ---------------------------------------------------------------------------------------
// Writing: streaming and atomicity

test("writing loads one tensor at a time, after the previous one is on disk", async () => {
  const path = fresh();
  const sizesSeen: number[] = [];
  const tensors: TensorToWrite[] = [0, 1, 2].map((i) => ({
    name: `t${i}`,
    dtype: "F32",
    shape: [4],
    data: async () => {
      sizesSeen.push(statSync(`${path}.tmp`).size);
      assert.ok(!existsSync(path), "the real name appears only when complete");
      return Float32Array.of(i, i, i, i);
    },
  }));
  await writeSafetensors(path, tensors);
  const header = statSync(path).size - 3 * 16;
  assert.deepEqual(sizesSeen, [header, header + 16, header + 32]);
  assert.ok(!existsSync(`${path}.tmp`));
});

test("a failed write leaves neither a half file nor a changed old file", async () => {
  const path = fresh();
  await writeFile(path, "old contents");
  const failing: TensorToWrite[] = [
    { name: "a", dtype: "F32", shape: [2], data: Float32Array.of(1, 2) },
    { name: "b", dtype: "F32", shape: [2], data: () => Promise.reject(new Error("source gone")) },
  ];
  await assert.rejects(writeSafetensors(path, failing), /source gone/);
  assert.equal(await readFile(path, "utf8"), "old contents");
  assert.ok(!existsSync(`${path}.tmp`));
  const wrongLength: TensorToWrite[] = [
    { name: "w", dtype: "F16", shape: [2, 3], data: new Float32Array(5) },
  ];
  await failsWith(
    writeSafetensors(path, wrongLength),
    path,
    /tensor "w": data has 5 values but shape \[2, 3\] needs a Float32Array of 6/,
  );
  assert.ok(!existsSync(`${path}.tmp`));
});

test("writer input is validated", async () => {
  const path = fresh();
  const t = (over: Partial<TensorToWrite>) =>
    [
      { name: "x", dtype: "F32", shape: [1], data: new Float32Array(1), ...over },
    ] as TensorToWrite[];
  await failsWith(
    writeSafetensors(path, t({ dtype: "Q8_0" as never })),
    path,
    /has dtype "Q8_0"; cycleqd writes F32, F16, BF16/,
  );
  await failsWith(
    writeSafetensors(path, t({ shape: [-1] })),
    path,
    /shape \[-1\]; expected an array of non-negative integers/,
  );
  await failsWith(writeSafetensors(path, t({ name: "__metadata__" })), path, /invalid tensor name/);
  await failsWith(writeSafetensors(path, [...t({}), ...t({})]), path, /tensor "x" is listed twice/);
  await failsWith(
    writeSafetensors(join(dir, "no-such-dir", "x.safetensors"), t({})),
    join(dir, "no-such-dir", "x.safetensors.tmp"),
    /cannot create \(ENOENT\)/,
  );
});

// ---------------------------------------------------------------------------------------
// Lazy reading

test("opening reads only the header; each tensor is read on demand", async () => {
  const path = fresh();
  await writeSafetensors(path, [
    { name: "first", dtype: "F32", shape: [2], data: Float32Array.of(1, 2) },
    { name: "second", dtype: "F32", shape: [1024], data: new Float32Array(1024) },
  ]);
  const reader = await openSafetensors(path);
  // Cut away the second tensor after opening: the first still reads, the second cannot.
  await truncate(path, statSync(path).size - 1024);
  assert.deepEqual([...(await reader.read("first"))], [1, 2]);
  await failsWith(reader.read("second"), path, /file ends early while reading tensor "second"/);
  await failsWith(
    reader.read("third"),
    path,
    /no tensor named "third" \(it has 2 tensors, e\.g\. "first", "second"\)/,
  );
  assert.equal(reader.has("first"), true);
  assert.deepEqual(reader.info("second").shape, [1024]);
  await reader.close();
  await failsWith(reader.read("first"), path, /read after close/);
});

// ---------------------------------------------------------------------------------------
// Sharded checkpoints

function sampleTensors(rng: Rng): { tensors: TensorToWrite[]; values: Map<string, Float32Array> } {
  const specs: [string, "F32" | "F16" | "BF16", number[]][] = [
    ["model.embed_tokens.weight", "F32", [10, 8]],
    ["model.layers.0.self_attn.q_proj.weight", "F16", [8, 8]],
    ["model.layers.0.mlp.up_proj.weight", "BF16", [16, 8]],
    ["model.norm.weight", "F32", [8]],
    ["lm_head.weight", "F32", [10, 8]],
  ];
  const values = new Map<string, Float32Array>();
  const tensors = specs.map(([name, dtype, shape]) => {
    const n = shape.reduce((a, b) => a * b, 1);
    // Multiples of 1/8 in [-4, 4]: exact in all three dtypes.
    const v = Float32Array.from({ length: n }, () => rng.int(65) / 8 - 4);
    values.set(name, v);
    return { name, dtype, shape, data: async () => v };
  });
  return { tensors, values };
}

test("sharded checkpoints round-trip in Hugging Face layout", async () => {
  const out = join(dir, `${counter++}-sharded`);
  const { tensors, values } = sampleTensors(new Rng(5));
  // Sizes 320, 128, 256, 32, 320 bytes with at most 400 per shard: [320] [128 256] [32 320].
  const result = await writeShardedSafetensors(out, tensors, {
    maxShardBytes: 400,
    metadata: { run: "7" },
  });
  const names = [
    "model-00001-of-00003.safetensors",
    "model-00002-of-00003.safetensors",
    "model-00003-of-00003.safetensors",
  ];
  assert.deepEqual(
    result.shards,
    names.map((n) => join(out, n)),
  );
  assert.deepEqual((await readdir(out)).sort(), [...names, "model.safetensors.index.json"]);
  const index = JSON.parse(await readFile(result.index, "utf8"));
  assert.deepEqual(index.metadata, { total_size: 320 + 128 + 256 + 32 + 320 });
  assert.deepEqual(Object.keys(index.weight_map), [...values.keys()].sort());
  assert.equal(index.weight_map["model.layers.0.mlp.up_proj.weight"], names[1]);
  for (const target of [out, result.index]) {
    const reader = await openSafetensors(target);
    assert.equal(reader.path, result.index);
    assert.deepEqual(reader.metadata, { format: "pt", run: "7" });
    assert.equal(reader.tensors.length, values.size);
    for (const [name, v] of values) assert.deepEqual(await reader.read(name), v, name);
    await reader.close();
  }
});

test("a tensor larger than maxShardBytes gets a shard of its own", async () => {
  const out = join(dir, `${counter++}-big`);
  const { tensors } = sampleTensors(new Rng(6));
  const result = await writeShardedSafetensors(out, tensors, { maxShardBytes: 100 });
  assert.equal(result.shards.length, 5);
  await failsWith(
    writeShardedSafetensors(out, tensors, { maxShardBytes: 0 }),
    out,
    /maxShardBytes must be a positive integer/,
  );
});

test("a directory with one model.safetensors opens as that file", async () => {
  const out = join(dir, `${counter++}-single`);
  await mkdir(out);
  await writeSafetensors(join(out, "model.safetensors"), [
    { name: "w", dtype: "F32", shape: [1], data: Float32Array.of(3) },
  ]);
  const reader = await openSafetensors(out);
  assert.equal(reader.path, join(out, "model.safetensors"));
  assert.deepEqual([...(await reader.read("w"))], [3]);
  await reader.close();
  const empty = join(dir, `${counter++}-empty`);
  await mkdir(empty);
  await failsWith(
    openSafetensors(empty),
    empty,
    /holds neither model\.safetensors nor model\.safetensors\.index\.json/,
  );
  const missing = join(dir, "does-not-exist");
  await failsWith(openSafetensors(missing), missing, /no such file or directory/);
});

/** Two shards written by hand and an index over them; returns the index path. */
async function handShards(
  weightMap: Record<string, string>,
  shardTensors: Record<string, string[]>,
): Promise<string> {
  const out = join(dir, `${counter++}-hand`);
  await mkdir(out);
  for (const [file, names] of Object.entries(shardTensors)) {
    await writeSafetensors(
      join(out, file),
      names.map((name) => ({ name, dtype: "F32", shape: [1], data: Float32Array.of(1) })),
    );
  }
  const index = join(out, "model.safetensors.index.json");
  await writeFile(index, JSON.stringify({ metadata: {}, weight_map: weightMap }));
  return index;
}

test("inconsistent sharded checkpoints are rejected, naming the index", async () => {
  const missing = await handShards(
    { a: "s1.safetensors", b: "s2.safetensors" },
    { "s1.safetensors": ["a"] },
  );
  await failsWith(
    openSafetensors(missing),
    missing,
    /shard "s2\.safetensors" named in weight_map is missing .*download every shard/,
  );
  const absent = await handShards(
    { a: "s1.safetensors", b: "s1.safetensors" },
    { "s1.safetensors": ["a"] },
  );
  await failsWith(
    openSafetensors(absent),
    absent,
    /weight_map puts tensor "b" in s1\.safetensors, but that shard has no such tensor/,
  );
  const duplicate = await handShards(
    { a: "s1.safetensors", b: "s2.safetensors" },
    { "s1.safetensors": ["a", "b"], "s2.safetensors": ["b"] },
  );
  await failsWith(
    openSafetensors(duplicate),
    duplicate,
    /tensor "b" appears in two shards, s1\.safetensors and s2\.safetensors/,
  );
  const outside = await handShards({ a: "../s1.safetensors" }, {});
  await failsWith(
    openSafetensors(outside),
    outside,
    /points to "\.\.\/s1\.safetensors"; expected a shard file name/,
  );
  const notJson = await handShards({}, {});
  await writeFile(notJson, "{ weight_map: ");
  await failsWith(openSafetensors(notJson), notJson, /index is not valid JSON/);
  const noMap = await handShards({}, {});
  await writeFile(noMap, "[]");
  await failsWith(openSafetensors(noMap), noMap, /index has no weight_map object/);
});

// ---------------------------------------------------------------------------------------
// Hostile single files

const f32Tensor = (offsets: unknown, shape: unknown = [2], dtype: unknown = "F32") => ({
  dtype,
  shape,
  data_offsets: offsets,
});

test("bad header lengths are caught before any large allocation", async () => {
  const tiny = fresh();
  await writeFile(tiny, Uint8Array.of(1, 2, 3));
  await failsWith(openSafetensors(tiny), tiny, /file is 3 bytes, too short to be safetensors/);
  const longer = fresh();
  const bytes = rawFile({});
  new DataView(bytes.buffer).setBigUint64(0, 1000n, true);
  await writeFile(longer, bytes);
  await failsWith(
    openSafetensors(longer),
    longer,
    /header length 1000 is larger than the 10-byte file; the file is truncated/,
  );
  const huge = fresh();
  new DataView(bytes.buffer).setBigUint64(0, 2n ** 62n, true);
  await writeFile(huge, bytes);
  await failsWith(
    openSafetensors(huge),
    huge,
    /header length 4611686018427387904 exceeds the 100 MB limit/,
  );
});

test("headers that are not a JSON object are rejected", async () => {
  const cases: [unknown, RegExp][] = [
    ["{ not json", /header is not valid JSON/],
    ["[1, 2]", /header is not a JSON object/],
    ["null", /header is not a JSON object/],
  ];
  for (const [header, re] of cases) {
    const path = await writeRaw(header);
    await failsWith(openSafetensors(path), path, re);
  }
  const path = fresh();
  const bytes = rawFile('{"a":1}');
  bytes[10] = 0xff; // inside the JSON: not UTF-8
  await writeFile(path, bytes);
  await failsWith(openSafetensors(path), path, /header is not valid UTF-8/);
});

test("bad tensor entries are rejected with what is wrong", async () => {
  const data = new Uint8Array(16);
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ w: 5 }, /tensor "w" is not an object with dtype, shape, data_offsets/],
    [
      { w: f32Tensor([0, 8], [2], "F8_E4M3") },
      /tensor "w" has unsupported dtype "F8_E4M3"; cycleqd reads F64, F32, .*BOOL/,
    ],
    [{ w: f32Tensor([0, 8], [2], "Q8_0") }, /unsupported dtype "Q8_0"/],
    [
      { w: f32Tensor([0, 8], [-2]) },
      /tensor "w" has shape \[-2\]; expected an array of non-negative integers/,
    ],
    [{ w: f32Tensor([0, 8], [1.5]) }, /has shape \[1\.5\]/],
    [{ w: f32Tensor([0, 8], "2") }, /has shape "2"/],
    [
      { w: f32Tensor([0, 8], [2 ** 30, 2 ** 30, 2 ** 30]) },
      /has shape \[1073741824, 1073741824, 1073741824\]: too many elements/,
    ],
    [{ w: f32Tensor([0]) }, /tensor "w" has data_offsets \[0\]; expected \[begin, end\]/],
    [{ w: f32Tensor([0, -8]) }, /has data_offsets \[0,-8\]/],
    [{ w: f32Tensor([8, 0]) }, /has data_offsets \[8, 0\] with begin > end/],
    [
      { w: f32Tensor([8, 24]) },
      /tensor "w" has data_offsets \[8, 24\] past the end of the data section \(16 bytes\)/,
    ],
    [{ w: f32Tensor([0, 12]) }, /tensor "w" spans 12 bytes but shape \[2\] of F32 needs 8/],
    [
      { a: f32Tensor([0, 8]), b: f32Tensor([4, 12]) },
      /tensors "a" \[0, 8\] and "b" \[4, 12\] overlap/,
    ],
  ];
  for (const [header, re] of cases) {
    const path = await writeRaw(header, data);
    await failsWith(openSafetensors(path), path, re);
  }
});

test("a truncated file is reported as truncated", async () => {
  const path = fresh();
  await writeSafetensors(path, [
    { name: "w", dtype: "F32", shape: [64], data: new Float32Array(64) },
  ]);
  await truncate(path, statSync(path).size - 10);
  await failsWith(
    openSafetensors(path),
    path,
    /past the end of the data section .*the file is truncated or its header is corrupt; re-download or re-export it/,
  );
});

// ---------------------------------------------------------------------------------------
// Float conversions

test("f16 conversion edge cases: subnormals, ties to even, overflow, inf, nan", () => {
  const cases: [number, number][] = [
    [0, 0x0000],
    [-0, 0x8000],
    [1, 0x3c00],
    [65504, 0x7bff], // largest finite
    [65519, 0x7bff], // below the halfway point to 65536
    [65520, 0x7c00], // halfway: ties to even, and even is Inf
    [1e6, 0x7c00],
    [-1e6, 0xfc00],
    [Number.POSITIVE_INFINITY, 0x7c00],
    [Number.NEGATIVE_INFINITY, 0xfc00],
    [2 ** -14, 0x0400], // smallest normal
    [1023 * 2 ** -24, 0x03ff], // largest subnormal
    [2 ** -24, 0x0001], // smallest subnormal
    [2 ** -25, 0x0000], // tie between 0 and 2^-24: even is 0
    [1.5 * 2 ** -25, 0x0001],
    [3 * 2 ** -25, 0x0002], // tie between 1 and 2 units: even is 2
    [1023.5 * 2 ** -24, 0x0400], // subnormal rounding up into the normals
    [1e-10, 0x0000],
    [1 + 2 ** -11, 0x3c00], // tie: even mantissa 0
    [1 + 3 * 2 ** -11, 0x3c02], // tie: odd mantissa 1 goes up
    [1 + 2 ** -11 + 2 ** -20, 0x3c01], // just above the tie
  ];
  for (const [v, h] of cases) assert.equal(f32ToF16(v), h, `f32ToF16(${v})`);
  const nan = f32ToF16(Number.NaN);
  assert.equal(nan & 0x7c00, 0x7c00);
  assert.notEqual(nan & 0x3ff, 0);
  assert.ok(Number.isNaN(f16ToF32(0x7e00)));
  assert.equal(f16ToF32(0x0001), 2 ** -24);
  assert.ok(Object.is(f16ToF32(0x8000), -0));
  for (let h = 0; h < 0x10000; h++) {
    if ((h & 0x7c00) === 0x7c00 && h & 0x3ff) continue; // NaNs
    assert.equal(f32ToF16(f16ToF32(h)), h);
  }
});

test("bf16 conversion edge cases: subnormals, ties to even, overflow, inf, nan", () => {
  const cases: [number, number][] = [
    [1, 0x3f80],
    [-0, 0x8000],
    [1 + 2 ** -8, 0x3f80], // tie: even
    [1 + 3 * 2 ** -8, 0x3f82], // tie: odd goes up
    [3.4028234663852886e38, 0x7f80], // f32 max rounds to Inf
    [Number.NEGATIVE_INFINITY, 0xff80],
    [2 ** -133, 0x0001], // smallest bf16 subnormal
    [2 ** -149, 0x0000], // smallest f32 subnormal rounds to zero
  ];
  for (const [v, b] of cases) assert.equal(f32ToBf16(v), b, `f32ToBf16(${v})`);
  assert.ok(Number.isNaN(bf16ToF32(f32ToBf16(Number.NaN))));
  for (let b = 0; b < 0x10000; b++) {
    if ((b & 0x7f80) === 0x7f80 && b & 0x7f) continue; // NaNs
    assert.equal(f32ToBf16(bf16ToF32(b)), b);
  }
});

test("bulk encode/decode agree with the scalar conversions; NaN never becomes Inf", () => {
  const rng = new Rng(9);
  const data = Float32Array.from(
    { length: 1000 },
    () => rng.normal() * 10 ** rng.int(12) * 10 ** -6,
  );
  const u32 = new Uint32Array(data.buffer);
  u32[0] = 0x7f800001; // signalling NaN whose payload would be cut off by truncation
  u32[1] = 0xff800001;
  const h = new Uint16Array(encodeFromF32(data, "F16").buffer);
  const b = new Uint16Array(encodeFromF32(data, "BF16").buffer);
  for (let i = 2; i < data.length; i++) {
    assert.equal(h[i], f32ToF16(data[i]));
    assert.equal(b[i], f32ToBf16(data[i]));
  }
  for (const i of [0, 1]) {
    assert.ok(Number.isNaN(f16ToF32(h[i])));
    assert.ok(Number.isNaN(bf16ToF32(b[i])));
  }
  const back = decodeToF32(new Uint8Array(h.buffer), "F16", data.length);
  for (let i = 2; i < data.length; i++) assert.equal(back[i], f16ToF32(h[i]));
});

test("decodeToF32 handles Q8_0 blocks and checks its input size", () => {
  const block = new Uint8Array(34);
  block[0] = 0x00;
  block[1] = 0x38; // scale 0.5 as f16
  const q = new Int8Array(block.buffer, 2, 32);
  for (let j = 0; j < 32; j++) q[j] = j - 16;
  const out = decodeToF32(block, "Q8_0", 32);
  assert.deepEqual(
    [...out],
    Array.from({ length: 32 }, (_, j) => (j - 16) / 2),
  );
  assert.throws(() => decodeToF32(block, "Q8_0", 16), /16 elements do not fit Q8_0/);
  assert.throws(() => decodeToF32(block, "F32", 10), /10 F32 elements need 40 bytes, got 34/);
  assert.throws(() => decodeToF32(block, "Q4_K", 256), /cannot convert Q4_K/);
});
