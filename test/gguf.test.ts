import assert from "node:assert/strict";
import { mkdtemp, open, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { bf16ToF32, f16ToF32 } from "../src/tensors/dtype.ts";
import { type GgufValue, gguf, openGguf, plainMetadata, writeGguf } from "../src/tensors/gguf.ts";
import type { TensorToWrite } from "../src/tensors/types.ts";
import { Rng } from "../src/util/rng.ts";

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "cycleqd-gguf-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Little-endian byte builder for hand-made (and deliberately broken) GGUF files. */
class Raw {
  private parts: Buffer[] = [];
  u8(v: number) {
    this.parts.push(Buffer.from([v]));
    return this;
  }
  u32(v: number) {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    this.parts.push(b);
    return this;
  }
  u64(v: number | bigint) {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    this.parts.push(b);
    return this;
  }
  str(s: string) {
    this.u64(Buffer.byteLength(s));
    this.parts.push(Buffer.from(s, "utf8"));
    return this;
  }
  bytes(b: Uint8Array) {
    this.parts.push(Buffer.from(b));
    return this;
  }
  header(nTensors: number | bigint, nKv: number | bigint, version = 3) {
    return this.u32(0x46554747).u32(version).u64(nTensors).u64(nKv);
  }
  kvU32(key: string, v: number) {
    return this.str(key).u32(4).u32(v);
  }
  tensor(name: string, ne: (number | bigint)[], type: number, offset: number | bigint) {
    this.str(name).u32(ne.length);
    for (const d of ne) this.u64(d);
    return this.u32(type).u64(offset);
  }
  /** Pads to `alignment` (the start of the data section). */
  align(alignment = 32) {
    const len = this.length;
    return this.bytes(new Uint8Array(Math.ceil(len / alignment) * alignment - len));
  }
  get length() {
    return this.parts.reduce((n, p) => n + p.length, 0);
  }
  build(): Buffer {
    return Buffer.concat(this.parts);
  }
}

let fileNo = 0;
async function rawFile(bytes: Uint8Array, name = `raw${fileNo++}.gguf`): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, bytes);
  return path;
}

/** Asserts that opening `bytes` as GGUF fails with a message naming the file and `problem`. */
async function rejects(bytes: Uint8Array, problem: RegExp): Promise<void> {
  const path = await rawFile(bytes);
  await assert.rejects(openGguf(path), (e: Error) => {
    assert.ok(e.message.startsWith(`${path}: `), `message should name the file: ${e.message}`);
    assert.match(e.message, problem);
    return true;
  });
}

function f32Data(t: TensorToWrite): Float32Array {
  return t.data as Float32Array;
}

