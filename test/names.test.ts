import assert from "node:assert/strict";
import { test } from "node:test";
import {
  ggufToHfName,
  hfToGgufName,
  permuteQKGgufToHf,
  permuteQKHfToGguf,
  qkPermuteHeads,
} from "../src/tensors/names.ts";
import { Rng } from "../src/util/rng.ts";

const PAIRS: [string, string][] = [
  ["model.embed_tokens.weight", "token_embd.weight"],
  ["model.norm.weight", "output_norm.weight"],
  ["lm_head.weight", "output.weight"],
  ["model.layers.0.input_layernorm.weight", "blk.0.attn_norm.weight"],
  ["model.layers.0.self_attn.q_proj.weight", "blk.0.attn_q.weight"],
  ["model.layers.1.self_attn.k_proj.weight", "blk.1.attn_k.weight"],
  ["model.layers.2.self_attn.v_proj.weight", "blk.2.attn_v.weight"],
  ["model.layers.3.self_attn.o_proj.weight", "blk.3.attn_output.weight"],
  ["model.layers.10.post_attention_layernorm.weight", "blk.10.ffn_norm.weight"],
  ["model.layers.31.mlp.gate_proj.weight", "blk.31.ffn_gate.weight"],
  ["model.layers.31.mlp.up_proj.weight", "blk.31.ffn_up.weight"],
  ["model.layers.127.mlp.down_proj.weight", "blk.127.ffn_down.weight"],
];

test("HF and GGUF names map both ways", () => {
  for (const [hf, gguf] of PAIRS) {
    assert.equal(hfToGgufName(hf), gguf);
    assert.equal(ggufToHfName(gguf), hf);
  }
});

test("unknown names fail with a message naming them", () => {
  for (const name of [
    "model.layers.0.self_attn.rotary_emb.inv_freq",
    "model.layers.x.mlp.up_proj.weight",
    "model.layers.01.mlp.up_proj.weight",
    "model.layers.0.self_attn.q_proj.bias",
    "token_embd.weight",
  ]) {
    assert.throws(() => hfToGgufName(name), new RegExp(`no GGUF name for .*${escapeRegExp(name)}`));
  }
  for (const name of ["blk.0.attn_qkv.weight", "blk.01.attn_q.weight", "model.norm.weight"]) {
    assert.throws(
      () => ggufToHfName(name),
      new RegExp(`no Hugging Face name .*${escapeRegExp(name)}`),
    );
  }
});

test("qkPermuteHeads picks n_head for Q, n_kv_heads for K, nothing else", () => {
  assert.equal(qkPermuteHeads("model.layers.4.self_attn.q_proj.weight", 8, 2), 8);
  assert.equal(qkPermuteHeads("blk.4.attn_q.weight", 8, 2), 8);
  assert.equal(qkPermuteHeads("model.layers.4.self_attn.k_proj.weight", 8, 2), 2);
  assert.equal(qkPermuteHeads("blk.4.attn_k.weight", 8, 2), 2);
  assert.equal(qkPermuteHeads("blk.4.attn_v.weight", 8, 2), null);
  assert.equal(qkPermuteHeads("model.layers.4.self_attn.o_proj.weight", 8, 2), null);
});

test("Q/K permutation on a hand-checked case", () => {
  // 2 heads of 4 rows, 2 columns; row r holds [10r, 10r + 1].
  const w = Float32Array.from({ length: 16 }, (_, i) => 10 * Math.floor(i / 2) + (i % 2));
  const gguf = permuteQKHfToGguf(w, 8, 2, 2);
  // reshape(2, 2, 2, cols).swapaxes(1, 2): row order 0 2 1 3 | 4 6 5 7.
  const rowOrder = [0, 2, 1, 3, 4, 6, 5, 7];
  assert.deepEqual(
    [...gguf],
    rowOrder.flatMap((r) => [10 * r, 10 * r + 1]),
  );
  assert.deepEqual([...permuteQKGgufToHf(gguf, 8, 2, 2)], [...w]);
});

