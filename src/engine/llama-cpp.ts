/**
 * In-process inference with llama.cpp through node-llama-cpp (pinned to 3.21.1).
 *
 * Each loaded model gets one context holding `parallel` sequences. A call's requests form a
 * work queue; every sequence takes the next request, clears its history and decodes greedily,
 * and because all sequences run concurrently node-llama-cpp packs their tokens into shared
 * batches. Sequences are driven directly (not through LlamaCompletion, which adds its own BOS
 * and a repeat penalty), with temperature 0, so the next token is the argmax of the logits.
 */
import { readFileSync } from "node:fs";
import { open, stat } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  type ControlledEvaluateInputItem,
  getLlama,
  type Llama,
  type LlamaContext,
  type LlamaContextSequence,
  LlamaLogLevel,
  type LlamaModel,
  type Token,
} from "node-llama-cpp";
import { type BatchInternals, batchInternals, generateGreedyBatch } from "./greedy-batch.ts";
import {
  findStop,
  validateGenerateRequests,
  validateParallel,
  validateScoreRequests,
} from "./requests.ts";
import type {
  Engine,
  EngineBackend,
  EngineInfo,
  EngineModel,
  GenerateOptions,
  GenerateRequest,
  GenerateResult,
  LoadModelOptions,
  ScoreRequest,
  ScoreResult,
} from "./types.ts";

export interface LlamaCppEngineOptions {
  /**
   * CPU threads per evaluation. Defaults to 1 on machines with at most 4 cores (more threads
   * there spin against each other and run tens of times slower), else half the cores.
   */
  threads?: number;
  /** "auto" uses CUDA, Vulkan or Metal when a prebuilt binary for them works; false forces CPU. */
  gpu?: "auto" | false;
  /** Default tokens per sequence; see LoadModelOptions.contextSize. */
  contextSize?: number;
  /** Default sequences per model (default 8). */
  parallel?: number;
  /**
   * Element type of the KV cache. F32 (the default) keeps llama.cpp's logits within float32
   * rounding of an exact forward pass; F16 halves the cache for large models.
   */
  kvCacheType?: "F32" | "F16";
  /**
   * How generation drives llama.cpp: "batch" (default) decodes every running sequence in
   * one batch per step and samples greedily (greedy-batch.ts); "evaluate" runs
   * node-llama-cpp's per-sequence generators, the earlier path, kept for benches. The same
   * tokens either way.
   */
  decodeLoop?: "batch" | "evaluate";
}

const DEFAULT_PARALLEL = 8;
const MAX_DEFAULT_CONTEXT = 2048;
const GGUF_MAGIC = "GGUF";
/** How many llama.cpp log lines to keep for error messages. */
const LOG_KEEP = 40;

export function defaultThreads(cores = availableParallelism()): number {
  return cores <= 4 ? 1 : Math.floor(cores / 2);
}

export async function createLlamaCppEngine(opts: LlamaCppEngineOptions = {}): Promise<Engine> {
  if (opts === null || typeof opts !== "object") {
    throw new Error("createLlamaCppEngine options must be an object");
  }
  const threads =
    opts.threads === undefined ? defaultThreads() : validateParallel(opts.threads, "threads");
  const parallel =
    opts.parallel === undefined ? DEFAULT_PARALLEL : validateParallel(opts.parallel, "parallel");
  const contextSize =
    opts.contextSize === undefined ? undefined : validateParallel(opts.contextSize, "contextSize");
  const gpu = opts.gpu ?? "auto";
  if (gpu !== "auto" && gpu !== false) {
    throw new Error(`gpu must be "auto" or false, got ${String(opts.gpu)}`);
  }
  const kvCacheType = opts.kvCacheType ?? "F32";
  if (kvCacheType !== "F32" && kvCacheType !== "F16") {
    throw new Error(`kvCacheType must be "F32" or "F16", got ${String(opts.kvCacheType)}`);
  }

  const decodeLoop = opts.decodeLoop ?? "batch";
  if (decodeLoop !== "batch" && decodeLoop !== "evaluate") {
    throw new Error(`decodeLoop must be "batch" or "evaluate", got ${String(opts.decodeLoop)}`);
  }

  const shared = await acquireLlama(gpu);
  return new LlamaCppEngine(shared, { threads, parallel, contextSize, kvCacheType, decodeLoop });
}

interface EngineSettings {
  threads: number;
  parallel: number;
  contextSize: number | undefined;
  kvCacheType: "F32" | "F16";
  decodeLoop: "batch" | "evaluate";
}

