/**
 * Everything the engine takes from node-llama-cpp's private internals, and the version they
 * were written and tested for. Private fields can change meaning in any release without the
 * names changing, so nothing here runs on another version: `takeOverContext` checks the
 * installed version first and refuses a mismatch, naming both versions and what to do.
 *
 * The internals used: the native context `LlamaContext._ctx` (its sampleToken/decodeBatch are
 * wrapped against a sampling race; the batch loop calls initBatch, addToBatch, decodeBatch,
 * sampleToken and removeTokenCellsFromSequence on it), the sampler binding
 * `LlamaModel._llama._bindings.AddonSampler`, the native model `LlamaModel._model`,
 * `LlamaContextSequence._sequenceId`, and the model's adapter cache `LlamaModel._loraAdapters`
 * (path → native adapter, which node-llama-cpp never empties).
 */
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { LlamaContext, LlamaContextSequence, LlamaModel } from "node-llama-cpp";

/** The node-llama-cpp release the internals below were written and tested for. */
const TESTED_VERSION = "3.21.1";

let cachedVersion: string | undefined;

/** The installed node-llama-cpp's version (its package.json is not among its exports). */
export function nodeLlamaCppVersion(): string {
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

/** Throws unless `installed` is the exact node-llama-cpp version the internals were tested on. */
export function checkNodeLlamaCppVersion(installed: string): void {
  if (installed === TESTED_VERSION) return;
  throw new Error(
    `node-llama-cpp ${installed} is installed, but the engine patches node-llama-cpp's private ` +
      `internals (LlamaContext._ctx, against a sampling race) as written and tested for ` +
      `node-llama-cpp ${TESTED_VERSION} only, and will not patch another version blind; ` +
      `decodeLoop: "evaluate" needs the patch too. Install node-llama-cpp ${TESTED_VERSION} ` +
      '("npm ci" installs the version package.json pins); to move to another version, check ' +
      "its internals against src/engine/internals.ts, update the version there and rerun " +
      "test/engine*.test.ts and bench:engine-loop.",
  );
}

/** The native context calls the batch loop makes. */
interface NativeContext {
  initBatch(size: number): void;
  addToBatch(seq: number, first: number, tokens: Uint32Array, logits: Uint32Array): Uint32Array;
  decodeBatch(): Promise<void>;
  sampleToken(logitIndex: number, sampler: unknown): Promise<number>;
  removeTokenCellsFromSequence(seq: number, start: number, end: number): boolean;
}

interface NativeSampler {
  applyConfig(config: object): void;
  dispose(): void;
}

/** What the batch loop (greedy-batch.ts) drives instead of node-llama-cpp's generators. */
export interface BatchInternals {
  native: NativeContext;
  newSampler(): NativeSampler;
}

/**
 * Prepares a fresh context for the engine: checks the installed version, serializes first
 * samples (below), and returns the batch loop's internals when `batchLoop` asks for them (null
 * otherwise). Throws on a version mismatch or missing internals; the caller disposes.
 */
export function takeOverContext(
  model: LlamaModel,
  context: LlamaContext,
  batchLoop: boolean,
): BatchInternals | null {
  checkNodeLlamaCppVersion(nodeLlamaCppVersion());
  serializeFirstSample(context);
  return batchLoop ? batchInternals(model, context) : null;
}

/** The native id of a sequence, as the batch loop addresses it. */
export function sequenceId(seq: LlamaContextSequence): number {
  const id = (seq as unknown as { _sequenceId?: unknown })._sequenceId;
  if (typeof id !== "number") throw new Error("node-llama-cpp's sequences lack _sequenceId");
  return id;
}

/**
 * After a decode whose batch llama.cpp split out of order (it does with several sequences),
 * llama.cpp puts the logits rows back in order lazily and in place, on the first read. node-
 * llama-cpp 3.21.1 samples each sequence in its own thread-pool job, so two first reads can
 * run at once and swap rows twice; sequences then read each other's logits (seen here as
 * wrong tokens and log-probs in a few percent of batched calls). So after every decode the
 * first sample runs alone, and the others start once it has finished. Every path samples
 * through this context (node-llama-cpp's evaluate and controlledEvaluate, and the batch
 * loop), so every context gets it.
 */
function serializeFirstSample(context: LlamaContext): void {
  const native = (context as unknown as { _ctx?: { sampleToken?: unknown; decodeBatch?: unknown } })
    ._ctx;
  const sample = native?.sampleToken;
  const decode = native?.decodeBatch;
  if (native === undefined || typeof sample !== "function" || typeof decode !== "function") {
    throw new Error(
      "this node-llama-cpp version lacks the internal LlamaContext._ctx.sampleToken/decodeBatch " +
        `that the engine wraps to avoid a llama.cpp data race; install node-llama-cpp ${TESTED_VERSION}`,
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

/** The internals the batch loop needs; throws naming those this node-llama-cpp lacks. */
function batchInternals(model: LlamaModel, context: LlamaContext): BatchInternals {
  const native = (context as unknown as { _ctx?: Record<string, unknown> })._ctx;
  const Sampler = (model as unknown as { _llama?: { _bindings?: { AddonSampler?: unknown } } })
    ._llama?._bindings?.AddonSampler;
  const addon = (model as unknown as { _model?: unknown })._model;
  const calls = [
    "initBatch",
    "addToBatch",
    "decodeBatch",
    "sampleToken",
    "removeTokenCellsFromSequence",
  ];
  const missing = calls.filter((c) => typeof native?.[c] !== "function");
  if (typeof Sampler !== "function") missing.push("AddonSampler");
  if (addon === undefined) missing.push("LlamaModel._model");
  if (missing.length) {
    throw new Error(
      `node-llama-cpp lacks ${missing.join(", ")} (written for ${TESTED_VERSION}); ` +
        `install node-llama-cpp ${TESTED_VERSION}, or use decodeLoop: "evaluate"`,
    );
  }
  return {
    native: native as unknown as NativeContext,
    newSampler: () => {
      const s = new (Sampler as new (m: unknown) => NativeSampler)(addon);
      s.applyConfig({ temperature: 0 });
      return s;
    },
  };
}

/**
 * Frees a LoRA adapter that node-llama-cpp loaded for `model` from `filePath`, once no
 * context uses it any more. node-llama-cpp keeps every adapter it loads (by resolved path)
 * for the model's lifetime, so without this a base that runs one adapter per child would
 * hold every child's adapter in memory. Does nothing when the adapter is not loaded.
 */
export async function releaseLora(model: LlamaModel, filePath: string): Promise<void> {
  checkNodeLlamaCppVersion(nodeLlamaCppVersion());
  const cache = (model as unknown as { _loraAdapters?: unknown })._loraAdapters;
  if (!(cache instanceof Map)) {
    throw new Error(
      `this node-llama-cpp version lacks the internal LlamaModel._loraAdapters that the engine empties; install node-llama-cpp ${TESTED_VERSION}`,
    );
  }
  const key = resolve(process.cwd(), filePath);
  const lora = cache.get(key) as { dispose?: () => Promise<void> } | undefined;
  cache.delete(key);
  await lora?.dispose?.();
}