test("Q/K permutation: GGUF→HF inverts HF→GGUF (and vice versa)", () => {
  const rng = new Rng(7);
  for (const [rows, cols, nHead] of [
    [24, 5, 3],
    [16, 3, 1],
    [64, 2, 8],
  ]) {
    const w = Float32Array.from({ length: rows * cols }, () => rng.normal());
    assert.deepEqual(
      permuteQKGgufToHf(permuteQKHfToGguf(w, rows, cols, nHead), rows, cols, nHead),
      w,
    );
    assert.deepEqual(
      permuteQKHfToGguf(permuteQKGgufToHf(w, rows, cols, nHead), rows, cols, nHead),
      w,
    );
  }
});

test("Q/K permutation turns rotate-half RoPE into adjacent-pair RoPE", () => {
  const rng = new Rng(3);
  const [nHead, headDim, cols, pos] = [2, 8, 5, 7];
  const rows = nHead * headDim;
  const w = Float32Array.from({ length: rows * cols }, () => rng.normal());
  const x = Float64Array.from({ length: cols }, () => rng.normal());
  const hf = ropeRotateHalf(matVec(w, rows, cols, x), nHead, headDim, pos);
  const gguf = ropeAdjacent(
    matVec(permuteQKHfToGguf(w, rows, cols, nHead), rows, cols, x),
    nHead,
    headDim,
    pos,
  );
  // GGUF's rotated query is HF's rotated query with rows permuted the same way as W.
  const expected = permuteQKHfToGguf(Float32Array.from(hf), rows, 1, nHead);
  for (let i = 0; i < rows; i++) assert.ok(Math.abs(gguf[i] - expected[i]) < 1e-5, `row ${i}`);
});

test("Q/K permutation rejects shapes it cannot split", () => {
  const w = new Float32Array(12);
  assert.throws(
    () => permuteQKHfToGguf(w, 6, 2, 2),
    /6 rows do not split into 2 heads of even size/,
  );
  assert.throws(() => permuteQKHfToGguf(w, 4, 2, 2), /weight has 12 values, not rows·cols = 8/);
  assert.throws(() => permuteQKGgufToHf(w, 12, 1, 0), /nHead must be a positive integer/);
});

function matVec(w: Float32Array, rows: number, cols: number, x: Float64Array): Float64Array {
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) out[r] += w[r * cols + c] * x[c];
  }
  return out;
}

/** Hugging Face LLaMA RoPE: dimension i pairs with i + headDim/2. */
function ropeRotateHalf(
  q: Float64Array,
  nHead: number,
  headDim: number,
  pos: number,
): Float64Array {
  const out = new Float64Array(q.length);
  const half = headDim / 2;
  for (let h = 0; h < nHead; h++) {
    for (let i = 0; i < half; i++) {
      const [a, b] = [h * headDim + i, h * headDim + i + half];
      const angle = pos * 10000 ** (-(2 * i) / headDim);
      out[a] = q[a] * Math.cos(angle) - q[b] * Math.sin(angle);
      out[b] = q[b] * Math.cos(angle) + q[a] * Math.sin(angle);
    }
  }
  return out;
}

/** llama.cpp `llama` RoPE: dimension 2i pairs with 2i + 1. */
function ropeAdjacent(q: Float64Array, nHead: number, headDim: number, pos: number): Float64Array {
  const out = new Float64Array(q.length);
  for (let h = 0; h < nHead; h++) {
    for (let i = 0; i < headDim / 2; i++) {
      const [a, b] = [h * headDim + 2 * i, h * headDim + 2 * i + 1];
      const angle = pos * 10000 ** (-(2 * i) / headDim);
      out[a] = q[a] * Math.cos(angle) - q[b] * Math.sin(angle);
      out[b] = q[b] * Math.cos(angle) + q[a] * Math.sin(angle);
    }
  }
  return out;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
