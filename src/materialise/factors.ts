/**
 * Seed factors: for each seed expert k and each 2-D tensor W, the top-R SVD of its task
 * vector τ_k^W = θ_k^W − θ_0^W (U_k, s_k, V_k) and, below full rank, the residual
 * E_k^W = τ_k^W − U_k diag(s_k) V_kᵀ; every other tensor keeps τ_k^b as it is. With these,
 * any genome rebuilds its model exactly (see genome.ts; docs/ALGORITHM.md, "SVD mutation"
 * and "Exact compact genomes").
 *
 * Factors are computed tensor by tensor straight into a cache directory `<cacheDir>/<key>/` holding `factors.safetensors`
 * (float32) and `manifest.json`. The key is the sha256 of the input files' bytes and the SVD
 * settings, so a changed input misses the cache. The directory is built under a temporary
 * name and renamed into place, so a crash never leaves a half-written cache entry.
 *
 * Memory, for the largest matrix of N elements (docs/ALGORITHM.md, "Materialisation"):
 * computing holds the base tensor, the expert tensor and τ (float32) or E, 12N bytes, plus
 * the reader's transient copy of the stored bytes; reading (`get`) can take a block of rows,
 * so that a consumer never needs a whole residual in memory.
 */
import { createHash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import {
  type FileHandle,
  mkdir,
  open,
  readFile,
  rename,
  rm,
  stat,
  writeFile,
} from "node:fs/promises";
import { join, relative, resolve } from "node:path";
import type { Gemm } from "../linalg/gemm.ts";
import { createTsGemm } from "../linalg/gemm-ts.ts";
import { truncatedSvd } from "../linalg/svd.ts";
import { checkRankOption, GenomeLayout, matrixRank } from "../qd/genome.ts";
import { openTensorFile } from "../tensors/open.ts";
import {
  openSafetensors,
  type SafetensorsReader,
  writeSafetensors,
} from "../tensors/safetensors.ts";
import { type HeaderEntry, parseHeader } from "../tensors/safetensors-format.ts";
import type { TensorReader, TensorToWrite } from "../tensors/types.ts";
import { listFiles } from "../util/files.ts";
import { Rng } from "../util/rng.ts";
import { addLowRank, GEMM_MIN_WORK } from "./lowrank.ts";

export interface FactorTensorInfo {
  name: string;
  shape: number[];
  /** "matrix": 2-D, SVD factors; "vector": any other tensor, kept as τ_k. */
  kind: "matrix" | "vector";
  /** R_W for a matrix, 0 for a vector. */
  rank: number;
  /** Whether a residual E_k is stored (rank below min(rows, cols)). */
  residual: boolean;
}

export interface MatrixFactors {
  kind: "matrix";
  name: string;
  /** Rows held here: the matrix's, or those of the block asked for. */
  rows: number;
  cols: number;
  rank: number;
  /** Per seed: rows×rank, row-major. */
  u: Float32Array[];
  /** Per seed: rank singular values, descending. */
  s: Float32Array[];
  /** Per seed: cols×rank, row-major. */
  v: Float32Array[];
  /** Per seed: rows×cols residual, or null at full rank or when left out. */
  residual: (Float32Array | null)[];
}

export interface VectorFactors {
  kind: "vector";
  name: string;
  shape: number[];
  /** Per seed: the task vector τ_k. */
  tau: Float32Array[];
}

export type TensorFactors = MatrixFactors | VectorFactors;

/**
 * The factors of K seed experts, read lazily from the cache one tensor at a time; `close`
 * it when done. `info` and `get` throw for a tensor name the base lacks.
 */
export interface SeedFactors {
  /** K. */
  readonly seeds: number;
  /** Singular components kept per matrix: "full" or R. */
  readonly rank: "full" | number;
  /** Every tensor of the base, in the base's order. */
  readonly tensors: readonly FactorTensorInfo[];
  readonly layout: GenomeLayout;
  /** The cache entry's directory and key. */
  readonly dir: string;
  readonly key: string;
  /** True when the factors were found in the cache, false when just computed. */
  readonly fromCache: boolean;
  info(name: string): FactorTensorInfo;
  /**
   * A tensor's factors. For a matrix, `opts.rows` = [r0, r1) gives only those rows of U and
   * of the residuals (V and s whole), so that large matrices can be worked through in
   * blocks; `opts.residual: false` leaves the residuals out (null). Throws for rows outside
   * the matrix.
   */
  get(name: string, opts?: FactorReadOptions): Promise<TensorFactors>;
  close(): Promise<void>;
}

export interface FactorReadOptions {
  /** Rows [r0, r1) of a matrix (default: all). Ignored for 1-D tensors. */
  rows?: readonly [number, number];
  /** Read the residuals E_k (default true). */
  residual?: boolean;
}

export interface FactorOptions {
  /** Singular components kept per matrix: "full" (default) or a number R. */
  rank?: "full" | number;
  /** GEMM engine for randomized SVDs and residuals (default: the pure-TypeScript one). */
  gemm?: Gemm;
  /** Exact Jacobi SVD when min(rows, cols) ≤ this (default 256); randomized above. */
  exactMaxDim?: number;
  /** Randomized SVD: extra test vectors (default 10). */
  oversample?: number;
  /** Randomized SVD: power iterations (default 2). */
  powerIters?: number;
  /** Seed of the randomized SVDs' test matrices (default 0). */
  seed?: number;
  /**
   * Store the residuals E_k below full rank (default true). Without them a genome's model
   * is its low-rank part only (E_k = 0): what low-rank (adapter) mode evaluates, at a
   * cache of about (rows + cols)·R numbers per matrix and seed instead of rows·cols.
   */
  residual?: boolean;
  /** Called after each tensor is factored. */
  onProgress?: (p: { tensor: string; done: number; total: number }) => void;
}

const FORMAT = "cycleqd-factors";
const FORMAT_VERSION = 1;
const FACTORS_FILE = "factors.safetensors";
const MANIFEST_FILE = "manifest.json";

interface Manifest {
  format: string;
  version: number;
  key: string;
  seeds: number;
  rank: "full" | number;
  svd: Record<string, number>;
  inputs: { path: string; sha256: string }[];
  tensors: FactorTensorInfo[];
}

// ---------------------------------------------------------------- cache key

/** sha256 of a file's bytes, or of a directory's files (relative names and bytes, sorted). */
export async function hashPath(path: string): Promise<string> {
  const info = await stat(path).catch(() => {
    throw new Error(`hashPath: ${path}: no such file or directory`);
  });
  const h = createHash("sha256");
  if (info.isDirectory()) {
    for (const file of await listFiles(path)) {
      h.update(`${relative(path, file)}\0`);
      h.update(await hashFile(file));
    }
  } else {
    h.update(await hashFile(path));
  }
  return h.digest("hex");
}

async function hashFile(path: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 22 })) h.update(chunk);
  return h.digest("hex");
}

