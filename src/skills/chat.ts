/**
 * Prompts for instruct models: a skill's prompt becomes the user turn of the model's own chat
 * template (`tokenizer.chat_template` in the GGUF), rendered by @huggingface/jinja, with an
 * optional system prompt, and the template's end-of-turn tokens become stop strings. A model
 * without a template (the tiny byte-vocabulary zoo) gets no formatter: its prompts stay raw.
 *
 * The rendered text holds special-token text (`<|user|>`, `<|end|>`), so it must be
 * tokenized with special tokens parsed: generate and score it with `special: true`
 * (GenerateRequest, ScoreRequest). A BOS the template writes at the very start is left out
 * when llama.cpp adds BOS itself (`tokenizer.ggml.add_bos_token`), as llama.cpp's own chat
 * code does, so the prompt is the text after BOS like every other prompt; the engine also
 * never doubles a BOS that a `special` prompt starts with.
 */
import { Template } from "@huggingface/jinja";
import { type GgufMetadata, type GgufValue, openGguf } from "../tensors/gguf.ts";

export interface ChatOptions {
  /** The system turn; omitted when undefined or empty. */
  system?: string;
  /**
   * Whether llama.cpp prepends BOS to this model's prompts. Default: the GGUF's
   * `tokenizer.ggml.add_bos_token`, else llama.cpp's default for the tokenizer (true for
   * SentencePiece, `tokenizer.ggml.model = llama`; false otherwise).
   */
  addBos?: boolean;
}

/** Formats a skill's prompt as a chat turn. */
export interface ChatFormatter {
  /**
   * The prompt for one user message: the template applied to [system (if any), user] with
   * `add_generation_prompt: true`, without a leading BOS text when llama.cpp adds BOS. Throws,
   * naming the template, when the template raises an error.
   */
  format(userText: string): string;
  /**
   * The prompt for a conversation: `turns` alternate user and assistant messages, starting
   * and ending with a user message (an agent's episode: the task, then each observation),
   * formatted like `format` (system turn, generation prompt, no doubled BOS).
   */
  conversation(turns: readonly string[]): string;
  /**
   * The template's end-of-turn token text, then the EOS (and EOT/EOM) token texts, each once:
   * phi-3 gives `<|end|>`, `<|endoftext|>`.
   */
  stops: string[];
  /**
   * Where the system prompt goes: its own turn ("template"), or, for a template that drops or
   * refuses system messages (phi-3's), the start of the user message, followed by a blank
   * line ("user"); "none" without a system prompt.
   */
  system: "template" | "user" | "none";
  /** The BOS and EOS token texts given to the template ("" when the vocabulary has none). */
  bosToken: string;
  eosToken: string;
  /** Whether llama.cpp adds BOS (so a leading BOS text is left out of `format`'s result). */
  addBos: boolean;
}

/** The run config's `chat` section. */
export interface ChatConfig {
  /** "auto": the model's chat template when its GGUF has one, raw prompts otherwise; "none": raw prompts. */
  template: "auto" | "none";
  /** System prompt for models with a chat template. */
  system?: string;
}

/** llama.cpp's token types. */
const CONTROL = 3;
const USER_DEFINED = 4;

/** Marks the message contents when probing what the template does with them. */
const PROBE_SYSTEM = "\u0001cycleqd-system-probe\u0001";
const PROBE_USER = "\u0001cycleqd-user-probe\u0001";
const PROBE_ANSWER = "\u0001cycleqd-answer-probe\u0001";

/**
 * The chat formatter of a model from its GGUF metadata, or null when the model has no
 * `tokenizer.chat_template` (prompts then stay as the skills write them). Throws when the
 * template does not parse, or fails on a plain user message.
 */
export function chatFormatter(meta: GgufMetadata, opts: ChatOptions = {}): ChatFormatter | null {
  const source = stringValue(meta, "tokenizer.chat_template");
  if (source === undefined || source.trim() === "") return null;
  const name = stringValue(meta, "general.name") ?? "the model";
  const where = `the chat template of ${name} (tokenizer.chat_template)`;
  let template: Template;
  try {
    template = new Template(source);
  } catch (e) {
    throw new Error(`${where} does not parse: ${errorText(e)}`);
  }
  const vocab = readVocab(meta);
  const bosToken = vocab.text(numberValue(meta, "tokenizer.ggml.bos_token_id"));
  const eosToken = vocab.text(numberValue(meta, "tokenizer.ggml.eos_token_id"));
  const addBos = opts.addBos ?? defaultAddBos(meta);

  const render = (messages: Message[], generationPrompt: boolean): string =>
    template.render({
      messages,
      add_generation_prompt: generationPrompt,
      bos_token: bosToken,
      eos_token: eosToken,
    });
  const renderChecked = (messages: Message[]): string => {
    try {
      return render(messages, true);
    } catch (e) {
      throw new Error(`${where} failed to render: ${errorText(e)}`);
    }
  };
  // Fail now, not at the first prompt, for a template that cannot format a user message.
  const probe = renderChecked([{ role: "user", content: PROBE_USER }]);
  if (!probe.includes(PROBE_USER)) {
    throw new Error(`${where} leaves out the user's message`);
  }

  const system = opts.system ?? "";
  const mode: ChatFormatter["system"] =
    system === "" ? "none" : supportsSystem(render) ? "template" : "user";
  const messages = (turns: readonly string[]): Message[] => {
    const out: Message[] = turns.map((content, i) => ({
      role: i % 2 === 0 ? "user" : "assistant",
      content,
    }));
    if (mode === "template") return [{ role: "system", content: system }, ...out];
    if (mode === "user") out[0] = { role: "user", content: `${system}\n\n${turns[0]}` };
    return out;
  };
  const stripBos = (text: string): string =>
    addBos && bosToken !== "" && text.startsWith(bosToken) ? text.slice(bosToken.length) : text;

  return {
    format: (userText: string) => {
      if (typeof userText !== "string") throw new Error("chat format needs a string");
      return stripBos(renderChecked(messages([userText])));
    },
    conversation: (turns: readonly string[]) => {
      if (turns.length % 2 !== 1 || !turns.every((t) => typeof t === "string")) {
        throw new Error("a chat conversation alternates user and assistant, from user to user");
      }
      return stripBos(renderChecked(messages(turns)));
    },
    stops: unique([
      endOfTurn(render, vocab),
      eosToken,
      vocab.text(numberValue(meta, "tokenizer.ggml.eot_token_id")),
      vocab.text(numberValue(meta, "tokenizer.ggml.eom_token_id")),
    ]),
    system: mode,
    bosToken,
    eosToken,
    addBos,
  };
}

