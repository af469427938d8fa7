/**
 * LLaMA-family tensor names: Hugging Face (transformers) ↔ GGUF (llama.cpp), and the row
 * permutation that llama.cpp's converter applies to the Q and K projections.
 */

const GLOBAL_HF_TO_GGUF: ReadonlyMap<string, string> = new Map([
  ["model.embed_tokens.weight", "token_embd.weight"],
  ["model.norm.weight", "output_norm.weight"],
  ["lm_head.weight", "output.weight"],
]);

/** Per-layer module paths, without the `model.layers.N.` / `blk.N.` prefix and `.weight`. */
const LAYER_HF_TO_GGUF: ReadonlyMap<string, string> = new Map([
  ["input_layernorm", "attn_norm"],
  ["self_attn.q_proj", "attn_q"],
  ["self_attn.k_proj", "attn_k"],
  ["self_attn.v_proj", "attn_v"],
  ["self_attn.o_proj", "attn_output"],
  ["post_attention_layernorm", "ffn_norm"],
  ["mlp.gate_proj", "ffn_gate"],
  ["mlp.up_proj", "ffn_up"],
  ["mlp.down_proj", "ffn_down"],
]);

const GLOBAL_GGUF_TO_HF = invert(GLOBAL_HF_TO_GGUF);
const LAYER_GGUF_TO_HF = invert(LAYER_HF_TO_GGUF);

// Layer numbers without leading zeros, so that a name maps back to exactly itself.
const HF_LAYER = /^model\.layers\.(0|[1-9]\d*)\.(.+)\.weight$/;
const GGUF_LAYER = /^blk\.(0|[1-9]\d*)\.(.+)\.weight$/;

/** `model.layers.3.self_attn.q_proj.weight` → `blk.3.attn_q.weight`. */
export function hfToGgufName(name: string): string {
  const global = GLOBAL_HF_TO_GGUF.get(name);
  if (global) return global;
  const m = HF_LAYER.exec(name);
  const part = m && LAYER_HF_TO_GGUF.get(m[2]);
  if (m && part) return `blk.${m[1]}.${part}.weight`;
  throw new Error(
    `no GGUF name for Hugging Face tensor ${JSON.stringify(name)}: cycleqd maps the LLaMA layout only (embed_tokens, norm, lm_head, and per layer ${[...LAYER_HF_TO_GGUF.keys()].join(", ")})`,
  );
}

/** `blk.3.attn_q.weight` → `model.layers.3.self_attn.q_proj.weight`. */
export function ggufToHfName(name: string): string {
  const global = GLOBAL_GGUF_TO_HF.get(name);
  if (global) return global;
  const m = GGUF_LAYER.exec(name);
  const part = m && LAYER_GGUF_TO_HF.get(m[2]);
  if (m && part) return `model.layers.${m[1]}.${part}.weight`;
  throw new Error(
    `no Hugging Face name for GGUF tensor ${JSON.stringify(name)}: cycleqd maps the LLaMA layout only (token_embd, output_norm, output, and per layer ${[...LAYER_GGUF_TO_HF.keys()].join(", ")})`,
  );
}

/**
 * How many heads to permute a tensor by when converting between the layouts: `nHead` for
 * Q, `nKvHead` for K, null for every other tensor. Accepts either naming.
 */
export function qkPermuteHeads(name: string, nHead: number, nKvHead: number): number | null {
  if (/^(model\.layers\.\d+\.self_attn\.q_proj|blk\.\d+\.attn_q)\.weight$/.test(name)) return nHead;
  if (/^(model\.layers\.\d+\.self_attn\.k_proj|blk\.\d+\.attn_k)\.weight$/.test(name))
    return nKvHead;
  return null;
}

/**
 * Hugging Face → GGUF row order of a Q or K projection ([rows, cols], row-major).
 * HF lays each head out for rotate-half RoPE (first half of the head's rows, then second
 * half); GGUF `llama` pairs adjacent rows (2i, 2i+1). Same as llama.cpp's converter:
 * `w.reshape(n_head, 2, rows // n_head // 2, cols).swapaxes(1, 2).reshape(w.shape)`.
 */
export function permuteQKHfToGguf(
  w: Float32Array,
  rows: number,
  cols: number,
  nHead: number,
): Float32Array {
  return permuteRows(w, rows, cols, nHead, (h, j, s, headDim, half) => [
    h * headDim + 2 * j + s,
    h * headDim + s * half + j,
  ]);
}

/** Exact inverse of `permuteQKHfToGguf`. */
export function permuteQKGgufToHf(
  w: Float32Array,
  rows: number,
  cols: number,
  nHead: number,
): Float32Array {
  return permuteRows(w, rows, cols, nHead, (h, j, s, headDim, half) => [
    h * headDim + s * half + j,
    h * headDim + 2 * j + s,
  ]);
}

/** Copies rows by a map (head h, pair j, side s) → [destination row, source row]. */
function permuteRows(
  w: Float32Array,
  rows: number,
  cols: number,
  nHead: number,
  map: (h: number, j: number, s: number, headDim: number, half: number) => [number, number],
): Float32Array {
  checkPermuteArgs(w, rows, cols, nHead);
  const headDim = rows / nHead;
  const half = headDim / 2;
  const out = new Float32Array(w.length);
  for (let h = 0; h < nHead; h++) {
    for (let j = 0; j < half; j++) {
      for (let s = 0; s < 2; s++) {
        const [to, from] = map(h, j, s, headDim, half);
        out.set(w.subarray(from * cols, (from + 1) * cols), to * cols);
      }
    }
  }
  return out;
}

function checkPermuteArgs(w: Float32Array, rows: number, cols: number, nHead: number): void {
  for (const [label, v] of [
    ["rows", rows],
    ["cols", cols],
    ["nHead", nHead],
  ] as const) {
    if (!Number.isSafeInteger(v) || v <= 0) {
      throw new Error(`Q/K permutation: ${label} must be a positive integer, got ${v}`);
    }
  }
  if (w.length !== rows * cols) {
    throw new Error(
      `Q/K permutation: weight has ${w.length} values, not rows·cols = ${rows * cols}`,
    );
  }
  if (rows % (2 * nHead) !== 0) {
    throw new Error(
      `Q/K permutation: ${rows} rows do not split into ${nHead} heads of even size; pass n_head for Q and n_kv_heads for K`,
    );
  }
}

function invert(map: ReadonlyMap<string, string>): ReadonlyMap<string, string> {
  return new Map([...map].map(([a, b]) => [b, a]));
}