function svdSettings(opts: FactorOptions): Record<string, number> {
  return {
    exactMaxDim: opts.exactMaxDim ?? 256,
    oversample: opts.oversample ?? 10,
    powerIters: opts.powerIters ?? 2,
    seed: opts.seed ?? 0,
  };
}

/** The cache key: input hashes (base first), rank and SVD settings. */
export function factorsCacheKey(inputHashes: readonly string[], opts: FactorOptions = {}): string {
  const rank = opts.rank ?? "full";
  const desc = {
    format: FORMAT,
    version: FORMAT_VERSION,
    inputs: inputHashes,
    rank,
    svd: svdSettings(opts),
    // Only when dropped, so that the keys of caches with residuals stay what they were.
    ...(opts.residual === false ? { residual: false } : {}),
  };
  return createHash("sha256").update(JSON.stringify(desc)).digest("hex");
}

// ---------------------------------------------------------------- compute

function entryName(tensor: string, seed: number, part: "u" | "s" | "v" | "e" | "tau"): string {
  return `${tensor}@${seed}.${part}`;
}

/** The factor tensors that `base` + K experts give, after checking that their shapes agree. */
export function planFactors(
  base: TensorReader,
  experts: readonly TensorReader[],
  rank: "full" | number,
  residual = true,
): FactorTensorInfo[] {
  checkRankOption("factors", rank);
  if (experts.length === 0) throw new Error("factors: pass at least one seed expert");
  const names = new Set(base.tensors.map((t) => t.name));
  experts.forEach((ex, k) => {
    for (const t of base.tensors) {
      if (!ex.has(t.name)) {
        throw new Error(
          `factors: expert ${k} (${ex.path}) has no tensor "${t.name}"; experts must be fine-tunes of the base`,
        );
      }
      const shape = ex.info(t.name).shape;
      if (shape.join(",") !== t.shape.join(",")) {
        throw new Error(
          `factors: tensor "${t.name}" is [${shape.join(", ")}] in expert ${k} (${ex.path}) but [${t.shape.join(", ")}] in the base`,
        );
      }
    }
    const extra = ex.tensors.find((t) => !names.has(t.name));
    if (extra)
      throw new Error(
        `factors: expert ${k} (${ex.path}) has tensor "${extra.name}" that the base lacks`,
      );
  });
  return base.tensors.map((t) => {
    if (t.shape.length !== 2)
      return { name: t.name, shape: [...t.shape], kind: "vector", rank: 0, residual: false };
    const r = matrixRank(t.shape, rank);
    return {
      name: t.name,
      shape: [...t.shape],
      kind: "matrix",
      rank: r,
      residual: residual && r < Math.min(t.shape[0], t.shape[1]),
    };
  });
}