describe("metadata", () => {
  test("every value type round-trips, including nested arrays and 64-bit extremes", async () => {
    const meta = new Map<string, GgufValue>([
      ["a.u8", gguf.u8(255)],
      ["a.i8", gguf.i8(-128)],
      ["a.u16", gguf.u16(65535)],
      ["a.i16", gguf.i16(-32768)],
      ["a.u32", gguf.u32(4294967295)],
      ["a.i32", gguf.i32(-2147483648)],
      ["a.f32", gguf.f32(0.1)],
      ["a.f64", gguf.f64(0.1)],
      ["a.bool.t", gguf.bool(true)],
      ["a.bool.f", gguf.bool(false)],
      ["a.str", gguf.str("héllo ▁ 世界")],
      ["a.empty", gguf.str("")],
      ["a.u64", gguf.u64(0xffffffffffffffffn)],
      ["a.i64", gguf.i64(-0x8000000000000000n)],
      ["a.i64.small", gguf.i64(-5)],
      ["a.arr.str", gguf.arr("string", ["x", "", "▁y"])],
      ["a.arr.f32", gguf.arr("float32", [1.5, -2, Math.fround(0.3)])],
      ["a.arr.i32", gguf.arr("int32", [-1, 0, 7])],
      ["a.arr.u64", gguf.arr("uint64", [1n, 2n ** 63n])],
      ["a.arr.bool", gguf.arr("bool", [true, false])],
      ["a.arr.empty", gguf.arr("uint8", [])],
      [
        "a.arr.nested",
        gguf.arr("array", [
          gguf.arr("int8", [1, -2]),
          gguf.arr("string", ["deep"]),
          gguf.arr("array", [gguf.arr("float64", [Math.PI])]),
        ]),
      ],
    ]);
    const path = join(dir, "meta.gguf");
    await writeGguf(path, meta, []);
    const r = await openGguf(path);
    try {
      assert.equal(r.version, 3);
      assert.equal(r.alignment, 32);
      assert.equal(r.tensors.length, 0);
      assert.deepEqual([...r.metadata.keys()], [...meta.keys()]);
      assert.deepEqual(r.metadata, meta);
      assert.equal(r.metadata.get("a.f32")?.value, Math.fround(0.1));
    } finally {
      await r.close();
    }
  });

  test("metadata larger than the read and write buffers round-trips", async () => {
    const tokens = Array.from({ length: 20000 }, (_, i) => `tok${i}▁`);
    const meta = {
      "tokenizer.ggml.tokens": gguf.arr("string", tokens),
      "tokenizer.ggml.scores": gguf.arr(
        "float32",
        tokens.map((_, i) => -i),
      ),
      long: gguf.str("x".repeat(200000)),
      after: gguf.u64(7),
    };
    const path = join(dir, "bigmeta.gguf");
    await writeGguf(path, meta, [
      { name: "t", dtype: "F32", shape: [1], data: new Float32Array([3]) },
    ]);
    const r = await openGguf(path);
    try {
      assert.deepEqual(r.metadata, new Map(Object.entries(meta)));
      assert.deepEqual(await r.read("t"), new Float32Array([3]));
    } finally {
      await r.close();
    }
  });

  test("plainMetadata turns bigints into numbers when exact and strings otherwise", () => {
    const plain = plainMetadata({
      small: gguf.u64(42),
      big: gguf.u64(2n ** 64n - 1n),
      list: gguf.arr("array", [gguf.arr("int64", [-3n, 2n ** 62n])]),
      s: gguf.str("x"),
    });
    assert.deepEqual(plain, {
      small: 42,
      big: "18446744073709551615",
      list: [[-3, "4611686018427387904"]],
      s: "x",
    });
    assert.doesNotThrow(() => JSON.stringify(plain));
  });

  test("constructors reject values their type cannot hold", () => {
    assert.throws(() => gguf.u8(256), /gguf\.u8: 256/);
    assert.throws(() => gguf.i32(1.5), /not an integer/);
    assert.throws(() => gguf.u64(-1), /out of range/);
    assert.throws(() => gguf.u64(2 ** 60), /pass a bigint/);
    assert.throws(() => gguf.arr("uint16", [70000]), /\[0\].*70000/);
    assert.throws(() => gguf.arr("array", [1]), /gguf\.arr/);
  });

  test("the writer rejects malformed values and leaves no file behind", async () => {
    const path = join(dir, "badmeta.gguf");
    const neg = { type: "uint32", value: -1 } as GgufValue;
    await assert.rejects(writeGguf(path, { k: neg }, []), /badmeta\.gguf: metadata "k": uint32/);
    const num = { type: "uint64", value: 3 } as unknown as GgufValue;
    await assert.rejects(writeGguf(path, { k: num }, []), /not a bigint/);
    const odd = { type: "uint128", value: 3 } as unknown as GgufValue;
    await assert.rejects(writeGguf(path, { k: odd }, []), /not a GGUF value/);
    const inner = { type: "array", itemType: "array", value: [[1]] } as unknown as GgufValue;
    await assert.rejects(writeGguf(path, { k: inner }, []), /must be gguf\.arr/);
    await assert.rejects(writeGguf(path, { "": gguf.u8(1) }, []), /non-empty/);
    const left = (await readdir(dir)).filter((f) => f.startsWith("badmeta"));
    assert.deepEqual(left, [], "no file or .tmp is left behind");
  });
});

