/**
 * GEMM through onnxruntime-node (MLAS on CPU). Each model is a single ONNX node with
 * symbolic dimensions, encoded here by hand, so no model file or ONNX tooling is needed:
 * `Gemm` for `matmul`; for `matmulBatched`, `MatMul` on 3-D inputs, or onnxruntime's
 * `FusedMatMul` (com.microsoft) when an operand is transposed. One session per
 * (batched, transA, transB); MLAS reads transposed operands in place.
 *
 * Why FusedMatMul: the standard route, Transpose nodes in front of MatMul, is only as fast
 * because onnxruntime's optimizer rewrites it into FusedMatMul; run as written, the
 * Transpose copies cost up to 1.8× on the attention shapes (batch 64, 128×32×128,
 * 128×128×32). Results are bit-identical to `matmul` on each block.
 */
import { availableParallelism } from "node:os";
import type * as Ort from "onnxruntime-node";
import {
  checkMatmulArgs,
  checkMatmulBatchedArgs,
  checkMatmulF64Args,
  type Gemm,
  type GemmOptions,
} from "./gemm.ts";

export interface OrtGemmOptions {
  /** Intra-op threads; default: the number of cores. */
  threads?: number;
}

type OrtModule = typeof Ort;

/** Loads onnxruntime-node and builds its GEMM. Throws if the native binding cannot load. */
export async function createOrtGemm(opts: OrtGemmOptions = {}): Promise<Gemm> {
  const threads = opts.threads ?? availableParallelism();
  if (!(Number.isInteger(threads) && threads > 0)) {
    throw new Error(`onnxruntime GEMM: threads must be a positive integer, got ${threads}`);
  }
  const mod = (await import("onnxruntime-node")) as OrtModule & { default?: OrtModule };
  const ort = mod.InferenceSession ? mod : (mod.default as OrtModule);
  const gemm = new OrtGemm(ort, threads);
  // Open the plain session now, so a broken install fails here and not mid-run.
  await gemm.session(false, false, false);
  return gemm;
}

class OrtGemm implements Gemm {
  readonly name = "onnxruntime";
  private readonly sessions: (Promise<Ort.InferenceSession> | undefined)[] = [];
  private disposed = false;

  constructor(
    private readonly ort: OrtModule,
    private readonly threads: number,
  ) {}

  session(
    batched: boolean,
    transA: boolean,
    transB: boolean,
    elem: ElemType = "float32",
  ): Promise<Ort.InferenceSession> {
    if (this.disposed) throw new Error("onnxruntime GEMM: used after dispose()");
    const f64 = elem === "float64";
    const key = (transA ? 1 : 0) + (transB ? 2 : 0) + (batched ? 4 : 0) + (f64 ? 8 : 0);
    let s = this.sessions[key];
    if (!s) {
      const model = batched ? batchedMatmulModel(transA, transB) : gemmModel(transA, transB, elem);
      s = this.ort.InferenceSession.create(model, {
        intraOpNumThreads: this.threads,
        interOpNumThreads: 1,
        executionMode: "sequential",
        graphOptimizationLevel: "all",
        // Shapes change from call to call: a memory pattern planned for one shape is waste.
        enableMemPattern: false,
        // Spinning threads would steal the cores that the caller's own work needs.
        extra: { session: { intra_op: { allow_spinning: "0" } } },
      });
      this.sessions[key] = s;
    }
    return s;
  }

  async matmul(
    a: Float32Array,
    b: Float32Array,
    m: number,
    k: number,
    n: number,
    opts: GemmOptions = {},
  ): Promise<Float32Array> {
    checkMatmulArgs(a, b, m, k, n, opts);
    return (await this.product("float32", a, b, m, k, n, opts)) as Float32Array;
  }

