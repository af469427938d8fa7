import type { DType, FloatDType } from "./dtype.ts";

/**
 * One tensor as listed in a file. `shape` is always row-major, slowest dimension first
 * (PyTorch order): a GGUF tensor with ne = [in, out] has shape [out, in] here.
 */
export interface TensorInfo {
  name: string;
  dtype: DType;
  shape: number[];
  /** Bytes the tensor's data takes in the file. */
  byteLength: number;
}

/**
 * A tensor file opened for lazy, per-tensor reading (GGUF, safetensors, or a sharded set);
 * `close` it when done. `info` and `read` throw for an unknown name, `read` after `close`
 * and for a dtype it cannot convert.
 */
export interface TensorReader {
  readonly path: string;
  readonly format: "gguf" | "safetensors";
  readonly tensors: readonly TensorInfo[];
  has(name: string): boolean;
  info(name: string): TensorInfo;
  /** Reads one tensor from disk and converts it to float32 (dequantising where needed). */
  read(name: string): Promise<Float32Array>;
  close(): Promise<void>;
}

/**
 * A tensor handed to a writer. `data` may be a function so that writers can stream
 * tensors one at a time and never hold a whole model in memory.
 */
export interface TensorToWrite {
  name: string;
  /** Storage type in the file; the data is float32 and converted on write. */
  dtype: FloatDType;
  /** PyTorch order, slowest dimension first. */
  shape: number[];
  data: Float32Array | (() => Promise<Float32Array>);
}
