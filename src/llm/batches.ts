/**
 * Training batches drawn by a seeded generator: windows of a token stream (loss everywhere),
 * or (prompt, answer) examples with the loss on the answer only.
 */
import type { Rng } from "../util/rng.ts";
import type { Batch } from "./backward.ts";

/** One supervised example; the model learns to continue `prompt` with `answer`. */
export interface Example {
  prompt: Int32Array;
  answer: Int32Array;
}

export type TrainData =
  | { kind: "stream"; tokens: Int32Array }
  | { kind: "examples"; examples: Example[] };

/** Throws unless the data can fill batches of sequence length up to `seqLen`. */
export function checkTrainData(data: TrainData, seqLen: number, vocabSize: number): void {
  const checkIds = (ids: Int32Array, what: string) => {
    if (!(ids instanceof Int32Array)) throw new Error(`${what} must be an Int32Array`);
    for (let i = 0; i < ids.length; i++) {
      if (ids[i] < 0 || ids[i] >= vocabSize) {
        throw new Error(`${what}[${i}] = ${ids[i]} is outside the vocabulary 0..${vocabSize - 1}`);
      }
    }
  };
  if (data?.kind === "stream") {
    checkIds(data.tokens, "training stream");
    if (data.tokens.length < seqLen + 1) {
      throw new Error(
        `the training stream has ${data.tokens.length} tokens; it needs at least seqLen + 1 = ${seqLen + 1}`,
      );
    }
  } else if (data?.kind === "examples") {
    if (!Array.isArray(data.examples) || data.examples.length === 0) {
      throw new Error("training examples must be a non-empty array of {prompt, answer}");
    }
    data.examples.forEach((ex, i) => {
      checkIds(ex.prompt, `examples[${i}].prompt`);
      checkIds(ex.answer, `examples[${i}].answer`);
      if (ex.prompt.length === 0) throw new Error(`examples[${i}] has an empty prompt`);
      if (ex.answer.length === 0) throw new Error(`examples[${i}] has an empty answer`);
      if (ex.answer.length > seqLen) {
        throw new Error(
          `examples[${i}] has a ${ex.answer.length}-token answer, longer than seqLen ${seqLen}`,
        );
      }
    });
  } else {
    throw new Error(
      'training data must be {kind: "stream", tokens} or {kind: "examples", examples}',
    );
  }
}

/** B random windows of T+1 consecutive tokens; every position carries loss. */
export function sampleStreamBatch(tokens: Int32Array, B: number, T: number, rng: Rng): Batch {
  const inputs = new Int32Array(B * T);
  const targets = new Int32Array(B * T);
  const starts = tokens.length - T;
  for (let b = 0; b < B; b++) {
    const o = rng.int(starts);
    inputs.set(tokens.subarray(o, o + T), b * T);
    targets.set(tokens.subarray(o + 1, o + T + 1), b * T);
  }
  return { B, T, inputs, targets, mask: new Float32Array(B * T).fill(1) };
}

/**
 * B random examples, one per row, each prompt + answer. T is the longest example in the
 * batch (at most maxT); a longer example loses the start of its prompt. Padding carries no
 * loss; the mask is 1 exactly where the target is an answer token.
 */
export function sampleExampleBatch(examples: Example[], B: number, maxT: number, rng: Rng): Batch {
  const picked = Array.from({ length: B }, () => examples[rng.int(examples.length)]);
  const T = Math.min(maxT, Math.max(...picked.map((e) => e.prompt.length + e.answer.length - 1)));
  const inputs = new Int32Array(B * T);
  const targets = new Int32Array(B * T);
  const mask = new Float32Array(B * T);
  picked.forEach((ex, b) => {
    const seq = new Int32Array(ex.prompt.length + ex.answer.length);
    seq.set(ex.prompt);
    seq.set(ex.answer, ex.prompt.length);
    const cut = Math.max(0, seq.length - (T + 1));
    const used = seq.subarray(cut);
    const answerStart = ex.prompt.length - cut;
    for (let t = 0; t + 1 < used.length; t++) {
      inputs[b * T + t] = used[t];
      targets[b * T + t] = used[t + 1];
      if (t + 1 >= answerStart) mask[b * T + t] = 1;
    }
  });
  return { B, T, inputs, targets, mask };
}

/** FNV-1a over the data, so a checkpoint can refuse to resume on different data. */
export function dataFingerprint(data: TrainData): string {
  let h = 0x811c9dc5;
  const mix = (x: number) => {
    h = Math.imul(h ^ (x & 0xff), 0x01000193);
    h = Math.imul(h ^ ((x >>> 8) & 0xff), 0x01000193);
    h = Math.imul(h ^ ((x >>> 16) & 0xff), 0x01000193);
    h = Math.imul(h ^ (x >>> 24), 0x01000193);
  };
  if (data.kind === "stream") {
    mix(data.tokens.length);
    for (const t of data.tokens) mix(t);
  } else {
    mix(data.examples.length);
    for (const ex of data.examples) {
      mix(ex.prompt.length);
      for (const t of ex.prompt) mix(t);
      mix(ex.answer.length);
      for (const t of ex.answer) mix(t);
    }
  }
  return `${data.kind}:${(h >>> 0).toString(16).padStart(8, "0")}`;
}