  /** One Gemm node's product, in the operands' element type (the arguments are checked). */
  private async product(
    elem: ElemType,
    a: Float32Array | Float64Array,
    b: Float32Array | Float64Array,
    m: number,
    k: number,
    n: number,
    opts: GemmOptions,
  ): Promise<Float32Array | Float64Array> {
    const transA = opts.transA === true;
    const transB = opts.transB === true;
    const session = await this.session(false, transA, transB, elem);
    const Tensor = this.ort.Tensor;
    const out = await session.run({
      A: new Tensor(elem, a, transA ? [k, m] : [m, k]),
      B: new Tensor(elem, b, transB ? [n, k] : [k, n]),
    });
    return out.Y.data as Float32Array | Float64Array;
  }

  async matmulBatched(
    a: Float32Array,
    b: Float32Array,
    batch: number,
    m: number,
    k: number,
    n: number,
    opts: GemmOptions = {},
  ): Promise<Float32Array> {
    checkMatmulBatchedArgs(a, b, batch, m, k, n, opts);
    const transA = opts.transA === true;
    const transB = opts.transB === true;
    const session = await this.session(true, transA, transB);
    const Tensor = this.ort.Tensor;
    const out = await session.run({
      A: new Tensor("float32", a, transA ? [batch, k, m] : [batch, m, k]),
      B: new Tensor("float32", b, transB ? [batch, n, k] : [batch, k, n]),
    });
    return out.Y.data as Float32Array;
  }

  async matmulF64(
    a: Float64Array,
    b: Float64Array,
    m: number,
    k: number,
    n: number,
    opts: GemmOptions = {},
  ): Promise<Float64Array> {
    checkMatmulF64Args(a, b, m, k, n, opts);
    return (await this.product("float64", a, b, m, k, n, opts)) as Float64Array;
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    const pending = this.sessions.splice(0);
    for (const s of pending) if (s) await (await s).release();
  }
}

// ---- A minimal protobuf writer for the one ModelProto we need (field numbers: onnx.proto).

type Bytes = number[];

function varint(v: number): Bytes {
  const out: Bytes = [];
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return out;
}

function intField(field: number, v: number): Bytes {
  return [...varint(field << 3), ...varint(v)];
}

function bytesField(field: number, body: Bytes): Bytes {
  return [...varint((field << 3) | 2), ...varint(body.length), ...body];
}

function stringField(field: number, s: string): Bytes {
  return bytesField(field, [...new TextEncoder().encode(s)]);
}

/** TensorProto.DataType: FLOAT (1) or DOUBLE (11). */
const ELEM_TYPE = { float32: 1, float64: 11 } as const;
type ElemType = keyof typeof ELEM_TYPE;

/** ValueInfoProto for a tensor whose dimensions are all symbolic. */
function tensorInfo(name: string, dims: readonly string[], elem: ElemType): Bytes {
  const shape = dims.flatMap((p) => bytesField(1, stringField(2, p))); // Dimension.dim_param
  const tensorType = [...intField(1, ELEM_TYPE[elem]), ...bytesField(2, shape)];
  return [...stringField(1, name), ...bytesField(2, bytesField(1, tensorType))];
}

/** AttributeProto with an int value (type INT = 2). */
function intAttribute(name: string, v: number): Bytes {
  return [...stringField(1, name), ...intField(3, v), ...intField(20, 2)];
}

/** AttributeProto with a list of non-negative ints (type INTS = 7). */
function intsAttribute(name: string, vs: readonly number[]): Bytes {
  return [...stringField(1, name), ...vs.flatMap((v) => intField(8, v)), ...intField(20, 7)];
}

export interface OnnxNode {
  op: string;
  /** Operator domain; the default (ai.onnx) when absent. */
  domain?: string;
  inputs: readonly string[];
  outputs: readonly string[];
  ints?: Readonly<Record<string, number>>;
  intLists?: Readonly<Record<string, readonly number[]>>;
}

