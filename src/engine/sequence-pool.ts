/**
 * The pool of a model's context sequences: their number is fixed at load, so concurrent
 * generate and score calls on one model take turns with them.
 */
import type { LlamaContextSequence } from "node-llama-cpp";

/** Sequences handed out one caller at a time, so concurrent calls on a model share them. */
export class SequencePool {
  private readonly free: LlamaContextSequence[];
  private readonly waiting: ((seq: LlamaContextSequence) => void)[] = [];

  constructor(sequences: LlamaContextSequence[]) {
    this.free = [...sequences];
  }

  acquire(): Promise<LlamaContextSequence> {
    const seq = this.free.pop();
    if (seq !== undefined) return Promise.resolve(seq);
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  release(seq: LlamaContextSequence): void {
    const waiter = this.waiting.shift();
    if (waiter !== undefined) waiter(seq);
    else this.free.push(seq);
  }
}