/**
 * Computes the factors of `experts` relative to `base` and writes them to `dir` (created;
 * `factors.safetensors` + `manifest.json`). Entries are written as they are computed, so
 * memory holds one tensor's base, one expert tensor and τ (or E) at a time.
 */
export async function writeFactors(
  dir: string,
  base: TensorReader,
  experts: readonly TensorReader[],
  opts: FactorOptions & { key?: string; inputs?: { path: string; sha256: string }[] } = {},
): Promise<FactorTensorInfo[]> {
  const rank = opts.rank ?? "full";
  const plan = planFactors(base, experts, rank, opts.residual ?? true);
  const gemm = opts.gemm ?? createTsGemm();
  const settings = svdSettings(opts);
  const rng = new Rng(settings.seed);
  const K = experts.length;

  // One (tensor, seed) is computed when its first entry is written; the next entries of the
  // same pair reuse it, and the base tensor is read once for all seeds.
  let baseName = "";
  let baseData: Float32Array | null = null;
  let current = "";
  let parts: Partial<Record<"u" | "s" | "v" | "e" | "tau", Float32Array>> = {};
  let done = 0;
  const compute = async (t: FactorTensorInfo, k: number) => {
    if (baseName !== t.name) {
      baseData = await base.read(t.name);
      baseName = t.name;
    }
    const b = baseData as Float32Array;
    const ex = await experts[k].read(t.name);
    if (t.kind === "vector") {
      parts = { tau: difference(ex, b, Float32Array) };
    } else {
      const [rows, cols] = t.shape;
      // truncatedSvd's own choice: exact Jacobi works on τ in float64, the randomized SVD
      // rounds τ to float32 first, so it gets float32 (half the memory, the same result).
      const short = Math.min(rows, cols);
      const exact = short <= settings.exactMaxDim || t.rank >= short / 2;
      const tau = exact ? difference(ex, b, Float64Array) : difference(ex, b, Float32Array);
      const svd = await truncatedSvd(gemm, tau, rows, cols, t.rank, {
        rng: rng.fork(),
        exactMaxDim: settings.exactMaxDim,
        oversample: settings.oversample,
        powerIters: settings.powerIters,
      });
      parts = {
        u: Float32Array.from(svd.u),
        s: Float32Array.from(svd.s),
        v: Float32Array.from(svd.v),
      };
      if (t.residual) {
        // Built from the stored (float32) factors, so E + U diag(s) Vᵀ gives back τ.
        const f = parts as Required<typeof parts>;
        parts.e = await residualInPlace(ex, b, f, rows, cols, t.rank, opts.gemm);
      }
    }
    if (k === K - 1) {
      opts.onProgress?.({ tensor: t.name, done: ++done, total: plan.length });
      baseData = null;
      baseName = "";
    }
  };
  const entry = (
    t: FactorTensorInfo,
    k: number,
    part: "u" | "s" | "v" | "e" | "tau",
    shape: number[],
  ) => ({
    name: entryName(t.name, k, part),
    dtype: "F32" as const,
    shape,
    data: async () => {
      const id = `${t.name}@${k}`;
      if (current !== id) {
        await compute(t, k);
        current = id;
      }
      const data = parts[part] as Float32Array;
      // The last entry of a pair frees its factors.
      if (part === "tau" || part === "e" || (part === "v" && !t.residual)) parts = {};
      return data;
    },
  });
  const entries: TensorToWrite[] = [];
  for (const t of plan) {
    for (let k = 0; k < K; k++) {
      if (t.kind === "vector") {
        entries.push(entry(t, k, "tau", t.shape));
        continue;
      }
      const [rows, cols] = t.shape;
      entries.push(
        entry(t, k, "u", [rows, t.rank]),
        entry(t, k, "s", [t.rank]),
        entry(t, k, "v", [cols, t.rank]),
      );
      if (t.residual) entries.push(entry(t, k, "e", [rows, cols]));
    }
  }
  await mkdir(dir, { recursive: true });
  await writeSafetensors(join(dir, FACTORS_FILE), entries, { format: FORMAT });
  const manifest: Manifest = {
    format: FORMAT,
    version: FORMAT_VERSION,
    key: opts.key ?? "",
    seeds: K,
    rank,
    svd: settings,
    inputs: opts.inputs ?? [
      { path: base.path, sha256: "" },
      ...experts.map((e) => ({ path: e.path, sha256: "" })),
    ],
    tensors: plan,
  };
  await writeFile(join(dir, MANIFEST_FILE), `${JSON.stringify(manifest, null, 1)}\n`);
  return plan;
}

