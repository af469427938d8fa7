/**
 * The llama.cpp engine, in process through node-llama-cpp (pinned to 3.21.1; internals.ts
 * refuses any other version): its options, and loading a model, which checks the file,
 * creates the model's context and takes over the node-llama-cpp internals the engine patches
 * and drives. The loaded model is model.ts; the llama.cpp instance, shared-llama.ts.
 */
import { availableParallelism } from "node:os";
import type { Llama, LlamaContext, LlamaContextSequence, LlamaModel } from "node-llama-cpp";
import { errorMessage, type LogBuffer } from "./errors.ts";
import {
  type BatchInternals,
  nodeLlamaCppVersion,
  releaseLora,
  takeOverContext,
} from "./internals.ts";
import { LlamaCppModel } from "./model.ts";
import { checkGgufFile, checkVocabulary } from "./model-checks.ts";
import { validateParallel } from "./requests.ts";
import { acquireLlama, type SharedLlama } from "./shared-llama.ts";
import type {
  Engine,
  EngineBackend,
  EngineBase,
  EngineInfo,
  EngineModel,
  LoadModelOptions,
} from "./types.ts";

/**
 * Settings of the llama.cpp engine; every field is optional. `threads`, `contextSize` and
 * `parallel` must be positive integers.
 */
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

export function defaultThreads(cores = availableParallelism()): number {
  return cores <= 4 ? 1 : Math.floor(cores / 2);
}

/**
 * Starts the in-process llama.cpp engine (one llama.cpp instance shared by all engines of
 * the process). Throws for options of the wrong type or value, and when llama.cpp cannot be
 * loaded; loading a model throws when node-llama-cpp is not the pinned 3.21.1.
 */
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

interface ContextSizes {
  parallel: number;
  /** Undefined: the model's training context, capped. */
  contextSize: number | undefined;
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
  private readonly bases = new Set<LlamaCppBase>();
  private disposed = false;

  private readonly llama: Llama;
  private readonly logs: LogBuffer;

  constructor(
    shared: SharedLlama,
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
    const sizes = this.contextSizes(opts);
    const model = await this.loadWeights("loadModel", path);
    return this.openContext(path, model, sizes, null);
  }

  /** The sequences and context size asked for, checked (before anything is loaded). */
  contextSizes(opts: LoadModelOptions): ContextSizes {
    return {
      parallel:
        opts.parallel === undefined
          ? this.settings.parallel
          : validateParallel(opts.parallel, "parallel"),
      contextSize:
        opts.contextSize === undefined
          ? this.settings.contextSize
          : validateParallel(opts.contextSize, "contextSize"),
    };
  }

  async loadBase(path: string): Promise<EngineBase> {
    const model = await this.loadWeights("loadBase", path);
    const base = new LlamaCppBase(path, model, this, () => this.bases.delete(base));
    this.bases.add(base);
    return base;
  }

  /** Loads a GGUF file's weights and checks its vocabulary; the caller disposes. */
  private async loadWeights(what: string, path: string): Promise<LlamaModel> {
    if (this.disposed) throw new Error(`${what}: the engine has been disposed`);
    if (typeof path !== "string" || path.length === 0) {
      throw new Error(`${what} needs the path of a GGUF file`);
    }
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
    try {
      checkVocabulary(model, path);
    } catch (e) {
      await model.dispose();
      throw e;
    }
    return model;
  }

  /**
   * A context on loaded weights, with `adapter` applied when given, as an EngineModel. Without
   * an adapter the model owns the weights and disposes them; with one it frees only the
   * adapter. On failure it disposes what it owns and throws.
   */
  async openContext(
    path: string,
    model: LlamaModel,
    sizes: ContextSizes,
    adapter: string | null,
  ): Promise<EngineModel> {
    const release = adapter === null ? () => model.dispose() : () => releaseLora(model, adapter);
    const { parallel } = sizes;
    const mark = this.logs.mark();
    let context: LlamaContext | undefined;
    try {
      const contextSize =
        sizes.contextSize ?? Math.min(model.trainContextSize || 512, MAX_DEFAULT_CONTEXT);
      context = await model.createContext({
        contextSize,
        sequences: parallel,
        threads: this.settings.threads,
        flashAttention: false,
        experimentalKvCacheKeyType: this.settings.kvCacheType,
        experimentalKvCacheValueType: this.settings.kvCacheType,
        // An error, not a quietly smaller context, when memory is short.
        failedCreationRemedy: false,
        ...(adapter === null ? {} : { lora: { adapters: [{ filePath: adapter, scale: 1 }] } }),
      });
    } catch (e) {
      await context?.dispose();
      await release();
      const what = adapter === null ? path : `${path} with the adapter ${adapter}`;
      throw new Error(
        `could not create a context for ${what}: ${errorMessage(e)}${await this.logs.since(mark)}`,
      );
    }
    let internals: BatchInternals | null;
    try {
      internals = takeOverContext(model, context, this.settings.decodeLoop === "batch");
    } catch (e) {
      await context.dispose();
      await release();
      throw e;
    }
    const sequences: LlamaContextSequence[] = [];
    for (let i = 0; i < parallel; i++) sequences.push(context.getSequence());
    const name = adapter === null ? path : `${path} + ${adapter}`;
    const loaded = new LlamaCppModel(
      name,
      model,
      context,
      sequences,
      this.logs,
      internals,
      () => this.models.delete(loaded),
      release,
    );
    this.models.add(loaded);
    return loaded;
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    for (const m of [...this.models]) await m.dispose();
    for (const b of [...this.bases]) await b.dispose();
  }
}

/** A base held for adapter children; its children are models of the engine. */
class LlamaCppBase implements EngineBase {
  private readonly children = new Set<EngineModel>();
  private disposed = false;

  constructor(
    readonly path: string,
    private readonly model: LlamaModel,
    private readonly engine: LlamaCppEngine,
    private readonly onDispose: () => void,
  ) {}

  async withAdapter(adapterPath: string, opts: LoadModelOptions = {}): Promise<EngineModel> {
    if (this.disposed) throw new Error(`withAdapter: the base ${this.path} has been disposed`);
    if (typeof adapterPath !== "string" || adapterPath.length === 0) {
      throw new Error("withAdapter needs the path of a LoRA adapter GGUF file");
    }
    const sizes = this.engine.contextSizes(opts);
    await checkGgufFile(adapterPath);
    const child = await this.engine.openContext(this.path, this.model, sizes, adapterPath);
    this.children.add(child);
    const dispose = child.dispose.bind(child);
    child.dispose = async () => {
      this.children.delete(child);
      await dispose();
    };
    return child;
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.onDispose();
    for (const c of [...this.children]) await c.dispose();
    await this.model.dispose();
  }
}
