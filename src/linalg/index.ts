/**
 * Linear algebra for cycleqd: the GEMM backend choice and the SVDs built on it.
 */
import type { Gemm } from "./gemm.ts";
import { createOrtGemm } from "./gemm-ort.ts";
import { createTsGemm } from "./gemm-ts.ts";

export type { Gemm, GemmOptions } from "./gemm.ts";
export { checkMatmulArgs, checkMatmulBatchedArgs } from "./gemm.ts";
export { createOrtGemm, type OrtGemmOptions } from "./gemm-ort.ts";
export { createTsGemm, matmulTs } from "./gemm-ts.ts";
export {
  type RandomizedSvd,
  type RandomizedSvdOptions,
  type Svd,
  svdJacobi,
  svdRandomized,
  type TruncatedSvdOptions,
  truncatedSvd,
} from "./svd.ts";

export type GemmBackend = "auto" | "onnxruntime" | "typescript";

export interface CreateGemmOptions {
  /** "auto" (default) uses onnxruntime when it loads, else the TypeScript kernel. */
  backend?: GemmBackend;
  /** Threads for the onnxruntime backend; default: the number of cores. */
  threads?: number;
  /** Where the one-line fallback warning goes; default console.warn. */
  warn?: (msg: string) => void;
}

const BACKENDS: readonly GemmBackend[] = ["auto", "onnxruntime", "typescript"];

export async function createGemm(opts: CreateGemmOptions = {}): Promise<Gemm> {
  const backend = opts.backend ?? "auto";
  if (!BACKENDS.includes(backend)) {
    throw new Error(`createGemm: backend must be one of ${BACKENDS.join(", ")}; got "${backend}"`);
  }
  const threads = opts.threads;
  if (threads !== undefined && !(Number.isInteger(threads) && threads > 0)) {
    throw new Error(`createGemm: threads must be a positive integer, got ${threads}`);
  }
  if (backend === "typescript") return createTsGemm();
  return selectGemm(backend, () => createOrtGemm({ threads }), opts.warn ?? console.warn);
}

/**
 * The fallback rule, apart from module loading so it can be tested: "onnxruntime" fails
 * loudly, "auto" warns once and falls back to the TypeScript kernel.
 */
export async function selectGemm(
  backend: "auto" | "onnxruntime",
  loadOrt: () => Promise<Gemm>,
  warn: (msg: string) => void,
): Promise<Gemm> {
  try {
    return await loadOrt();
  } catch (err) {
    const why = firstLine(err);
    if (backend === "onnxruntime") {
      throw new Error(
        `createGemm: the onnxruntime backend could not load (${why}). ` +
          "Reinstall it with `npm install onnxruntime-node` (its CPU binary ships in the package; " +
          "offline, put `onnxruntime-node-install=skip` in .npmrc so its CUDA download is skipped), " +
          'or choose backend "typescript" (or "auto") to use the slower pure-TypeScript GEMM.',
      );
    }
    warn(
      `cycleqd: onnxruntime unavailable (${why}); using the pure-TypeScript GEMM, which is much slower`,
    );
    return createTsGemm();
  }
}

function firstLine(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.split("\n")[0].trim();
}
