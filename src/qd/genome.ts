/**
 * Exact compact genomes (docs/ALGORITHM.md, "Exact compact genomes"). With K seed experts, every
 * individual of the search is exactly
 *   τ^W = Σ_k [ a_k E_k^W + U_k diag(c_k^W ⊙ s_k^W) V_kᵀ ]   per 2-D matrix W,
 *   τ^b = Σ_k a_k τ_k^b                                      per other tensor b,
 * plus, for the Gaussian-mutation ablation, Σ_i weight_i · σ_i · Z(seed_i) where Z is a
 * standard-normal field replayed from a seed (see noise.ts). A genome stores a (K numbers),
 * c (K·R_W numbers per matrix) and the noise terms: kilobytes to megabytes, not a checkpoint.
 *
 * `c` is one flat Float64Array; the layout gives each matrix its slice, seed-major: the
 * coefficient of component i of seed k of matrix W sits at offset_W + k·R_W + i.
 */
import { createHash } from "node:crypto";

/** One Gaussian-mutation term: weight · sigma · Z(seed), Z standard normal per tensor. */
export interface NoiseTerm {
  seed: number;
  sigma: number;
  weight: number;
}

/**
 * One individual as exact coefficients over the seed factors: τ is rebuilt from (a, c,
 * noise) and the seeds' task vectors (see this file's header). Meaningful only with the
 * `GenomeLayout` it was made for; the coefficients are dimensionless weights.
 */
export interface Genome {
  /** Weight of each seed's residual E_k and of its 1-D task vectors (length K). */
  a: Float64Array;
  /** Singular-component coefficients of every matrix, laid out by `GenomeLayout`. */
  c: Float64Array;
  /** Gaussian-mutation terms (empty unless `mutation.kind` is "gaussian"). */
  noise: NoiseTerm[];
}

export interface LayoutMatrix {
  name: string;
  /** R_W: singular components kept for this matrix (same for every seed). */
  rank: number;
  /** Start of this matrix's K·R_W coefficients in `Genome.c`. */
  offset: number;
}

/**
 * Where each matrix's coefficients live in a genome; shared by all genomes of a run.
 * `seeds` is K; each matrix is a tensor name with R_W ≥ 1. The constructor throws when
 * `seeds` is not a positive integer, or a matrix has an empty name, a rank that is not a
 * positive integer, or a name listed twice.
 */
export class GenomeLayout {
  readonly seeds: number;
  readonly matrices: readonly LayoutMatrix[];
  /** Length of `Genome.c`: K · Σ_W R_W. */
  readonly size: number;
  /** Short hash of K, names and ranks: a genome is only meaningful with its layout. */
  readonly id: string;
  private readonly byName = new Map<string, LayoutMatrix>();

