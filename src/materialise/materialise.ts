/**
 * Genome → weights: θ = θ₀ + τ with τ rebuilt from the seed factors (genome.ts gives the
 * formula). Tensors are produced one at a time as TensorToWrite thunks, so a writer streams
 * a whole model while memory holds one tensor (θ₀, overwritten by θ in place) and the work
 * of one block of its rows (docs/ALGORITHM.md, "Materialisation").
 */

import { checkGenome, type Genome, matrixCoefficients } from "../qd/genome.ts";
import { noiseField } from "../qd/noise.ts";
import type { FloatDType } from "../tensors/dtype.ts";
import { type GgufReader, type GgufValue, writeGguf } from "../tensors/gguf.ts";
import type { TensorReader, TensorToWrite } from "../tensors/types.ts";
import { certifiedMerge } from "./certified.ts";
import type { SeedFactors } from "./factors.ts";
import {
  activeComponents,
  addLowRank,
  GEMM_MIN_WORK,
  type LowRankOptions,
  type LowRankTerm,
} from "./lowrank.ts";

export interface MaterialiseOptions extends LowRankOptions {
  /**
   * Storage type of the 2-D tensors; default: each tensor keeps the base's type (F32 where
   * the base's type cannot be written). Other tensors always keep the base's type.
   */
  dtype?: FloatDType;
}

/** τ of one tensor (row-major, float64) for `genome`. */
export async function taskVector(
  genome: Genome,
  factors: SeedFactors,
  name: string,
  opts: LowRankOptions = {},
): Promise<Float64Array> {
  checkGenome("taskVector", genome, factors.layout);
  return sumParts(await taskVectorParts(genome, factors, name), opts);
}

/** start + Σ terms + Σ noise, summed into `p.start` in that order. */
async function sumParts(p: TaskVectorParts, opts: LowRankOptions): Promise<Float64Array> {
  const tau = p.start;
  if (p.terms.length > 0) await addLowRank(tau, p.terms, p.rows, p.cols, opts);
  for (const { scale, field } of p.noise) {
    for (let i = 0; i < tau.length; i++) tau[i] += scale * field[i];
  }
  return tau;
}

/** τ = start + Σ terms + Σ noise, its parts in the order in which they are summed. */
interface TaskVectorParts {
  /** The 1-D task vector, or a matrix's residual part Σ a_k E_k. */
  start: Float64Array;
  /** A matrix's low-rank part (none for 1-D tensors). */
  terms: LowRankTerm[];
  rows: number;
  cols: number;
  noise: { scale: number; field: Float64Array }[];
}

/**
 * The parts of τ for rows [r0, r1) of a matrix (all of a 1-D tensor); `fields` are the
 * tensor's whole noise fields, one per noise term, of which the block takes its slice.
 */
async function taskVectorParts(
  genome: Genome,
  factors: SeedFactors,
  name: string,
  rows?: readonly [number, number],
  fields?: readonly Float64Array[],
): Promise<TaskVectorParts> {
  const f = await factors.get(name, rows ? { rows } : {});
  const K = factors.seeds;
  const terms: LowRankTerm[] = [];
  let start: Float64Array;
  let cols: number;
  let offset = 0;
  if (f.kind === "vector") {
    start = new Float64Array(f.tau[0].length);
    cols = start.length;
    for (let k = 0; k < K; k++) axpy(genome.a[k], f.tau[k], start);
  } else {
    start = new Float64Array(f.rows * f.cols);
    cols = f.cols;
    offset = (rows?.[0] ?? 0) * cols;
    const c = matrixCoefficients(genome, factors.layout, name);
    for (let k = 0; k < K; k++) {
      const e = f.residual[k];
      if (e) axpy(genome.a[k], e, start);
      const ck = c.subarray(k * f.rank, (k + 1) * f.rank);
      const w = Float64Array.from(ck, (x, i) => x * f.s[k][i]);
      terms.push({ u: f.u[k], v: f.v[k], w, rank: f.rank });
    }
  }
  const whole = fields ?? noiseFields(genome, name, factors.info(name).shape);
  const noise = genome.noise.map((t, i) => ({
    scale: t.weight * t.sigma,
    field: whole[i].subarray(offset, offset + start.length),
  }));
  return { start, terms, rows: start.length / cols, cols, noise };
}

/** The genome's noise fields over the whole tensor, one per noise term. */
function noiseFields(genome: Genome, name: string, shape: readonly number[]): Float64Array[] {
  const count = shape.reduce((a, b) => a * b, 1);
  return genome.noise.map((t) => noiseField(t.seed, name, count));
}

function axpy(alpha: number, x: ArrayLike<number>, y: Float64Array): void {
  if (alpha === 0) return;
  for (let i = 0; i < y.length; i++) y[i] += alpha * x[i];
}

const WRITABLE: readonly string[] = ["F32", "F16", "BF16"];

/**
 * The merged model's tensors in the base's order, each a thunk that reads θ₀, rebuilds τ
 * and returns θ₀ + τ as float32.
 */
