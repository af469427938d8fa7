/**
 * The inference interface. Everything that runs a model (in-process llama.cpp today; an
 * out-of-process worker or a remote OpenAI-compatible server later) implements `Engine`, so
 * evaluation code never depends on where the model runs.
 *
 * Lifetimes are explicit: an engine owns its loaded models, a model owns its context and
 * sequences, and both must be disposed. Batching is explicit too: one `generate` or `score`
 * call hands over many requests, and the engine decides how to run them side by side.
 */

export type EngineBackend = "CPU" | "CUDA" | "Vulkan" | "Metal";

export interface EngineInfo {
  backend: EngineBackend;
  /** CPU threads each evaluation uses. */
  threads: number;
  /** Default number of sequences run side by side per model. */
  parallel: number;
  /** Human-readable name of the implementation, e.g. "node-llama-cpp 3.21.1 (llama.cpp b1234)". */
  implementation: string;
}

export interface LoadModelOptions {
  /**
   * Tokens per sequence (prompt plus generated text). Defaults to the engine's setting, or the
   * model's training context length capped at 2048. llama.cpp may round it up (the model's
   * `contextSize` says what was granted).
   */
  contextSize?: number;
  /** Sequences run side by side; defaults to the engine's setting. */
  parallel?: number;
}

/**
 * A way to run models: loads GGUF files and owns them until disposed
 * (`createLlamaCppEngine` makes the llama.cpp one).
 */
export interface Engine {
  /**
   * Loads a GGUF file. Throws a message naming the path when the file is missing or unusable,
   * when the context cannot be created (e.g. memory is short), after `dispose`, or for a
   * `parallel` or `contextSize` that is not a positive integer.
   */
  loadModel(path: string, opts?: LoadModelOptions): Promise<EngineModel>;
  /**
   * Loads a base model once, to run children as base + a LoRA adapter
   * (`EngineBase.withAdapter`) without loading weights again. Throws as `loadModel` does.
   */
  loadBase(path: string): Promise<EngineBase>;
  info(): EngineInfo;
  /** Disposes every model still loaded, then the engine itself. */
  dispose(): Promise<void>;
}

/**
 * A base model held in memory for adapter children; dispose it (and so every child still
 * open) when done.
 */
export interface EngineBase {
  /** The base's GGUF file. */
  readonly path: string;
  /**
   * The base with one LoRA adapter (a GGUF of `general.type` adapter) applied at scale 1,
   * as a model of its own context; disposing it frees that context and the adapter, not the
   * base. Give every adapter its own path: llama.cpp keeps an adapter by path while it is in
   * use. Throws naming the adapter when it is missing, not GGUF, does not fit the base
   * (architecture, tensor names or shapes), or the context cannot be created.
   */
  withAdapter(adapterPath: string, opts?: LoadModelOptions): Promise<EngineModel>;
  dispose(): Promise<void>;
}

/** One completion to generate by greedy decoding. */
export interface GenerateRequest {
  /** Text after the BOS token (BOS is prepended when the model's `add_bos_token` says so). */
  prompt: string;
  /** Most tokens to generate (a positive integer). */
  maxTokens: number;
  /** Generation ends at the first occurrence of any of these strings in the generated text. */
  stop?: string[];
  /**
   * The prompt is chat-template output (skills/chat.ts): special-token text in it, such as
   * `<|user|>`, is read as those tokens; a BOS it starts with is not doubled; and special
   * tokens the model generates are spelled in the text, so that the template's end-of-turn
   * strings work as stops. Default false: all text is plain (the byte-vocabulary zoo).
   */
  special?: boolean;
}

export type FinishReason = "stop" | "eos" | "length";

/** One completion from `EngineModel.generate`. */
export interface GenerateResult {
  /** Generated text, cut before the stop string; never contains the EOS token. */
  text: string;
  /** Tokens the model generated, counting the EOS or stop-completing token. */
  tokens: number;
  /**
   * Why generation ended: a stop string, the end-of-generation token, or the token budget
   * (`maxTokens`, or the context filling up first).
   */
  finish: FinishReason;
}

export interface GenerateOptions {
  /** Most requests run side by side; capped by the model's `parallel`. */
  parallel?: number;
  /**
   * Called as each request finishes, in completion order, before `generate` resolves: lets a
   * caller start work on early results (grading them while the rest still decode).
   */
  onResult?: (index: number, result: GenerateResult) => void;
}

/** Log-likelihood of `continuation` following `prompt` (BOS handled as in `generate`). */
export interface ScoreRequest {
  prompt: string;
  /**
   * Non-empty. Its tokens are those it gets when prompt + continuation is tokenized as one
   * text, or, where that tokenization does not start with the prompt's own tokens, those of
   * the continuation tokenized alone.
   */
  continuation: string;
  /** Special-token text is read as tokens, as in `GenerateRequest.special`. Default false. */
  special?: boolean;
}

/** How likely a model finds a continuation (`EngineModel.score`), in nats. */
export interface ScoreResult {
  /** Natural-log probability of each continuation token given everything before it. */
  logprobs: number[];
  /** Sum of `logprobs`: the continuation's total log-likelihood. */
  sum: number;
  /** Mean of `logprobs`. */
  mean: number;
  /** True when every continuation token was the model's most likely next token. */
  greedy: boolean;
}

/**
 * A loaded model with its context and `parallel` sequences; dispose it when done. Every
 * method throws once the model is disposed. `generate` and `score` validate all requests
 * first and throw before running any: for a malformed request, a prompt that leaves no room
 * in `contextSize` tokens, or an empty prompt on a model that adds no BOS; they throw with
 * the path and llama.cpp's log lines when inference fails, and when the model is disposed
 * while requests run.
 */
export interface EngineModel {
  /** The GGUF file it was loaded from. */
  readonly path: string;
  /** Tokens each sequence can hold. */
  readonly contextSize: number;
  /** Sequences available for side-by-side work. */
  readonly parallel: number;
  /** Results come back in request order. */
  generate(requests: GenerateRequest[], opts?: GenerateOptions): Promise<GenerateResult[]>;
  score(requests: ScoreRequest[]): Promise<ScoreResult[]>;
  /**
   * Text to token ids, without BOS; special-token text is parsed only with `special: true`
   * (as `generate` and `score` read a `special` prompt).
   */
  tokenize(text: string, opts?: { special?: boolean }): number[];
  /** Token ids to text; control tokens spell nothing. */
  detokenize(tokens: readonly number[]): string;
  dispose(): Promise<void>;
}
