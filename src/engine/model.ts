/**
 * A model loaded into llama.cpp: one context holding `parallel` sequences, and greedy
 * generation and log-prob scoring over them. Generation runs the batch loop (greedy-batch.ts)
 * or, with decodeLoop "evaluate", node-llama-cpp's own generators: a call's requests form a
 * work queue, every sequence takes the next request, clears its history and decodes greedily,
 * and because all sequences run concurrently node-llama-cpp packs their tokens into shared
 * batches. Sequences are driven directly (not through LlamaCompletion, which adds its own BOS
 * and a repeat penalty), with temperature 0, so the next token is the argmax of the logits.
 */
import type {
  ControlledEvaluateInputItem,
  LlamaContext,
  LlamaContextSequence,
  LlamaModel,
  Token,
} from "node-llama-cpp";
import { errorMessage, type LogBuffer } from "./errors.ts";
import { generateGreedyBatch } from "./greedy-batch.ts";
import { type BatchInternals, sequenceId } from "./internals.ts";
import {
  findStop,
  validateGenerateRequests,
  validateParallel,
  validateScoreRequests,
} from "./requests.ts";
import { SequencePool } from "./sequence-pool.ts";
import type {
  EngineModel,
  GenerateOptions,
  GenerateRequest,
  GenerateResult,
  ScoreRequest,
  ScoreResult,
} from "./types.ts";

export class LlamaCppModel implements EngineModel {
  readonly contextSize: number;
  readonly parallel: number;
  private readonly pool: SequencePool;
  private readonly addBos: boolean;
  private readonly bos: Token | null;
  private disposed = false;
  private turn: Promise<unknown> = Promise.resolve();

  constructor(
    readonly path: string,
    private readonly model: LlamaModel,
    private readonly context: LlamaContext,
    sequences: LlamaContextSequence[],
    private readonly logs: LogBuffer,
    /** Set: generate with the batch loop; null: with node-llama-cpp's evaluate. */
    private readonly internals: BatchInternals | null,
    private readonly onDispose: () => void,
    /** Frees what the context ran on: the model itself, or an adapter on a shared base. */
    private readonly release: () => Promise<void> = () => model.dispose(),
  ) {
    this.contextSize = context.contextSize;
    this.parallel = sequences.length;
    this.pool = new SequencePool(sequences);
    this.bos = model.tokens.bos;
    this.addBos = model.tokens.shouldPrependBosToken && this.bos !== null;
  }

  tokenize(text: string, opts: { special?: boolean } = {}): number[] {
    this.checkAlive("tokenize");
    if (typeof text !== "string") throw new Error("tokenize needs a string");
    return this.model.tokenize(text, opts.special === true);
  }

  detokenize(tokens: readonly number[]): string {
    this.checkAlive("detokenize");
    return this.model.detokenize(tokens as Token[], false);
  }

  async generate(
    requests: GenerateRequest[],
    opts: GenerateOptions = {},
  ): Promise<GenerateResult[]> {
    this.checkAlive("generate");
    validateGenerateRequests(requests);
    const parallel =
      opts.parallel === undefined ? this.parallel : validateParallel(opts.parallel, "parallel");
    const prompts = requests.map((r, i) =>
      this.promptTokens(r.prompt, r.special === true, `generate request ${i}`),
    );
    prompts.forEach((p, i) => {
      if (p.length >= this.contextSize) {
        throw new Error(
          `generate request ${i}: the prompt has ${p.length} tokens but ${this.path} was loaded ` +
            `with contextSize ${this.contextSize}; shorten the prompt or load with a larger contextSize`,
        );
      }
    });
    if (this.internals)
      return this.exclusive(() => this.generateBatched(requests, prompts, parallel, opts));
    return this.runQueue(requests.length, parallel, async (seq, i) => {
      const result = await this.generateOne(seq, prompts[i], requests[i]);
      opts.onResult?.(i, result);
      return result;
    });
  }