export function materialiseTensors(
  genome: Genome,
  base: TensorReader,
  factors: SeedFactors,
  opts: MaterialiseOptions = {},
): TensorToWrite[] {
  checkGenome("materialise", genome, factors.layout);
  if (opts.dtype !== undefined && !WRITABLE.includes(opts.dtype)) {
    throw new Error(`materialise: dtype must be F32, F16 or BF16, got ${String(opts.dtype)}`);
  }
  if (base.tensors.length !== factors.tensors.length) {
    throw new Error(
      `materialise: the base has ${base.tensors.length} tensors but the factors cover ${factors.tensors.length}; they were computed for another base`,
    );
  }
  // With a GEMM engine, matrices take the certified route (certified.ts): the loops' bits.
  const certify = (opts.kernel ?? "certified") === "certified";
  const tensors = base.tensors.map((t): TensorToWrite => {
    const fi = factors.info(t.name);
    if (fi.shape.join(",") !== t.shape.join(",")) {
      throw new Error(
        `materialise: tensor "${t.name}" is [${t.shape.join(", ")}] in the base but [${fi.shape.join(", ")}] in the factors`,
      );
    }
    const own: FloatDType = WRITABLE.includes(t.dtype) ? (t.dtype as FloatDType) : "F32";
    const dtype = t.shape.length === 2 ? (opts.dtype ?? own) : own;
    return {
      name: t.name,
      dtype,
      shape: [...t.shape],
      data: async () => {
        // θ₀ becomes θ block by block: every element depends on its own θ₀ alone.
        const theta = await base.read(t.name);
        const [rows, cols] = t.shape.length === 2 ? t.shape : [1, theta.length];
        const fields = noiseFields(genome, t.name, t.shape);
        const step = rowsPerBlock(cols);
        for (let r0 = 0; r0 < rows; r0 += step) {
          const r1 = Math.min(rows, r0 + step);
          const block = theta.subarray(r0 * cols, r1 * cols);
          const p = await taskVectorParts(genome, factors, t.name, [r0, r1], fields);
          if (certify && opts.gemm && t.shape.length === 2) {
            await certifiedMerge({ ...p, theta: block, out: block, dtype, gemm: opts.gemm });
            continue;
          }
          // Every block takes the whole matrix's choice of kernel (lowrank.ts).
          const work = rows * cols * activeComponents(p.terms).length;
          const gemm = work >= (opts.gemmMinWork ?? GEMM_MIN_WORK);
          const gemmMinWork = gemm ? 0 : Number.POSITIVE_INFINITY;
          const tau = await sumParts(p, { ...opts, gemmMinWork });
          for (let i = 0; i < block.length; i++) block[i] += tau[i];
        }
        return theta;
      },
    };
  });
  // With worker threads, the next few tensors are built while the writer takes this one;
  // the window bounds what is held in memory.
  return opts.pool ? prefetched(tensors, PREFETCH) : tensors;
}

const PREFETCH = 4;

/** Elements of one block of rows: its float64 work is a few times this in bytes. */
const BLOCK_ELEMENTS = 1 << 22;

function rowsPerBlock(cols: number): number {
  return Math.max(1, Math.floor(BLOCK_ELEMENTS / cols));
}

/** The same tensors, each one's data started as soon as one up to `window` before it is asked. */
function prefetched(tensors: TensorToWrite[], window: number): TensorToWrite[] {
  const started = new Map<number, Promise<Float32Array>>();
  const start = (i: number) => {
    if (i < tensors.length && !started.has(i)) {
      const d = tensors[i].data;
      const p = typeof d === "function" ? d() : Promise.resolve(d);
      p.catch(() => {}); // surfaces when its turn comes
      started.set(i, p);
    }
  };
  return tensors.map((t, i) => ({
    ...t,
    data: () => {
      for (let j = i; j <= i + window; j++) start(j);
      const p = started.get(i) as Promise<Float32Array>;
      started.delete(i);
      return p;
    },
  }));
}

/** llama.cpp's general.file_type for an all-`dtype` model. */
const FILE_TYPE: Record<FloatDType, number> = { F32: 0, F16: 1, BF16: 32 };

export interface MaterialiseGgufOptions extends MaterialiseOptions {
  /** Metadata keys to set or replace (e.g. general.name); all others are the base's. */
  metadata?: Record<string, GgufValue>;
}

/**
 * Writes the genome's model as GGUF: the base's metadata (every key), then θ₀ + τ for each
 * tensor in the base's order and types, to `outPath` (written under a temporary name and
 * renamed). Throws when `base` is not a GGUF reader, the genome does not fit the factors'
 * layout, `opts.dtype` is not F32, F16 or BF16, the factors were computed for another base
 * (tensor count or shapes), or reading or writing fails.
 */
export async function materialiseGguf(
  outPath: string,
  genome: Genome,
  base: GgufReader,
  factors: SeedFactors,
  opts: MaterialiseGgufOptions = {},
): Promise<void> {
  if (base?.format !== "gguf" || !(base.metadata instanceof Map)) {
    throw new Error(
      "materialiseGguf: the base must be a GGUF reader (openGguf); for safetensors use materialiseTensors",
    );
  }
  const tensors = materialiseTensors(genome, base, factors, opts);
  const metadata = new Map(base.metadata);
  if (opts.dtype && metadata.has("general.file_type")) {
    metadata.set("general.file_type", { type: "uint32", value: FILE_TYPE[opts.dtype] });
  }
  for (const [k, v] of Object.entries(opts.metadata ?? {})) metadata.set(k, v);
  await writeGguf(outPath, metadata, tensors);
}