describe("tensors", () => {
  test("F32 round-trips bit-exactly, with shape = reversed ne", async () => {
    const rng = new Rng(1);
    const special = [0, -0, Number.POSITIVE_INFINITY, -1e-45, 3.4e38, Number.NaN, 1e-40];
    const a = Float32Array.from({ length: 15 }, (_, i) => special[i] ?? rng.normal());
    const path = join(dir, "f32.gguf");
    await writeGguf(path, {}, [{ name: "w", dtype: "F32", shape: [3, 5], data: a }]);
    const r = await openGguf(path);
    try {
      const info = r.info("w");
      assert.deepEqual(info.shape, [3, 5]);
      assert.deepEqual(r.ne("w"), [5, 3]);
      assert.equal(info.dtype, "F32");
      assert.equal(info.byteLength, 60);
      assert.equal(info.offset % 32, 0);
      const back = await r.read("w");
      assert.deepEqual(new Uint32Array(back.buffer), new Uint32Array(a.buffer));
    } finally {
      await r.close();
    }
  });

  test("F16 and BF16 round-trip every representable value they are given", async () => {
    const rng = new Rng(2);
    const halfs = (toF32: (h: number) => number, isNaNBits: (h: number) => boolean) => {
      const a = new Float32Array(1000);
      for (let i = 0; i < a.length; i++) {
        let h = rng.nextU32() & 0xffff;
        while (isNaNBits(h)) h = rng.nextU32() & 0xffff;
        a[i] = toF32(h);
      }
      return a;
    };
    const f16 = halfs(f16ToF32, (h) => (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0);
    const bf16 = halfs(bf16ToF32, (h) => (h & 0x7f80) === 0x7f80 && (h & 0x7f) !== 0);
    const path = join(dir, "half.gguf");
    await writeGguf(path, { "general.architecture": gguf.str("x") }, [
      { name: "h", dtype: "F16", shape: [10, 100], data: f16 },
      { name: "b", dtype: "BF16", shape: [1000], data: async () => bf16 },
    ]);
    const r = await openGguf(path);
    try {
      assert.equal(r.info("h").byteLength, 2000);
      assert.deepEqual(new Uint32Array((await r.read("h")).buffer), new Uint32Array(f16.buffer));
      assert.deepEqual(new Uint32Array((await r.read("b")).buffer), new Uint32Array(bf16.buffer));
      assert.deepEqual(Buffer.from(await r.readBytes("b")).length, 2000);
    } finally {
      await r.close();
    }
  });

  test("a custom alignment is written to general.alignment and honoured", async () => {
    const path = join(dir, "align.gguf");
    const t = (name: string, n: number): TensorToWrite => ({
      name,
      dtype: "F32",
      shape: [n],
      data: Float32Array.from({ length: n }, (_, i) => i + n),
    });
    const tensors = [t("a", 3), t("b", 17), t("c", 1)];
    await writeGguf(path, { "general.name": gguf.str("x") }, tensors, { alignment: 256 });
    const r = await openGguf(path);
    try {
      assert.equal(r.alignment, 256);
      assert.deepEqual(r.metadata.get("general.alignment"), gguf.u32(256));
      assert.equal(r.dataOffset % 256, 0);
      for (const info of r.tensors) assert.equal(info.offset % 256, 0);
      for (const src of tensors) assert.deepEqual(await r.read(src.name), f32Data(src));
    } finally {
      await r.close();
    }
    // The default is not written, even when the caller passes it in the metadata.
    await writeGguf(path, { "general.alignment": gguf.u32(32) }, tensors);
    const d = await openGguf(path);
    assert.equal(d.metadata.has("general.alignment"), false);
    await d.close();
    await assert.rejects(
      writeGguf(path, { "general.alignment": gguf.u32(64) }, tensors, { alignment: 128 }),
      /align\.gguf: alignment 128 conflicts with general\.alignment 64/,
    );
    await assert.rejects(writeGguf(path, {}, tensors, { alignment: 48 }), /power of two/);
  });

  test("Q8_0 reads dequantised from a hand-built file", async () => {
    const data = new Uint8Array(68);
    const view = new DataView(data.buffer);
    view.setUint16(0, 0x3800, true); // d = 0.5
    view.setUint16(34, 0xc000, true); // d = -2
    const expected = new Float32Array(64);
    for (let j = 0; j < 32; j++) {
      view.setInt8(2 + j, j - 16);
      view.setInt8(36 + j, j === 0 ? -128 : 127 - j);
      expected[j] = 0.5 * (j - 16);
      expected[32 + j] = -2 * (j === 0 ? -128 : 127 - j);
    }
    const raw = new Raw().header(1, 0).tensor("q", [32, 2], 8, 0).align().bytes(data);
    const path = await rawFile(raw.build());
    const r = await openGguf(path);
    try {
      const info = r.info("q");
      assert.equal(info.dtype, "Q8_0");
      assert.deepEqual(info.shape, [2, 32]);
      assert.equal(info.byteLength, 68);
      assert.deepEqual(await r.read("q"), expected);
    } finally {
      await r.close();
    }
  });

  test("other ggml types are listed by name but not read", async () => {
    const raw = new Raw()
      .header(2, 0)
      .tensor("k", [256], 12, 0)
      .tensor("i", [4], 26, 160)
      .align()
      .bytes(new Uint8Array(176));
    const path = await rawFile(raw.build());
    const r = await openGguf(path);
    try {
      assert.equal(r.info("k").dtype, "Q4_K");
      assert.equal(r.info("k").byteLength, 144);
      assert.equal(r.info("i").dtype, "I32");
      await assert.rejects(
        r.read("k"),
        /: tensor "k" has unsupported type Q4_K \(quantised\); cycleqd reads F32\/F16\/BF16\/Q8_0/,
      );
      await assert.rejects(r.read("i"), /unsupported type I32 \(integer\)/);
      assert.equal((await r.readBytes("k")).length, 144);
      await assert.rejects(r.read("nope"), /no tensor named "nope"/);
    } finally {
      await r.close();
    }
    await assert.rejects(r.read("i"), /reader is closed/);
  });

  test("version 2 files are read", async () => {
    const raw = new Raw().header(1, 1, 2).kvU32("x", 7).tensor("t", [2], 0, 0).align();
    raw.bytes(new Uint8Array(new Float32Array([1, 2]).buffer));
    const r = await openGguf(await rawFile(raw.build()));
    assert.equal(r.version, 2);
    assert.deepEqual(await r.read("t"), new Float32Array([1, 2]));
    await r.close();
  });

  test("opening reads only the header; tensor data is read on demand", async () => {
    const n = 1 << 20; // 4 MiB per tensor
    const path = join(dir, "lazy.gguf");
    let calls = 0;
    const big = (v: number): TensorToWrite => ({
      name: `t${v}`,
      dtype: "F32",
      shape: [n],
      data: async () => {
        calls++;
        return new Float32Array(n).fill(v);
      },
    });
    await writeGguf(path, {}, [big(1), big(2)]);
    assert.equal(calls, 2);

    const probe = await open(path, "r");
    const proto = Object.getPrototypeOf(probe) as { read: (...a: unknown[]) => Promise<unknown> };
    await probe.close();
    const original = proto.read;
    let bytesAsked = 0;
    proto.read = function (this: unknown, ...args: unknown[]) {
      if (typeof args[2] === "number") bytesAsked += args[2];
      return original.apply(this, args);
    };
    let r: Awaited<ReturnType<typeof openGguf>>;
    try {
      r = await openGguf(path);
    } finally {
      proto.read = original;
    }
    try {
      assert.ok(bytesAsked < 1 << 17, `open read ${bytesAsked} bytes of an 8 MiB file`);
      // Overwrite t2 on disk after opening: a lazy reader sees the new bytes.
      const fh = await open(path, "r+");
      await fh.write(
        new Uint8Array(new Float32Array(n).fill(5).buffer),
        0,
        n * 4,
        r.info("t2").offset,
      );
      await fh.close();
      assert.equal((await r.read("t2"))[n - 1], 5);
      assert.equal((await r.read("t1"))[0], 1);
    } finally {
      await r.close();
    }
  });

  test("the writer checks tensors and leaves nothing behind on failure", async () => {
    const path = join(dir, "badt.gguf");
    const ok = (name = "w"): TensorToWrite => ({
      name,
      dtype: "F32",
      shape: [2],
      data: new Float32Array(2),
    });
    const cases: [TensorToWrite[], RegExp][] = [
      [[ok(), ok()], /duplicate tensor name "w"/],
      [[ok("x".repeat(64))], /name is 64 bytes; llama\.cpp allows 63/],
      [[{ ...ok(), shape: [2, 0] }], /must hold positive integers/],
      [[{ ...ok(), shape: [1, 1, 1, 1, 2] }], /1 to 4 dimensions/],
      [[{ ...ok(), data: new Float32Array(3) }], /shape needs 2 values but data has 3/],
      [[{ ...ok(), dtype: "Q8_0" as never }], /cannot write dtype Q8_0/],
      [[ok("a"), { ...ok(), data: async () => new Float32Array(5) }], /data has 5/],
      [
        [
          {
            ...ok(),
            data: async () => {
              throw new Error("source failed");
            },
          },
        ],
        /source failed/,
      ],
    ];
    for (const [tensors, msg] of cases) {
      await assert.rejects(writeGguf(path, {}, tensors), msg);
    }
    assert.deepEqual(
      (await readdir(dir)).filter((f) => f.startsWith("badt")),
      [],
    );
  });
});

describe("hostile files fail with the file name and the problem", () => {
  const valid = () => new Raw().header(1, 1).kvU32("k", 1).tensor("t", [4], 0, 0).align();
  const withData = (r: Raw) => r.bytes(new Uint8Array(16)).build();

  test("the baseline hand-built file opens", async () => {
    const r = await openGguf(await rawFile(withData(valid())));
    assert.deepEqual(await r.read("t"), new Float32Array(4));
    await r.close();
  });

  test("missing file, bad magic, unsupported versions", async () => {
    await assert.rejects(openGguf(join(dir, "absent.gguf")), /absent\.gguf: cannot open/);
    await assert.rejects(openGguf(dir), /: not a regular file/);
    await rejects(Buffer.from("GG"), /not a GGUF file: it is only 2 bytes long/);
    const file = withData(valid());
    await rejects(Buffer.concat([Buffer.from("GGUX"), file.subarray(4)]), /not a GGUF file/);
    await rejects(Buffer.from("PK\u0003\u0004 this is a zip"), /not a GGUF file/);
    for (const [v, msg] of [
      [4, /unsupported GGUF version 4/],
      [1, /version 1 is not supported/],
      [0x03000000, /big-endian/],
    ] as const) {
      const b = Buffer.from(file);
      b.writeUInt32LE(v, 4);
      await rejects(b, msg);
    }
  });

  test("a file truncated at any point fails cleanly", async () => {
    const path = join(dir, "trunc-src.gguf");
    await writeGguf(
      path,
      {
        "general.architecture": gguf.str("llama"),
        list: gguf.arr("array", [gguf.arr("string", ["a", "bc"]), gguf.arr("uint16", [1, 2])]),
        n: gguf.u64(5),
      },
      [
        { name: "a", dtype: "F16", shape: [3], data: new Float32Array(3) },
        { name: "b", dtype: "F32", shape: [2, 2], data: new Float32Array(4) },
      ],
    );
    const full = await readFile(path);
    const cut = join(dir, "trunc.gguf");
    for (let len = 0; len < full.length; len++) {
      await writeFile(cut, full.subarray(0, len));
      const opened = await openGguf(cut).then(
        async (r) => {
          await r.close();
          return true;
        },
        (e: Error) => {
          assert.ok(e.message.startsWith(`${cut}: `), e.message);
          assert.match(e.message, /truncated|past the end|not a GGUF file/, `at length ${len}`);
          return false;
        },
      );
      // Only the final tensor's trailing alignment padding may be missing.
      assert.equal(opened, len >= full.length - 16, `length ${len} of ${full.length}`);
    }
  });

  test("absurd lengths are checked against the bytes left before allocating", async () => {
    const h = () => new Raw().header(0, 1);
    await rejects(
      h()
        .u64(2n ** 60n)
        .bytes(new Uint8Array(64))
        .build(),
      /metadata key #0: string length 1152921504606846976 runs past the end/,
    );
    await rejects(
      h().str("k").u32(8).u64(100).bytes(new Uint8Array(10)).build(),
      /metadata "k": string length 100 runs past the end/,
    );
    await rejects(
      h()
        .str("k")
        .u32(9)
        .u32(0)
        .u64(2n ** 60n)
        .build(),
      /metadata "k": array of 1152921504606846976 uint8 items runs past the end/,
    );
    await rejects(
      h()
        .str("k")
        .u32(9)
        .u32(9)
        .u64(1)
        .u32(8)
        .u64(2n ** 62n)
        .build(),
      /metadata "k"\[0\]: array of 4611686018427387904 string items runs past the end/,
    );
    await rejects(
      h()
        .str("k")
        .u32(9)
        .u32(8)
        .u64(2)
        .str("ok")
        .u64(2n ** 40n)
        .build(),
      /metadata "k"\[1\]: string length 1099511627776 runs past the end/,
    );
    const deep = h().str("k");
    deep.u32(9);
    for (let i = 0; i < 40; i++) deep.u32(9).u64(1);
    await rejects(deep.u32(0).u64(0).build(), /nested more than 16 deep/);
  });

  test("absurd metadata and tensor counts", async () => {
    await rejects(
      new Raw().header(0, 2n ** 62n).build(),
      /metadata count 4611686018427387904 is impossible/,
    );
    await rejects(
      new Raw().header(2n ** 40n, 0).build(),
      /tensor count 1099511627776 is impossible/,
    );
  });

  test("duplicate keys, unknown value types, bad bools, bad alignment", async () => {
    const h = (n: number) => new Raw().header(0, n);
    await rejects(h(2).kvU32("k", 1).kvU32("k", 2).build(), /duplicate metadata key "k"/);
    await rejects(
      h(1).str("k").u32(13).u32(0).build(),
      /metadata "k" has unknown value type id 13/,
    );
    await rejects(h(1).str("k").u32(9).u32(77).u64(0).build(), /unknown value type id 77/);
    await rejects(h(1).str("k").u32(7).u8(2).build(), /metadata "k": bool byte is 2/);
    await rejects(
      h(1).kvU32("general.alignment", 24).build(),
      /general\.alignment must be a power of two, got 24/,
    );
    await rejects(
      h(1).kvU32("general.alignment", 0).build(),
      /general\.alignment must be a power of two/,
    );
  });

  test("bad tensor infos", async () => {
    const t = (ne: (number | bigint)[], type = 0, offset: number | bigint = 0, name = "t") =>
      new Raw()
        .header(1, 0)
        .tensor(name, ne, type, offset)
        .align()
        .bytes(new Uint8Array(64))
        .build();
    await rejects(t([1, 1, 1, 1, 1]), /tensor "t" has 5 dimensions \(expected 1 to 4\)/);
    await rejects(t([]), /tensor "t" has 0 dimensions/);
    await rejects(
      t([2n ** 40n, 2n ** 40n]),
      /tensor "t" dims \[1099511627776, 1099511627776\] overflow/,
    );
    await rejects(t([2n ** 63n]), /tensor "t" has an absurd dimension/);
    await rejects(t([1n << 40n]), /needs 4398046511104 bytes, more than the whole file/);
    await rejects(t([4], 99), /tensor "t" has unknown ggml type id 99/);
    await rejects(t([4], 4), /unknown ggml type id 4/);
    await rejects(t([16], 8), /ne\[0\] = 16, not a multiple of the Q8_0 block size 32/);
    await rejects(t([4], 0, 4), /tensor "t" data offset 4 is not a multiple of the alignment 32/);
    await rejects(t([4], 0, 64), /tensor "t" data ends at byte \d+, past the end of the file/);
    await rejects(t([4], 0, 2n ** 63n), /past the end of the file/);
    await rejects(
      new Raw()
        .header(1, 0)
        .u64(2n ** 50n)
        .bytes(new Uint8Array(64))
        .build(),
      /the name of tensor #0: string length 1125899906842624 runs past the end/,
    );
  });

  test("overlapping tensors and duplicate names", async () => {
    const two = (b: [string, number, number]) =>
      new Raw()
        .header(2, 0)
        .tensor("a", [16], 0, 0)
        .tensor(b[0], [b[1]], 0, b[2])
        .align()
        .bytes(new Uint8Array(128))
        .build();
    await rejects(two(["b", 8, 32]), /tensors "a" and "b" overlap/);
    await rejects(two(["b", 16, 0]), /overlap/);
    await rejects(two(["a", 4, 64]), /duplicate tensor name "a"/);
    const ok = await openGguf(await rawFile(two(["b", 8, 64])));
    await ok.close();
  });
});