  /** generate() over `parallel` sequences at once through the batch loop. */
  private async generateBatched(
    requests: GenerateRequest[],
    prompts: Token[][],
    parallel: number,
    opts: GenerateOptions,
  ): Promise<GenerateResult[]> {
    const width = Math.min(requests.length, parallel, this.parallel);
    if (width === 0) return [];
    const seqs = await Promise.all(Array.from({ length: width }, () => this.pool.acquire()));
    // Ascending ids: llama.cpp splits a batch whose sequences are out of order into several
    // decodes (one stream per sequence), which made every other call ~1.5× slower.
    seqs.sort((x, y) => sequenceId(x) - sequenceId(y));
    const mark = this.logs.mark();
    try {
      // Empty, for node-llama-cpp's bookkeeping as much as for the cache.
      for (const seq of seqs) await seq.clearHistory();
      return await generateGreedyBatch({
        model: this.model,
        internals: this.internals as BatchInternals,
        sequenceIds: seqs.map(sequenceId),
        prompts,
        requests,
        contextSize: this.contextSize,
        batchSize: this.context.batchSize,
        onResult: opts.onResult,
        cancelled: () => this.disposed,
      });
    } catch (e) {
      if (this.disposed)
        throw new Error(`the model ${this.path} was disposed while requests were running`);
      throw new Error(
        `inference on ${this.path} failed: ${errorMessage(e)}${await this.logs.since(mark)}`,
      );
    } finally {
      for (const seq of seqs) this.pool.release(seq);
    }
  }

  async score(requests: ScoreRequest[]): Promise<ScoreResult[]> {
    this.checkAlive("score");
    validateScoreRequests(requests);
    const inputs = requests.map((r, i) => {
      const special = r.special === true;
      const prompt = this.promptTokens(r.prompt, special, `score request ${i}`);
      const continuation = this.continuationTokens(r.prompt, r.continuation, special);
      if (prompt.length === 0) {
        throw new Error(
          `score request ${i}: the prompt is empty and ${this.path} adds no BOS token, so the ` +
            "first continuation token has nothing to be conditioned on",
        );
      }
      if (prompt.length + continuation.length > this.contextSize) {
        throw new Error(
          `score request ${i}: prompt and continuation take ${prompt.length + continuation.length} ` +
            `tokens but the context holds ${this.contextSize}; load with a larger contextSize`,
        );
      }
      return { prompt, continuation };
    });
    const run = () =>
      this.runQueue(requests.length, this.parallel, (seq, i) =>
        this.scoreOne(seq, inputs[i].prompt, inputs[i].continuation),
      );
    return this.internals ? this.exclusive(run) : run();
  }