/** `chatFormatter` of the GGUF file at `path` (only its header is read). */
export async function readChatFormatter(
  path: string,
  opts: ChatOptions = {},
): Promise<ChatFormatter | null> {
  const reader = await openGguf(path);
  try {
    return chatFormatter(reader.metadata, opts);
  } finally {
    await reader.close();
  }
}

/**
 * The formatter a run uses for a model: null for `template: "none"` and for a model without a
 * chat template. Throws when a system prompt is configured but would go nowhere (the model
 * has no chat template, or the template is "none").
 */
export function chatFormatterFor(
  config: ChatConfig,
  meta: GgufMetadata,
  path = "the model",
): ChatFormatter | null {
  const system = config.system ?? "";
  if (config.template === "none") {
    if (system !== "") throw new Error('chat.system is set but chat.template is "none"');
    return null;
  }
  const chat = chatFormatter(meta, { system });
  if (chat === null && system !== "") {
    throw new Error(
      `chat.system is set but ${path} has no chat template (tokenizer.chat_template), so its ` +
        "prompts stay raw; remove chat.system or use an instruct model",
    );
  }
  return chat;
}

interface Message {
  role: "system" | "user" | "assistant";
  content: string;
}

type Render = (messages: Message[], generationPrompt: boolean) => string;

/** True when the template writes a system message's content (and does not raise on it). */
function supportsSystem(render: Render): boolean {
  try {
    return render(
      [
        { role: "system", content: PROBE_SYSTEM },
        { role: "user", content: PROBE_USER },
      ],
      true,
    ).includes(PROBE_SYSTEM);
  } catch {
    return false;
  }
}

/**
 * The special token the template writes right after an assistant message (phi-3: `<|end|>`),
 * or "" when it writes none there, or fails on an assistant message.
 */
function endOfTurn(render: Render, vocab: Vocab): string {
  let text: string;
  try {
    text = render(
      [
        { role: "user", content: PROBE_USER },
        { role: "assistant", content: PROBE_ANSWER },
      ],
      false,
    );
  } catch {
    return "";
  }
  const at = text.lastIndexOf(PROBE_ANSWER);
  if (at < 0) return "";
  return vocab.specialPrefix(text.slice(at + PROBE_ANSWER.length).trimStart());
}

interface Vocab {
  /** A token's text, "" for a missing id. */
  text(id: number | undefined): string;
  /** The longest control or user-defined token that `s` starts with, or "". */
  specialPrefix(s: string): string;
}

function readVocab(meta: GgufMetadata): Vocab {
  const tokens = arrayValue(meta, "tokenizer.ggml.tokens") ?? [];
  const types = arrayValue(meta, "tokenizer.ggml.token_type");
  const specials: string[] = [];
  tokens.forEach((t, i) => {
    const type = types?.[i];
    if (typeof t === "string" && (type === CONTROL || type === USER_DEFINED)) specials.push(t);
  });
  return {
    text: (id) => {
      if (id === undefined) return "";
      const t = tokens[id];
      return typeof t === "string" ? t : "";
    },
    specialPrefix: (s) =>
      specials.reduce((best, t) => (t.length > best.length && s.startsWith(t) ? t : best), ""),
  };
}

/** llama.cpp's add_bos: the GGUF's flag, else true for SentencePiece vocabularies only. */
function defaultAddBos(meta: GgufMetadata): boolean {
  const flag = value(meta, "tokenizer.ggml.add_bos_token");
  if (flag?.type === "bool") return flag.value;
  return stringValue(meta, "tokenizer.ggml.model") === "llama";
}

function value(meta: GgufMetadata, key: string): GgufValue | undefined {
  return meta instanceof Map ? meta.get(key) : Object.hasOwn(meta, key) ? meta[key] : undefined;
}

function stringValue(meta: GgufMetadata, key: string): string | undefined {
  const v = value(meta, key);
  return v?.type === "string" ? v.value : undefined;
}

function numberValue(meta: GgufMetadata, key: string): number | undefined {
  const v = value(meta, key);
  if (v === undefined || v.type === "array" || v.type === "string" || v.type === "bool") {
    return undefined;
  }
  return Number(v.value);
}

function arrayValue(meta: GgufMetadata, key: string): readonly unknown[] | undefined {
  const v = value(meta, key);
  return v?.type === "array" ? v.value : undefined;
}

function unique(xs: string[]): string[] {
  return [...new Set(xs.filter((x) => x !== ""))];
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