  constructor(seeds: number, matrices: readonly { name: string; rank: number }[]) {
    if (!(Number.isInteger(seeds) && seeds >= 1)) {
      throw new Error(`GenomeLayout: seeds must be a positive integer, got ${seeds}`);
    }
    let offset = 0;
    const list: LayoutMatrix[] = [];
    for (const m of matrices) {
      if (typeof m?.name !== "string" || m.name === "") {
        throw new Error("GenomeLayout: every matrix needs a non-empty name");
      }
      if (!(Number.isInteger(m.rank) && m.rank >= 1)) {
        throw new Error(
          `GenomeLayout: matrix "${m.name}" needs a positive integer rank, got ${m.rank}`,
        );
      }
      if (this.byName.has(m.name))
        throw new Error(`GenomeLayout: matrix "${m.name}" is listed twice`);
      const entry = { name: m.name, rank: m.rank, offset };
      list.push(entry);
      this.byName.set(m.name, entry);
      offset += seeds * m.rank;
    }
    this.seeds = seeds;
    this.matrices = list;
    this.size = offset;
    const h = createHash("sha256").update(
      JSON.stringify([seeds, list.map((m) => [m.name, m.rank])]),
    );
    this.id = h.digest("hex").slice(0, 16);
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  /** The matrix's entry; throws when the layout has no matrix `name`. */
  matrix(name: string): LayoutMatrix {
    const m = this.byName.get(name);
    if (!m) throw new Error(`GenomeLayout: no matrix named "${name}"`);
    return m;
  }
}

/** R_W for a rows×cols matrix: min(rows, cols) at "full" rank, else min(R, rows, cols). */
export function matrixRank(shape: readonly number[], rank: "full" | number): number {
  const full = Math.min(shape[0], shape[1]);
  return rank === "full" ? full : Math.min(rank, full);
}

/** The layout for a model's tensors: every 2-D tensor is a matrix with factors. */
export function layoutForShapes(
  tensors: readonly { name: string; shape: readonly number[] }[],
  seeds: number,
  rank: "full" | number = "full",
): GenomeLayout {
  checkRankOption("layoutForShapes", rank);
  return new GenomeLayout(
    seeds,
    tensors
      .filter((t) => t.shape.length === 2)
      .map((t) => ({ name: t.name, rank: matrixRank(t.shape, rank) })),
  );
}

export function checkRankOption(where: string, rank: unknown): asserts rank is "full" | number {
  if (rank !== "full" && !(typeof rank === "number" && Number.isInteger(rank) && rank >= 1)) {
    throw new Error(`${where}: rank must be "full" or a positive integer, got ${String(rank)}`);
  }
}

/**
 * Seed expert k (0-based): a = e_k, c_k = 1 on every matrix, other c = 0. Throws unless k
 * is an integer in 0..K−1.
 */
export function seedGenome(layout: GenomeLayout, k: number): Genome {
  if (!(Number.isInteger(k) && k >= 0 && k < layout.seeds)) {
    throw new Error(`seedGenome: seed must be an integer in 0..${layout.seeds - 1}, got ${k}`);
  }
  const a = new Float64Array(layout.seeds);
  a[k] = 1;
  const c = new Float64Array(layout.size);
  for (const m of layout.matrices) c.fill(1, m.offset + k * m.rank, m.offset + (k + 1) * m.rank);
  return { a, c, noise: [] };
}

/** The base model itself (τ = 0). */
export function zeroGenome(layout: GenomeLayout): Genome {
  return { a: new Float64Array(layout.seeds), c: new Float64Array(layout.size), noise: [] };
}

/** A view of matrix `name`'s coefficients: K·R_W numbers, seed-major. */
export function matrixCoefficients(
  genome: Genome,
  layout: GenomeLayout,
  name: string,
): Float64Array {
  const m = layout.matrix(name);
  return genome.c.subarray(m.offset, m.offset + layout.seeds * m.rank);
}

/** Throws unless the genome's arrays fit the layout. */
export function checkGenome(where: string, genome: Genome, layout: GenomeLayout): void {
  if (!(genome?.a instanceof Float64Array) || !(genome.c instanceof Float64Array)) {
    throw new Error(`${where}: a genome needs Float64Arrays a and c`);
  }
  if (genome.a.length !== layout.seeds || genome.c.length !== layout.size) {
    throw new Error(
      `${where}: genome has ${genome.a.length} seed weights and ${genome.c.length} coefficients but the layout needs ${layout.seeds} and ${layout.size}; it belongs to another model or rank`,
    );
  }
  if (!Array.isArray(genome.noise)) throw new Error(`${where}: genome.noise must be an array`);
}

/**
 * Σ_i w_i g_i: the genome of the same combination of task vectors (everything is linear).
 * Noise terms with the same seed and σ merge; terms whose weight ends at 0 are dropped.
 */
export function combineGenomes(terms: readonly (readonly [number, Genome])[]): Genome {
  if (terms.length === 0) throw new Error("combineGenomes: needs at least one genome");
  const [, first] = terms[0];
  const a = new Float64Array(first.a.length);
  const c = new Float64Array(first.c.length);
  const noise = new Map<string, NoiseTerm>();
  for (const [w, g] of terms) {
    if (!Number.isFinite(w)) throw new Error(`combineGenomes: weight ${w} is not finite`);
    if (g.a.length !== a.length || g.c.length !== c.length) {
      throw new Error("combineGenomes: the genomes have different layouts");
    }
    for (let i = 0; i < a.length; i++) a[i] += w * g.a[i];
    for (let i = 0; i < c.length; i++) c[i] += w * g.c[i];
    for (const t of g.noise) {
      const key = `${t.seed}:${t.sigma}`;
      const have = noise.get(key);
      if (have) have.weight += w * t.weight;
      else noise.set(key, { seed: t.seed, sigma: t.sigma, weight: w * t.weight });
    }
  }
  return { a, c, noise: [...noise.values()].filter((t) => t.weight !== 0) };
}

export function cloneGenome(g: Genome): Genome {
  return {
    a: Float64Array.from(g.a),
    c: Float64Array.from(g.c),
    noise: g.noise.map((t) => ({ ...t })),
  };
}

// ---------------------------------------------------------------- serialisation

const MAGIC = 0x47445143; // "CQDG" little-endian
const VERSION = 1;
const HEADER_BYTES = 4 + 4 + 8 + 4 + 4 + 4;
const NOISE_BYTES = 4 + 8 + 8;

/**
 * Bytes of the binary form: a 28-byte header (magic, version, layout id, K, |c|, noise
 * count), a and c as float64, then 20 bytes per noise term.
 */
export function genomeByteSize(layout: GenomeLayout, noiseTerms = 0): number {
  return HEADER_BYTES + 8 * (layout.seeds + layout.size) + NOISE_BYTES * noiseTerms;
}

/**
 * The genome's binary form (`genomeByteSize` bytes, little-endian), tagged with the
 * layout's id so it decodes only against the same layout. Throws when the genome does not
 * fit the layout (lengths of a and c, noise not an array), or a noise seed is not a
 * 32-bit unsigned integer.
 */
export function encodeGenome(genome: Genome, layout: GenomeLayout): Uint8Array {
  checkGenome("encodeGenome", genome, layout);
  const buf = Buffer.alloc(genomeByteSize(layout, genome.noise.length));
  let p = 0;
  p = buf.writeUInt32LE(MAGIC, p);
  p = buf.writeUInt32LE(VERSION, p);
  p += buf.write(layout.id.slice(0, 16), p, 8, "hex");
  p = buf.writeUInt32LE(layout.seeds, p);
  p = buf.writeUInt32LE(layout.size, p);
  p = buf.writeUInt32LE(genome.noise.length, p);
  for (const x of genome.a) p = buf.writeDoubleLE(x, p);
  for (const x of genome.c) p = buf.writeDoubleLE(x, p);
  for (const t of genome.noise) {
    p = buf.writeUInt32LE(t.seed, p);
    p = buf.writeDoubleLE(t.sigma, p);
    p = buf.writeDoubleLE(t.weight, p);
  }
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
}

/**
 * Reads a genome written by `encodeGenome`. Throws when the bytes are not a cycleqd genome,
 * have an unknown version, were made for another layout (different id, K or |c|), or have
 * the wrong length.
 */
export function decodeGenome(bytes: Uint8Array, layout: GenomeLayout): Genome {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fail = (what: string): never => {
    throw new Error(`decodeGenome: ${what}`);
  };
  if (buf.length < HEADER_BYTES || buf.readUInt32LE(0) !== MAGIC) fail("not a cycleqd genome");
  if (buf.readUInt32LE(4) !== VERSION) fail(`unknown version ${buf.readUInt32LE(4)}`);
  const id = buf.toString("hex", 8, 16);
  if (id !== layout.id)
    fail(`the genome was made for layout ${id} but this layout is ${layout.id}`);
  const k = buf.readUInt32LE(16);
  const size = buf.readUInt32LE(20);
  const n = buf.readUInt32LE(24);
  if (k !== layout.seeds || size !== layout.size) fail("its sizes do not match the layout");
  if (buf.length !== genomeByteSize(layout, n))
    fail(`${buf.length} bytes, expected ${genomeByteSize(layout, n)}`);
  let p = HEADER_BYTES;
  const a = new Float64Array(k);
  for (let i = 0; i < k; i++, p += 8) a[i] = buf.readDoubleLE(p);
  const c = new Float64Array(size);
  for (let i = 0; i < size; i++, p += 8) c[i] = buf.readDoubleLE(p);
  const noise: NoiseTerm[] = [];
  for (let i = 0; i < n; i++, p += NOISE_BYTES) {
    noise.push({
      seed: buf.readUInt32LE(p),
      sigma: buf.readDoubleLE(p + 4),
      weight: buf.readDoubleLE(p + 12),
    });
  }
  return { a, c, noise };
}