  /**
   * Runs `fn` when no other exclusive call runs: the batch loop and node-llama-cpp's own
   * scheduler fill the same native batch, so they must never interleave.
   */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.turn.then(fn);
    this.turn = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.onDispose();
    // Context first: it holds the sequences and the KV cache that point into the model.
    await this.context.dispose();
    await this.release();
  }

  private checkAlive(what: string): void {
    if (this.disposed) throw new Error(`${what}: the model ${this.path} has been disposed`);
  }

  /** With `special`, a prompt that starts with BOS (chat-template output) keeps that one. */
  private promptTokens(prompt: string, special: boolean, what: string): Token[] {
    const tokens = this.model.tokenize(prompt, special);
    if (this.addBos && !(special && tokens[0] === this.bos)) tokens.unshift(this.bos as Token);
    if (tokens.length === 0) {
      throw new Error(`${what}: the prompt is empty and the model adds no BOS token`);
    }
    return tokens;
  }

  /**
   * The continuation's tokens as they fall in the tokenization of prompt + continuation (so a
   * merge across the boundary is scored as the model would read the full text); tokenized on
   * its own when the prompt's tokens are not a prefix of the joint tokenization.
   */
  private continuationTokens(prompt: string, continuation: string, special: boolean): Token[] {
    const alone = this.model.tokenize(prompt, special);
    const joint = this.model.tokenize(prompt + continuation, special);
    const isPrefix = alone.length < joint.length && alone.every((t, i) => joint[i] === t);
    return isPrefix ? joint.slice(alone.length) : this.model.tokenize(continuation, special);
  }

  /**
   * Runs `n` jobs over at most `parallel` sequences; results in job order. The first failure
   * stops the other workers from taking new jobs and is rethrown with the model's path.
   */
  private async runQueue<R>(
    n: number,
    parallel: number,
    job: (seq: LlamaContextSequence, index: number) => Promise<R>,
  ): Promise<R[]> {
    const results = new Array<R>(n);
    let next = 0;
    let failure: unknown;
    const mark = this.logs.mark();
    const worker = async () => {
      const seq = await this.pool.acquire();
      try {
        while (failure === undefined && next < n && !this.disposed) {
          const i = next++;
          try {
            results[i] = await job(seq, i);
          } catch (e) {
            failure ??= e;
          }
        }
      } finally {
        this.pool.release(seq);
      }
    };
    const workers = Math.min(n, parallel, this.parallel);
    await Promise.all(Array.from({ length: workers }, worker));
    if (failure !== undefined) {
      throw new Error(
        `inference on ${this.path} failed: ${errorMessage(failure)}${await this.logs.since(mark)}`,
      );
    }
    if (next < n)
      throw new Error(`the model ${this.path} was disposed while requests were running`);
    return results;
  }

  private async generateOne(
    seq: LlamaContextSequence,
    prompt: Token[],
    request: GenerateRequest,
  ): Promise<GenerateResult> {
    await seq.clearHistory();
    const stops = request.stop ?? [];
    const special = request.special === true;
    const longestStop = stops.reduce((m, s) => Math.max(m, s.length), 0);
    // Stop before the sequence is full: node-llama-cpp would otherwise shift the context.
    const budget = Math.min(request.maxTokens, this.contextSize - prompt.length);
    const generated: Token[] = [];
    let count = 0;
    let finish: GenerateResult["finish"] = "length";
    let text: string | undefined;
    let checked = 0;
    for await (const token of seq.evaluate(prompt, { temperature: 0, yieldEogToken: true })) {
      count++;
      if (this.model.isEogToken(token)) {
        finish = "eos";
        break;
      }
      generated.push(token);
      if (longestStop > 0) {
        const current = this.model.detokenize(generated, special);
        // A stop string completed by the newest token starts at most longestStop - 1 characters
        // before the previously checked end; a partial UTF-8 tail can shift that end by one.
        const at = findStop(current, stops, checked - longestStop - 1);
        checked = current.length;
        if (at >= 0) {
          finish = "stop";
          text = current.slice(0, at);
          break;
        }
      }
      if (count >= budget) break;
    }
    return { text: text ?? this.model.detokenize(generated, special), tokens: count, finish };
  }

  private async scoreOne(
    seq: LlamaContextSequence,
    prompt: Token[],
    continuation: Token[],
  ): Promise<ScoreResult> {
    await seq.clearHistory();
    const first = prompt.length - 1;
    const all = [...prompt, ...continuation];
    const input: ControlledEvaluateInputItem[] = all
      .slice(0, -1)
      .map((t, i) =>
        i >= first
          ? [t, { generateNext: { probabilities: true, options: { temperature: 0 } } }]
          : t,
      );
    const out = await seq.controlledEvaluate(input);
    const logprobs: number[] = [];
    let greedy = true;
    for (let j = 0; j < continuation.length; j++) {
      // With temperature 0 the sampler chain only picks the argmax, so these probabilities are
      // the plain softmax of the logits.
      const probabilities = out[first + j]?.next.probabilities;
      if (probabilities === undefined) throw new Error("llama.cpp returned no probabilities");
      const target = continuation[j];
      logprobs.push(Math.log(probabilities.get(target) ?? 0));
      // The map is sorted by probability, highest first.
      const top = probabilities.keys().next().value;
      if (top !== target) greedy = false;
    }
    const sum = logprobs.reduce((a, b) => a + b, 0);
    return { logprobs, sum, mean: sum / logprobs.length, greedy };
  }
}
