/**
 * Row-wise kernels of the tiny LLaMA (everything that is not a matrix product), forward and
 * backward. Plain loops over typed arrays, no allocation per element.
 */

/**
 * RMSNorm of each of `rows` rows of width `dim`: y = x / sqrt(mean(x²) + eps) · w.
 * Writes y into `out` and each row's 1/rms into `invRms` (kept for the backward pass).
 */
export function rmsnormForward(
  x: Float32Array,
  w: Float32Array,
  rows: number,
  dim: number,
  eps: number,
  out: Float32Array,
  invRms: Float32Array,
): void {
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    let ss = 0;
    for (let j = 0; j < dim; j++) {
      const v = x[o + j];
      ss += v * v;
    }
    // llama.cpp sums in double and keeps the scale in float.
    const scale = Math.fround(1 / Math.sqrt(ss / dim + eps));
    invRms[r] = scale;
    for (let j = 0; j < dim; j++) out[o + j] = Math.fround(x[o + j] * scale) * w[j];
  }
}

/**
 * Backward of `rmsnormForward`: adds into `dx` and `dw`.
 * With y = x·s·w and s = (mean(x²)+eps)^-½: dx = s·(dy⊙w) − x·s³/dim · Σ(dy⊙w⊙x).
 */
export function rmsnormBackward(
  x: Float32Array,
  w: Float32Array,
  invRms: Float32Array,
  dy: Float32Array,
  rows: number,
  dim: number,
  dx: Float32Array,
  dw: Float32Array,
): void {
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    const s = invRms[r];
    let dot = 0;
    for (let j = 0; j < dim; j++) {
      const g = dy[o + j];
      const xv = x[o + j];
      dot += g * w[j] * xv;
      dw[j] += g * xv * s;
    }
    const k = (dot * s * s * s) / dim;
    for (let j = 0; j < dim; j++) dx[o + j] += s * dy[o + j] * w[j] - x[o + j] * k;
  }
}

/**
 * SwiGLU on rows of [gate | up] (width 2·ffn): a = silu(gate) · up.
 * Keeps sigmoid(gate) in `sig` for the backward pass.
 */
export function swigluForward(
  gu: Float32Array,
  rows: number,
  ffn: number,
  out: Float32Array,
  sig: Float32Array,
): void {
  for (let r = 0; r < rows; r++) {
    const gOff = r * 2 * ffn;
    const uOff = gOff + ffn;
    const o = r * ffn;
    for (let j = 0; j < ffn; j++) {
      const g = gu[gOff + j];
      const s = 1 / (1 + Math.exp(-g));
      sig[o + j] = s;
      out[o + j] = g * s * gu[uOff + j];
    }
  }
}

/** Backward of `swigluForward`: writes d[gate | up] into `dgu`. */
export function swigluBackward(
  gu: Float32Array,
  sig: Float32Array,
  da: Float32Array,
  rows: number,
  ffn: number,
  dgu: Float32Array,
): void {
  for (let r = 0; r < rows; r++) {
    const gOff = r * 2 * ffn;
    const uOff = gOff + ffn;
    const o = r * ffn;
    for (let j = 0; j < ffn; j++) {
      const g = gu[gOff + j];
      const s = sig[o + j];
      const d = da[o + j];
      const silu = g * s;
      dgu[uOff + j] = d * silu;
      dgu[gOff + j] = d * gu[uOff + j] * s * (1 + g * (1 - s));
    }
  }
}

/**
 * Masked mean cross-entropy of `logits` [rows, vocab] against `targets`.
 * Overwrites `logits` with d(loss)/d(logits) when `grad` is true. Rows whose mask is 0 add
 * nothing; the mean is over the sum of the mask.
 */
export function crossEntropy(
  logits: Float32Array,
  targets: Int32Array,
  mask: Float32Array,
  rows: number,
  vocab: number,
  grad: boolean,
): { loss: number; weight: number } {
  let weight = 0;
  for (let r = 0; r < rows; r++) weight += mask[r];
  let loss = 0;
  const norm = weight > 0 ? 1 / weight : 0;
  for (let r = 0; r < rows; r++) {
    const o = r * vocab;
    const m = mask[r];
    if (m === 0) {
      if (grad) logits.fill(0, o, o + vocab);
      continue;
    }
    let max = Number.NEGATIVE_INFINITY;
    for (let j = 0; j < vocab; j++) if (logits[o + j] > max) max = logits[o + j];
    const t = targets[r];
    const target = logits[o + t];
    let sum = 0;
    for (let j = 0; j < vocab; j++) {
      const e = Math.exp(logits[o + j] - max);
      if (grad) logits[o + j] = e;
      sum += e;
    }
    loss += m * (Math.log(sum) + max - target);
    if (grad) {
      const k = (m * norm) / sum;
      for (let j = 0; j < vocab; j++) logits[o + j] *= k;
      logits[o + t] -= m * norm;
    }
  }
  return { loss: loss * norm, weight };
}
