/**
 * Greedy generation driven batch by batch: one llama.cpp decode per step for every running
 * sequence, then one greedy sample per sequence, as a C loop over libllama would do it. It
 * replaces node-llama-cpp's per-sequence `evaluate` generators, whose per-token locks,
 * sampler configuration and promise chains cost more than the decode itself on small
 * models (bench:engine-loop: 1.6–1.8× faster, the same tokens).
 *
 * It drives node-llama-cpp's internal native context (`_ctx`) and sampler binding, which
 * internals.ts hands over only on the version they were written for; the outputs equal the
 * `evaluate` path's token for token (test/engine-parity.test.ts and bench:engine-loop check
 * it against one sequence at a time).
 */
import type { LlamaModel, Token } from "node-llama-cpp";
import type { BatchInternals } from "./internals.ts";
import { findStop } from "./requests.ts";
import type { GenerateRequest, GenerateResult } from "./types.ts";

interface Slot {
  request: number;
  /** Tokens of this sequence in the KV cache. */
  position: number;
  /** Tokens still to be decoded: the prompt, then each sampled token. */
  pending: Token[];
  generated: Token[];
  count: number;
  budget: number;
  checked: number;
  stops: string[];
  /** Length of the longest stop string (0: none). */
  longest: number;
  /** Spell special tokens in the text (GenerateRequest.special). */
  special: boolean;
}

export interface GreedyBatchJob {
  model: LlamaModel;
  internals: BatchInternals;
  /** Native sequence ids to decode on, each with an empty KV cache. */
  sequenceIds: number[];
  /** Tokens per request (BOS included); each shorter than contextSize. */
  prompts: Token[][];
  requests: GenerateRequest[];
  contextSize: number;
  /** The most tokens one decode takes (the context's batch size). */
  batchSize: number;
  onResult?: (index: number, result: GenerateResult) => void;
  /** Checked between steps: stop when the model is being disposed. */
  cancelled: () => boolean;
}

/** Greedy completions of every request, in request order; the KV cells it used are freed. */
export async function generateGreedyBatch(job: GreedyBatchJob): Promise<GenerateResult[]> {
  const { model, internals, sequenceIds, prompts, requests } = job;
  const { native } = internals;
  const results = new Array<GenerateResult>(requests.length);
  // One sampler per sequence: a sampler's candidate buffer is not safe to share between the
  // thread pool's jobs.
  const samplers = sequenceIds.map(() => internals.newSampler());
  const slots: (Slot | null)[] = sequenceIds.map(() => null);
  let next = 0;
  const take = (k: number) => {
    native.removeTokenCellsFromSequence(sequenceIds[k], 0, job.contextSize);
    if (next >= requests.length) {
      slots[k] = null;
      return;
    }
    const i = next++;
    slots[k] = {
      request: i,
      position: 0,
      pending: [...prompts[i]],
      generated: [],
      count: 0,
      // Stop before the sequence is full, as the evaluate path does.
      budget: Math.min(requests[i].maxTokens, job.contextSize - prompts[i].length),
      checked: 0,
      stops: requests[i].stop ?? [],
      longest: (requests[i].stop ?? []).reduce((m, x) => Math.max(m, x.length), 0),
      special: requests[i].special === true,
    };
  };
  const finish = (k: number, result: GenerateResult) => {
    const s = slots[k] as Slot;
    results[s.request] = result;
    job.onResult?.(s.request, result);
    take(k);
  };
  try {
    for (let k = 0; k < sequenceIds.length; k++) take(k);
    for (;;) {
      if (job.cancelled()) throw new Error("the model was disposed while requests were running");
      const running = slots.flatMap((s, k) => (s ? [k] : []));
      if (running.length === 0) break;
      // Fill one batch; a prompt longer than what is left waits, or, alone, goes in parts.
      const batch: { k: number; row: number | null }[] = [];
      let size = 0;
      native.initBatch(
        Math.min(
          job.batchSize,
          running.reduce((n, k) => n + (slots[k] as Slot).pending.length, 0),
        ),
      );
      for (const k of running) {
        const s = slots[k] as Slot;
        const room = job.batchSize - size;
        if (room === 0 || (s.pending.length > room && size > 0)) continue;
        const part = s.pending.slice(0, room);
        const last = part.length === s.pending.length;
        const rows = native.addToBatch(
          sequenceIds[k],
          s.position,
          Uint32Array.from(part),
          last ? Uint32Array.from([part.length - 1]) : new Uint32Array(0),
        );
        s.position += part.length;
        s.pending = s.pending.slice(part.length);
        size += part.length;
        batch.push({ k, row: last ? rows[0] : null });
      }
      await native.decodeBatch();
      const sampled = await Promise.all(
        batch.map(({ k, row }) => (row === null ? null : native.sampleToken(row, samplers[k]))),
      );
      batch.forEach(({ k }, j) => {
        const token = sampled[j];
        if (token === null) return;
        if (token === -1) throw new Error("llama.cpp failed to sample the next token");
        const s = slots[k] as Slot;
        s.count++;
        if (model.isEogToken(token as Token)) {
          finish(k, {
            text: model.detokenize(s.generated, s.special),
            tokens: s.count,
            finish: "eos",
          });
          return;
        }
        s.generated.push(token as Token);
        if (s.longest > 0) {
          const current = model.detokenize(s.generated, s.special);
          const at = findStop(current, s.stops, s.checked - s.longest - 1);
          s.checked = current.length;
          if (at >= 0) {
            finish(k, { text: current.slice(0, at), tokens: s.count, finish: "stop" });
            return;
          }
        }
        if (s.count >= s.budget) {
          finish(k, {
            text: model.detokenize(s.generated, s.special),
            tokens: s.count,
            finish: "length",
          });
          return;
        }
        s.pending = [token as Token];
      });
    }
    return results;
  } finally {
    for (const id of sequenceIds) native.removeTokenCellsFromSequence(id, 0, job.contextSize);
    for (const s of samplers) s.dispose();
  }
}