/** τ = expert − base, each element rounded once into `Out` (float64: exact). */
function difference<T extends Float32Array | Float64Array>(
  ex: Float32Array,
  b: Float32Array,
  Out: new (n: number) => T,
): T {
  const out = new Out(ex.length);
  for (let i = 0; i < out.length; i++) out[i] = ex[i] - b[i];
  return out;
}

/** Elements per block of rows where a whole matrix would be too large to hold in float64. */
const ROW_BLOCK_ELEMENTS = 1 << 22;

/**
 * E = τ − U diag(s) Vᵀ as float32, written over the expert tensor `ex` block of rows by
 * block of rows (τ = ex − b in float64, as a whole-matrix sum would take it), so that no
 * float64 copy of the matrix is ever held. Each element's sum is the same as for the whole
 * matrix where the loops sum it (the blocks take the whole matrix's choice of kernel); a
 * GEMM sums in its own order either way.
 */
async function residualInPlace(
  ex: Float32Array,
  b: Float32Array,
  f: { u: Float32Array; s: Float32Array; v: Float32Array },
  rows: number,
  cols: number,
  rank: number,
  gemm: Gemm | undefined,
): Promise<Float32Array> {
  const minus = Float64Array.from(f.s, (x) => -x);
  const active = minus.reduce((n, w) => n + (w !== 0 ? 1 : 0), 0);
  const gemmMinWork = rows * cols * active >= GEMM_MIN_WORK ? 0 : Number.POSITIVE_INFINITY;
  const step = Math.max(1, Math.floor(ROW_BLOCK_ELEMENTS / cols));
  for (let r0 = 0; r0 < rows; r0 += step) {
    const r1 = Math.min(rows, r0 + step);
    const o = r0 * cols;
    const block = difference(ex.subarray(o, r1 * cols), b.subarray(o, r1 * cols), Float64Array);
    const u = f.u.subarray(r0 * rank, r1 * rank);
    await addLowRank(block, [{ u, v: f.v, w: minus, rank }], r1 - r0, cols, {
      gemm,
      gemmMinWork,
    });
    ex.set(block, o);
  }
  return ex;
}

// ---------------------------------------------------------------- load

