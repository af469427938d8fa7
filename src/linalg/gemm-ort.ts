/**
 * GEMM through onnxruntime-node (MLAS on CPU). The model is a single ONNX `Gemm` node with
 * symbolic dimensions, encoded here by hand, so no model file or ONNX tooling is needed.
 * One session per (transA, transB) pair; MLAS reads transposed operands in place.
 */
import { availableParallelism } from "node:os";
import type * as Ort from "onnxruntime-node";
import { checkMatmulArgs, type Gemm, type GemmOptions } from "./gemm.ts";

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
  await gemm.session(false, false);
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

  session(transA: boolean, transB: boolean): Promise<Ort.InferenceSession> {
    if (this.disposed) throw new Error("onnxruntime GEMM: used after dispose()");
    const key = (transA ? 1 : 0) + (transB ? 2 : 0);
    let s = this.sessions[key];
    if (!s) {
      s = this.ort.InferenceSession.create(gemmModel(transA, transB), {
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
    const transA = opts.transA === true;
    const transB = opts.transB === true;
    const session = await this.session(transA, transB);
    const Tensor = this.ort.Tensor;
    const out = await session.run({
      A: new Tensor("float32", a, transA ? [k, m] : [m, k]),
      B: new Tensor("float32", b, transB ? [n, k] : [k, n]),
    });
    return out.Y.data as Float32Array;
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

/** ValueInfoProto for a float32 matrix with two symbolic dimensions. */
function matrixInfo(name: string, rows: string, cols: string): Bytes {
  const dim = (p: string) => bytesField(1, stringField(2, p)); // Dimension.dim_param
  const shape = [...dim(rows), ...dim(cols)];
  const tensorType = [...intField(1, 1), ...bytesField(2, shape)]; // elem_type FLOAT
  return [...stringField(1, name), ...bytesField(2, bytesField(1, tensorType))];
}

/** AttributeProto with an int value (type INT = 2). */
function intAttribute(name: string, v: number): Bytes {
  return [...stringField(1, name), ...intField(3, v), ...intField(20, 2)];
}

/** ModelProto bytes for Y = op(A)·op(B) as one Gemm node (opset 13, C omitted). */
export function gemmModel(transA: boolean, transB: boolean): Uint8Array {
  const node = [
    ...stringField(1, "A"),
    ...stringField(1, "B"),
    ...stringField(2, "Y"),
    ...stringField(4, "Gemm"),
    ...bytesField(5, intAttribute("transA", transA ? 1 : 0)),
    ...bytesField(5, intAttribute("transB", transB ? 1 : 0)),
  ];
  const graph = [
    ...bytesField(1, node),
    ...stringField(2, "cycleqd_gemm"),
    ...bytesField(11, transA ? matrixInfo("A", "K", "M") : matrixInfo("A", "M", "K")),
    ...bytesField(11, transB ? matrixInfo("B", "N", "K") : matrixInfo("B", "K", "N")),
    ...bytesField(12, matrixInfo("Y", "M", "N")),
  ];
  const model = [
    ...intField(1, 8), // ir_version
    ...stringField(2, "cycleqd"),
    ...bytesField(7, graph),
    ...bytesField(8, intField(2, 13)), // opset_import: default domain, version 13
  ];
  return Uint8Array.from(model);
}