class LlamaCppEngine implements Engine {
  private readonly models = new Set<LlamaCppModel>();
  private disposed = false;

  private readonly llama: Llama;
  private readonly logs: LogBuffer;

  constructor(
    private readonly shared: SharedLlama,
    private readonly settings: EngineSettings,
  ) {
    this.llama = shared.llama;
    this.logs = shared.logs;
  }

  info(): EngineInfo {
    const backends: Record<string, EngineBackend> = {
      cuda: "CUDA",
      vulkan: "Vulkan",
      metal: "Metal",
    };
    const release = this.llama.llamaCppRelease.release;
    return {
      backend: this.llama.gpu === false ? "CPU" : backends[this.llama.gpu],
      threads: this.settings.threads,
      parallel: this.settings.parallel,
      implementation: `node-llama-cpp ${nodeLlamaCppVersion()} (llama.cpp ${release})`,
    };
  }

  async loadModel(path: string, opts: LoadModelOptions = {}): Promise<EngineModel> {
    if (this.disposed) throw new Error("loadModel: the engine has been disposed");
    if (typeof path !== "string" || path.length === 0) {
      throw new Error("loadModel needs the path of a GGUF file");
    }
    const parallel =
      opts.parallel === undefined
        ? this.settings.parallel
        : validateParallel(opts.parallel, "parallel");
    const requestedContext =
      opts.contextSize === undefined
        ? this.settings.contextSize
        : validateParallel(opts.contextSize, "contextSize");
    await checkGgufFile(path);

    const mark = this.logs.mark();
    let model: LlamaModel;
    try {
      model = await this.llama.loadModel({ modelPath: path });
    } catch (e) {
      throw new Error(
        `could not load model ${path}: ${errorMessage(e)}${await this.logs.since(mark)}. ` +
          "Check that the file is a complete GGUF of an architecture that llama.cpp supports.",
      );
    }

    let context: LlamaContext | undefined;
    try {
      checkVocabulary(model, path);
      const contextSize =
        requestedContext ?? Math.min(model.trainContextSize || 512, MAX_DEFAULT_CONTEXT);
      context = await model.createContext({
        contextSize,
        sequences: parallel,
        threads: this.settings.threads,
        flashAttention: false,
        experimentalKvCacheKeyType: this.settings.kvCacheType,
        experimentalKvCacheValueType: this.settings.kvCacheType,
        // An error, not a quietly smaller context, when memory is short.
        failedCreationRemedy: false,
      });
    } catch (e) {
      await context?.dispose();
      await model.dispose();
      throw new Error(
        `could not create a context for ${path}: ${errorMessage(e)}${await this.logs.since(mark)}`,
      );
    }
    try {
      serializeFirstSample(context);
    } catch (e) {
      await context.dispose();
      await model.dispose();
      throw e;
    }
    const sequences: LlamaContextSequence[] = [];
    for (let i = 0; i < parallel; i++) sequences.push(context.getSequence());
    let internals: BatchInternals | null = null;
    if (this.settings.decodeLoop === "batch") {
      const found = batchInternals(model, context);
      if (typeof found === "string") {
        await context.dispose();
        await model.dispose();
        throw new Error(`${found}; install node-llama-cpp 3.21.1, or use decodeLoop: "evaluate"`);
      }
      internals = found;
    }
    const loaded = new LlamaCppModel(path, model, context, sequences, this.logs, internals, () =>
      this.models.delete(loaded),
    );
    this.models.add(loaded);
    return loaded;
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    for (const m of [...this.models]) await m.dispose();
    await releaseLlama(this.shared);
  }
}