/** Opens factors written by `writeFactors`. */
export async function openFactors(dir: string, fromCache = true): Promise<SeedFactors> {
  let manifest: Manifest;
  try {
    manifest = JSON.parse(await readFile(join(dir, MANIFEST_FILE), "utf8"));
  } catch (e) {
    throw new Error(
      `openFactors: ${dir} has no readable ${MANIFEST_FILE} (${(e as Error).message})`,
    );
  }
  if (manifest.format !== FORMAT || manifest.version !== FORMAT_VERSION) {
    throw new Error(
      `openFactors: ${dir} holds ${manifest.format} v${manifest.version}, expected ${FORMAT} v${FORMAT_VERSION}`,
    );
  }
  const reader = await openSafetensors(join(dir, FACTORS_FILE));
  try {
    const rows = await RowReader.open(join(dir, FACTORS_FILE));
    return new CachedFactors(dir, manifest, reader, rows, fromCache);
  } catch (e) {
    await reader.close();
    throw e;
  }
}

/**
 * Reads rows of the cache's float32 entries straight from the file, so that a block of a
 * residual costs its own size and not the whole matrix's.
 */
class RowReader {
  private constructor(
    private readonly path: string,
    private readonly fh: FileHandle,
    private readonly dataStart: number,
    private readonly entries: Map<string, HeaderEntry>,
  ) {}

