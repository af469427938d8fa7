/**
 * Low-rank (adapter) mode: a child as θ₀ plus one LoRA adapter, instead of a full model.
 * With the residuals dropped (E_k = 0), a genome's matrix is
 *   τ^W = Σ_k U_k diag(c_k^W ⊙ s_k^W) V_kᵀ = B·A,
 *   A = [V_1ᵀ; …; V_Kᵀ] (fixed per seed), B = [U_1 diag(c_1 ⊙ s_1), …, U_K diag(c_K ⊙ s_K)],
 * a LoRA pair of rank K·R_W that llama.cpp adds to the base it has loaded once.
 *
 * What the mode leaves out, and why: a_k enters a genome only through the residuals and the
 * 1-D tensors (norm weights). A LoRA adapter has no form for a 1-D tensor, and the base is
 * shared by every child, so in this mode every 1-D tensor is the base's (τ^b = 0); the
 * residuals are dropped. `lowRankFactors` gives exactly this model to `materialiseGguf`, so
 * that a child evaluated as an adapter can be written out in full with the same weights.
 * Gaussian-mutation noise is full-rank and has no adapter form either: such genomes are
 * refused.
 */
import type { Genome } from "../qd/genome.ts";
import { checkGenome, matrixCoefficients } from "../qd/genome.ts";
import { type GgufValue, gguf, writeGguf } from "../tensors/gguf.ts";
import type { TensorToWrite } from "../tensors/types.ts";
import type {
  FactorReadOptions,
  FactorTensorInfo,
  MatrixFactors,
  SeedFactors,
  TensorFactors,
} from "./factors.ts";

export interface LoraAdapterOptions {
  /** general.architecture; must be the base model's (llama.cpp refuses a mismatch). Default "llama". */
  architecture?: string;
  /** Storage type of A and B (default F32; F16 halves the file). */
  dtype?: "F32" | "F16";
}

/**
 * The factors as low-rank mode sees them: no residuals, and every 1-D task vector zero
 * (the base's norms). `materialiseGguf(out, genome, base, lowRankFactors(factors))` writes
 * the model that base + `writeLoraAdapter(genome, factors, …)` runs. `close` closes the
 * underlying factors.
 */
export function lowRankFactors(factors: SeedFactors): SeedFactors {
  const tensors = factors.tensors.map((t) => ({ ...t, residual: false }));
  const byName = new Map(tensors.map((t) => [t.name, t]));
  return {
    seeds: factors.seeds,
    rank: factors.rank,
    tensors,
    layout: factors.layout,
    dir: factors.dir,
    key: factors.key,
    fromCache: factors.fromCache,
    info(name: string): FactorTensorInfo {
      return byName.get(name) ?? factors.info(name);
    },
    async get(name: string, opts: FactorReadOptions = {}): Promise<TensorFactors> {
      const t = factors.info(name);
      if (t.kind === "vector") {
        const zero = new Float32Array(t.shape.reduce((a, b) => a * b, 1));
        const tau = Array.from({ length: factors.seeds }, () => zero);
        return { kind: "vector", name, shape: t.shape, tau };
      }
      return factors.get(name, { ...opts, residual: false });
    },
    close: () => factors.close(),
  };
}

/** The GGUF name of a LoRA tensor of a base tensor ("blk.0.attn_q.weight.lora_a"). */
function loraName(tensor: string, part: "a" | "b"): string {
  return `${tensor}.lora_${part}`;
}

/**
 * Writes the genome's LoRA adapter as GGUF to `outPath` (under a temporary name, then
 * renamed): for every matrix W of the factors, A = [V_kᵀ]_k and B = [U_k diag(c_k ⊙ s_k)]_k
 * of rank K·R_W, stored as `<W>.lora_a` (ne = [in, K·R_W]) and `<W>.lora_b`
 * (ne = [K·R_W, out]); for `token_embd.weight`, which llama.cpp applies by row lookup, the
 * pair is flipped (lora_a = the per-vocabulary-row factor U diag(c ⊙ s), ne = [K·R_W,
 * n_vocab]; lora_b = V, ne = [K·R_W, n_embd]). No alpha is written, so llama.cpp adds
 * scale · B·A: load it with scale 1. 1-D tensors and residuals are not in it (see this
 * file's header). Matrices are streamed one at a time. node-llama-cpp keeps an adapter
 * loaded per file path for the model's lifetime: give every child its own path.
 *
 * Throws when the genome does not fit the factors' layout, carries Gaussian-noise terms,
 * or `opts.dtype` is not F32 or F16.
 */