export interface OnnxGraph {
  nodes: readonly OnnxNode[];
  /** Graph inputs and outputs: name and symbolic dimensions, all of one element type. */
  inputs: readonly (readonly [string, readonly string[]])[];
  outputs: readonly (readonly [string, readonly string[]])[];
  /** Opset imports as [domain, version]; "" is the default domain. */
  opsets: readonly (readonly [string, number])[];
  /** Element type of every input and output (default float32). */
  elem?: ElemType;
}

/** ModelProto bytes for a small graph (ir_version 8). */
function onnxModel(g: OnnxGraph): Uint8Array {
  const elem = g.elem ?? "float32";
  const nodes = g.nodes.map((nd) => [
    ...nd.inputs.flatMap((x) => stringField(1, x)),
    ...nd.outputs.flatMap((x) => stringField(2, x)),
    ...stringField(4, nd.op),
    ...Object.entries(nd.ints ?? {}).flatMap(([k, v]) => bytesField(5, intAttribute(k, v))),
    ...Object.entries(nd.intLists ?? {}).flatMap(([k, v]) => bytesField(5, intsAttribute(k, v))),
    ...(nd.domain ? stringField(7, nd.domain) : []),
  ]);
  const graph = [
    ...nodes.flatMap((nd) => bytesField(1, nd)),
    ...stringField(2, "cycleqd_gemm"),
    ...g.inputs.flatMap(([name, dims]) => bytesField(11, tensorInfo(name, dims, elem))),
    ...g.outputs.flatMap(([name, dims]) => bytesField(12, tensorInfo(name, dims, elem))),
  ];
  const model = [
    ...intField(1, 8), // ir_version
    ...stringField(2, "cycleqd"),
    ...bytesField(7, graph),
    // OperatorSetIdProto: domain (1), version (2).
    ...g.opsets.flatMap(([domain, v]) =>
      bytesField(8, [...(domain ? stringField(1, domain) : []), ...intField(2, v)]),
    ),
  ];
  return Uint8Array.from(model);
}

/** ModelProto bytes for Y = op(A)·op(B) as one Gemm node (opset 13, C omitted). */
function gemmModel(transA: boolean, transB: boolean, elem: ElemType): Uint8Array {
  return onnxModel({
    elem,
    nodes: [
      {
        op: "Gemm",
        inputs: ["A", "B"],
        outputs: ["Y"],
        ints: { transA: transA ? 1 : 0, transB: transB ? 1 : 0 },
      },
    ],
    inputs: [
      ["A", transA ? ["K", "M"] : ["M", "K"]],
      ["B", transB ? ["N", "K"] : ["K", "N"]],
    ],
    outputs: [["Y", ["M", "N"]]],
    opsets: [["", 13]],
  });
}

/**
 * ModelProto bytes for Y[i] = op(A[i])·op(B[i]) over a leading batch dimension, as one node:
 * MatMul (opset 13) without transposes, else FusedMatMul (com.microsoft, opset 1), whose
 * transA/transB swap the last two dimensions of an operand.
 */
function batchedMatmulModel(transA: boolean, transB: boolean): Uint8Array {
  const fused = transA || transB;
  return onnxModel({
    nodes: [
      fused
        ? {
            op: "FusedMatMul",
            domain: "com.microsoft",
            inputs: ["A", "B"],
            outputs: ["Y"],
            ints: { transA: transA ? 1 : 0, transB: transB ? 1 : 0 },
          }
        : { op: "MatMul", inputs: ["A", "B"], outputs: ["Y"] },
    ],
    inputs: [
      ["A", transA ? ["BATCH", "K", "M"] : ["BATCH", "M", "K"]],
      ["B", transB ? ["BATCH", "N", "K"] : ["BATCH", "K", "N"]],
    ],
    outputs: [["Y", ["BATCH", "M", "N"]]],
    opsets: fused
      ? [
          ["", 13],
          ["com.microsoft", 1],
        ]
      : [["", 13]],
  });
}