  static async open(path: string): Promise<RowReader> {
    const fh = await open(path, "r");
    try {
      const size = (await fh.stat()).size;
      const prefix = Buffer.alloc(8);
      await fh.read(prefix, 0, 8, 0);
      const length = Number(prefix.readBigUInt64LE(0));
      const text = Buffer.alloc(length);
      await fh.read(text, 0, length, 8);
      const header = parseHeader(path, text.toString("utf8"), size - 8 - length);
      return new RowReader(path, fh, 8 + length, new Map(header.entries.map((e) => [e.name, e])));
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  /** Rows [r0, r1) of a row-major float32 entry. */
  async rows(name: string, r0: number, r1: number): Promise<Float32Array> {
    const e = this.entries.get(name);
    if (e?.dtype !== "F32") throw new Error(`${this.path}: no float32 entry "${name}"`);
    const cols = e.shape.slice(1).reduce((a, b) => a * b, 1);
    const out = new Float32Array((r1 - r0) * cols);
    const bytes = new Uint8Array(out.buffer);
    const at = this.dataStart + e.begin + r0 * cols * 4;
    for (let done = 0; done < bytes.length; ) {
      const n = Math.min(1 << 30, bytes.length - done);
      const { bytesRead } = await this.fh.read(bytes, done, n, at + done);
      if (bytesRead === 0) throw new Error(`${this.path}: the file ends inside entry "${name}"`);
      done += bytesRead;
    }
    return out;
  }

  close(): Promise<void> {
    return this.fh.close();
  }
}

class CachedFactors implements SeedFactors {
  readonly seeds: number;
  readonly rank: "full" | number;
  readonly tensors: readonly FactorTensorInfo[];
  readonly layout: GenomeLayout;
  readonly key: string;
  private readonly byName: Map<string, FactorTensorInfo>;

  constructor(
    readonly dir: string,
    manifest: Manifest,
    private readonly reader: SafetensorsReader,
    private readonly rowReader: RowReader,
    readonly fromCache: boolean,
  ) {
    this.seeds = manifest.seeds;
    this.rank = manifest.rank;
    this.tensors = manifest.tensors;
    this.key = manifest.key;
    this.byName = new Map(manifest.tensors.map((t) => [t.name, t]));
    this.layout = new GenomeLayout(
      manifest.seeds,
      manifest.tensors
        .filter((t) => t.kind === "matrix")
        .map((t) => ({ name: t.name, rank: t.rank })),
    );
  }

  info(name: string): FactorTensorInfo {
    const t = this.byName.get(name);
    if (!t)
      throw new Error(
        `SeedFactors: no tensor "${name}" (the factors were computed for another base)`,
      );
    return t;
  }

  async get(name: string, opts: FactorReadOptions = {}): Promise<TensorFactors> {
    const t = this.info(name);
    const read = (k: number, part: "u" | "s" | "v" | "e" | "tau") =>
      this.reader.read(entryName(name, k, part));
    const seeds = Array.from({ length: this.seeds }, (_, k) => k);
    if (t.kind === "vector") {
      const tau: Float32Array[] = [];
      for (const k of seeds) tau.push(await read(k, "tau"));
      return { kind: "vector", name, shape: t.shape, tau };
    }
    const [r0, r1] = opts.rows ?? [0, t.shape[0]];
    if (!(Number.isInteger(r0) && Number.isInteger(r1) && 0 <= r0 && r0 < r1 && r1 <= t.shape[0])) {
      throw new Error(
        `SeedFactors: rows [${r0}, ${r1}) are not a non-empty range of the ${t.shape[0]} rows of "${name}"`,
      );
    }
    const whole = r0 === 0 && r1 === t.shape[0];
    const rows = (k: number, part: "u" | "e") =>
      whole ? read(k, part) : this.rowReader.rows(entryName(name, k, part), r0, r1);
    const f: MatrixFactors = {
      kind: "matrix",
      name,
      rows: r1 - r0,
      cols: t.shape[1],
      rank: t.rank,
      u: [],
      s: [],
      v: [],
      residual: [],
    };
    for (const k of seeds) {
      f.u.push(await rows(k, "u"));
      f.s.push(await read(k, "s"));
      f.v.push(await read(k, "v"));
      f.residual.push(t.residual && opts.residual !== false ? await rows(k, "e") : null);
    }
    return f;
  }

  async close(): Promise<void> {
    await this.rowReader.close();
    await this.reader.close();
  }
}

/**
 * The factors of `expertPaths` relative to `basePath`, from `cacheDir` when an entry for
 * exactly these input bytes and settings exists, otherwise computed and cached first.
 * Paths are GGUF files or Hugging Face safetensors folders; `cacheDir` is created if
 * missing, and an interrupted computation leaves no entry behind. Throws for no experts, a
 * rank that is not "full" or a positive integer, a model that cannot be read, or an expert
 * whose tensor names or shapes differ from the base's.
 */
export async function loadOrComputeFactors(
  basePath: string,
  expertPaths: readonly string[],
  cacheDir: string,
  opts: FactorOptions = {},
): Promise<SeedFactors> {
  checkRankOption("loadOrComputeFactors", opts.rank ?? "full");
  if (!Array.isArray(expertPaths) || expertPaths.length === 0) {
    throw new Error("loadOrComputeFactors: pass the seed experts' model files (at least one)");
  }
  const paths = [basePath, ...expertPaths].map((p) => resolve(p));
  const hashes: string[] = [];
  for (const p of paths) hashes.push(await hashPath(p));
  const key = factorsCacheKey(hashes, opts);
  const dir = join(cacheDir, key);
  if (await isComplete(dir, key)) return openFactors(dir, true);
  await rm(dir, { recursive: true, force: true }); // an entry with another key or no manifest

  await mkdir(cacheDir, { recursive: true });
  const tmp = join(
    cacheDir,
    `.tmp-${key.slice(0, 16)}-${process.pid}-${randomBytes(4).toString("hex")}`,
  );
  const readers: TensorReader[] = [];
  try {
    for (const p of paths) readers.push(await openTensorFile(p));
    const [base, ...experts] = readers;
    const inputs = paths.map((path, i) => ({ path, sha256: hashes[i] }));
    await writeFactors(tmp, base, experts, { ...opts, key, inputs });
    try {
      await rename(tmp, dir);
    } catch (e) {
      // Another process finished the same entry first; theirs is as good as ours.
      if (!(await isComplete(dir, key))) throw e;
      await rm(tmp, { recursive: true, force: true });
    }
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  } finally {
    for (const r of readers) await r.close();
  }
  return openFactors(dir, false);
}

async function isComplete(dir: string, key: string): Promise<boolean> {
  try {
    const manifest = JSON.parse(await readFile(join(dir, MANIFEST_FILE), "utf8")) as Manifest;
    await stat(join(dir, FACTORS_FILE));
    return (
      manifest.key === key && manifest.format === FORMAT && manifest.version === FORMAT_VERSION
    );
  } catch {
    return false;
  }
}