export async function writeLoraAdapter(
  genome: Genome,
  factors: SeedFactors,
  outPath: string,
  opts: LoraAdapterOptions = {},
): Promise<void> {
  checkGenome("writeLoraAdapter", genome, factors.layout);
  if (genome.noise.length > 0) {
    throw new Error(
      "writeLoraAdapter: the genome has Gaussian-mutation noise, which is full-rank and has no adapter form; use SVD mutation in low-rank mode, or materialise the model in full",
    );
  }
  const dtype = opts.dtype ?? "F32";
  if (dtype !== "F32" && dtype !== "F16") {
    throw new Error(`writeLoraAdapter: dtype must be F32 or F16, got ${String(opts.dtype)}`);
  }
  const architecture = opts.architecture ?? "llama";
  const tensors: TensorToWrite[] = [];
  for (const t of factors.tensors) {
    if (t.kind !== "matrix") continue;
    const [rows, cols] = t.shape;
    const r = factors.seeds * t.rank;
    // One read of the factors serves both tensors of the pair (A first, then B).
    let pending: Promise<{ a: Float32Array; b: Float32Array }> | null = null;
    const pair = () => {
      pending ??= loraPair(genome, factors, t.name);
      return pending;
    };
    const embd = t.name === "token_embd.weight";
    tensors.push(
      {
        name: loraName(t.name, "a"),
        dtype,
        shape: embd ? [rows, r] : [r, cols],
        data: async () => (await pair()).a,
      },
      {
        name: loraName(t.name, "b"),
        dtype,
        shape: embd ? [cols, r] : [rows, r],
        data: async () => {
          const { b } = await pair();
          pending = null;
          return b;
        },
      },
    );
  }
  if (tensors.length === 0) {
    throw new Error("writeLoraAdapter: the factors have no matrices, so there is nothing to adapt");
  }
  const metadata = new Map<string, GgufValue>([
    ["general.architecture", gguf.str(architecture)],
    ["general.type", gguf.str("adapter")],
    ["adapter.type", gguf.str("lora")],
  ]);
  await writeGguf(outPath, metadata, tensors);
}

/**
 * A and B of one matrix in PyTorch order, A = [V_kᵀ]_k (K·R × cols) and B = [U_k diag(w_k)]_k
 * (rows × K·R) with w_k = c_k ⊙ s_k; for the token embedding, lora_a = B (rows × K·R) and
 * lora_b = V (cols × K·R), as llama.cpp reads that pair.
 */
async function loraPair(
  genome: Genome,
  factors: SeedFactors,
  name: string,
): Promise<{ a: Float32Array; b: Float32Array }> {
  const f = (await factors.get(name, { residual: false })) as MatrixFactors;
  const K = factors.seeds;
  const R = f.rank;
  const r = K * R;
  const c = matrixCoefficients(genome, factors.layout, name);
  const us = new Float32Array(f.rows * r);
  const vs = new Float32Array(f.cols * r);
  for (let k = 0; k < K; k++) {
    for (let j = 0; j < R; j++) {
      const w = c[k * R + j] * f.s[k][j];
      const col = k * R + j;
      for (let i = 0; i < f.rows; i++) us[i * r + col] = f.u[k][i * R + j] * w;
      for (let x = 0; x < f.cols; x++) vs[x * r + col] = f.v[k][x * R + j];
    }
  }
  if (name === "token_embd.weight") return { a: us, b: vs };
  // A = Vᵀ: K·R rows of length cols.
  const vt = new Float32Array(r * f.cols);
  for (let x = 0; x < f.cols; x++) for (let j = 0; j < r; j++) vt[j * f.cols + x] = vs[x * r + j];
  return { a: vt, b: us };
}