class LlamaCppModel implements EngineModel {
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
  ) {
    this.contextSize = context.contextSize;
    this.parallel = sequences.length;
    this.pool = new SequencePool(sequences);
    this.bos = model.tokens.bos;
    this.addBos = model.tokens.shouldPrependBosToken && this.bos !== null;
  }

  tokenize(text: string): number[] {
    this.checkAlive("tokenize");
    if (typeof text !== "string") throw new Error("tokenize needs a string");
    return this.model.tokenize(text, false);
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
    const prompts = requests.map((r, i) => this.promptTokens(r.prompt, `generate request ${i}`));
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
    const mark = this.logs.mark();
    try {
      // Empty, for node-llama-cpp's bookkeeping as much as for the cache.
      for (const seq of seqs) await seq.clearHistory();
      return await generateGreedyBatch({
        model: this.model,
        internals: this.internals as BatchInternals,
        sequenceIds: seqs.map((s) => {
          const id = (s as unknown as { _sequenceId?: unknown })._sequenceId;
          if (typeof id !== "number")
            throw new Error("node-llama-cpp's sequences lack _sequenceId");
          return id;
        }),
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
      const prompt = this.promptTokens(r.prompt, `score request ${i}`);
      const continuation = this.continuationTokens(r.prompt, r.continuation);
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
    await this.model.dispose();
  }

  private checkAlive(what: string): void {
    if (this.disposed) throw new Error(`${what}: the model ${this.path} has been disposed`);
  }

  private promptTokens(prompt: string, what: string): Token[] {
    const tokens = this.model.tokenize(prompt, false);
    if (this.addBos) tokens.unshift(this.bos as Token);
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
  private continuationTokens(prompt: string, continuation: string): Token[] {
    const alone = this.model.tokenize(prompt, false);
    const joint = this.model.tokenize(prompt + continuation, false);
    const isPrefix = alone.length < joint.length && alone.every((t, i) => joint[i] === t);
    return isPrefix ? joint.slice(alone.length) : this.model.tokenize(continuation, false);
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
        const current = this.model.detokenize(generated, false);
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
    return { text: text ?? this.model.detokenize(generated, false), tokens: count, finish };
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

/**
 * One llama.cpp instance per process and GPU setting, shared by every engine that asks for it.
 * The native log callback is process-wide: a second instance takes it over and llama.cpp's
 * warnings then go to the console, so engines share one instance (and one log buffer).
 */
interface SharedLlama {
  key: string;
  llama: Llama;
  logs: LogBuffer;
  refs: number;
}

const sharedLlamas = new Map<string, Promise<SharedLlama>>();

async function acquireLlama(gpu: "auto" | false): Promise<SharedLlama> {
  const key = String(gpu);
  for (;;) {
    let entry = sharedLlamas.get(key);
    if (entry === undefined) {
      entry = startLlama(key, gpu);
      sharedLlamas.set(key, entry);
      entry.catch(() => sharedLlamas.delete(key));
    }
    const shared = await entry;
    // The last engine may have released it while this call waited.
    if (shared.llama.disposed || (shared.refs === 0 && sharedLlamas.get(key) !== entry)) continue;
    shared.refs++;
    return shared;
  }
}

async function releaseLlama(shared: SharedLlama): Promise<void> {
  shared.refs--;
  if (shared.refs > 0) return;
  sharedLlamas.delete(shared.key);
  await shared.llama.dispose();
}

async function startLlama(key: string, gpu: "auto" | false): Promise<SharedLlama> {
  const logs = new LogBuffer();
  try {
    // build "never": a missing or broken binary must fail here, not start a compile.
    // maxThreads 0: each context then uses exactly the threads it asks for.
    const llama = await getLlama({
      build: "never",
      gpu,
      maxThreads: 0,
      logLevel: LlamaLogLevel.warn,
      logger: (level, message) => logs.add(level, message),
    });
    return { key, llama, logs, refs: 0 };
  } catch (e) {
    throw new Error(
      `could not start llama.cpp (node-llama-cpp): ${errorMessage(e)}. ` +
        'Reinstall dependencies with "npm ci"; getLlama must run from a file, not "node -e".',
    );
  }
}

/**
 * After a decode whose batch llama.cpp split out of order (it does with several sequences),
 * llama.cpp puts the logits rows back in order lazily and in place, on the first read. node-
 * llama-cpp 3.21.1 samples each sequence in its own thread-pool job, so two first reads can
 * run at once and swap rows twice; sequences then read each other's logits (seen here as
 * wrong tokens and log-probs in a few percent of batched calls). So after every decode the
 * first sample runs alone, and the others start once it has finished.
 */
function serializeFirstSample(context: LlamaContext): void {
  const native = (context as unknown as { _ctx?: { sampleToken?: unknown; decodeBatch?: unknown } })
    ._ctx;
  const sample = native?.sampleToken;
  const decode = native?.decodeBatch;
  if (native === undefined || typeof sample !== "function" || typeof decode !== "function") {
    throw new Error(
      "this node-llama-cpp version lacks the internal LlamaContext._ctx.sampleToken/decodeBatch " +
        "that the engine wraps to avoid a llama.cpp data race; install node-llama-cpp 3.21.1",
    );
  }
  let fresh = false;
  let gate: Promise<unknown> | undefined;
  // Own properties on the native object shadow the prototype's methods and keep the object
  // itself, so native calls that receive it can still unwrap it.
  const wrap = (name: string, value: (...args: unknown[]) => unknown) =>
    Object.defineProperty(native, name, { configurable: true, writable: true, value });
  wrap("decodeBatch", (...args: unknown[]) =>
    (decode.apply(native, args) as Promise<unknown>).then((result) => {
      fresh = true;
      gate = undefined;
      return result;
    }),
  );
  wrap("sampleToken", (...args: unknown[]) => {
    if (fresh) {
      fresh = false;
      const first = sample.apply(native, args) as Promise<unknown>;
      gate = first.catch(() => undefined);
      return first;
    }
    if (gate !== undefined) return gate.then(() => sample.apply(native, args));
    return sample.apply(native, args);
  });
}

/** Sequences handed out one caller at a time, so concurrent calls on a model share them. */
class SequencePool {
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

/** Recent llama.cpp warnings and errors, to quote when an operation fails. */
class LogBuffer {
  private lines: string[] = [];
  private total = 0;

  add(level: LlamaLogLevel, message: string): void {
    if (
      level !== LlamaLogLevel.warn &&
      level !== LlamaLogLevel.error &&
      level !== LlamaLogLevel.fatal
    ) {
      return;
    }
    const line = message.trim();
    if (line.length === 0) return;
    this.lines.push(line);
    this.total++;
    if (this.lines.length > LOG_KEEP) this.lines.shift();
  }

  mark(): number {
    return this.total;
  }

  /** Lines logged since `mark`, formatted for an error message (empty when none). */
  async since(mark: number): Promise<string> {
    // node-llama-cpp delivers log lines asynchronously, after the failing call has returned.
    await new Promise((resolve) => setTimeout(resolve, 20));
    const count = Math.min(this.total - mark, this.lines.length);
    if (count <= 0) return "";
    return ` (llama.cpp: ${this.lines.slice(-count).join("; ")})`;
  }
}

async function checkGgufFile(path: string): Promise<void> {
  let size: number;
  try {
    const s = await stat(path);
    if (!s.isFile()) throw new Error(`model path ${path} is not a file`);
    size = s.size;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") {
      throw new Error(`model file not found: ${path}`);
    }
    throw e;
  }
  const head = Buffer.alloc(4);
  const file = await open(path, "r");
  try {
    await file.read(head, 0, 4, 0);
  } finally {
    await file.close();
  }
  if (size < 4 || head.toString("latin1") !== GGUF_MAGIC) {
    throw new Error(
      `${path} is not a GGUF file (it does not start with "GGUF"); convert the model to GGUF first`,
    );
  }
}

/**
 * A SentencePiece vocabulary without the 256 byte tokens makes llama.cpp abort the whole
 * process (uncatchably) on the first character it cannot spell, so refuse such models early.
 */
function checkVocabulary(model: LlamaModel, path: string): void {
  const tokenizer = (
    model.fileInfo.metadata as unknown as {
      tokenizer?: {
        ggml?: { model?: string; tokens?: readonly string[]; token_type?: readonly number[] };
      };
    }
  ).tokenizer?.ggml;
  if (tokenizer?.model !== "llama" || tokenizer.tokens === undefined) return;
  const bytes = new Set<string>();
  const types = tokenizer.token_type;
  tokenizer.tokens.forEach((t, i) => {
    if (/^<0x[0-9A-F]{2}>$/.test(t) && (types === undefined || types[i] === 6)) bytes.add(t);
  });
  if (bytes.size < 256) {
    throw new Error(
      `${path} has a SentencePiece ("llama") vocabulary with ${bytes.size} of the 256 byte ` +
        "tokens <0x00>…<0xFF> (token type 6); llama.cpp aborts on characters it cannot spell, " +
        "so add the byte tokens to the vocabulary",
    );
  }
}

let cachedVersion: string | undefined;

/** The installed node-llama-cpp's version (its package.json is not among its exports). */
function nodeLlamaCppVersion(): string {
  if (cachedVersion === undefined) {
    try {
      const entry = fileURLToPath(import.meta.resolve("node-llama-cpp"));
      const pkg = JSON.parse(readFileSync(join(dirname(entry), "..", "package.json"), "utf8"));
      cachedVersion = String(pkg.version);
    } catch {
      cachedVersion = "(unknown version)";
    }
  }
  return cachedVersion;
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
