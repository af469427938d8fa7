/**
 * Chat templates (src/skills/chat.ts) on real vocabularies: phi-3's SentencePiece vocabulary
 * with its template and GPT-2's BPE vocabulary without one (test/fixtures/vocab, from
 * llama.cpp's test models; see the NOTICE there), then tiny LLaMA models written on those
 * vocabularies and loaded by llama.cpp: the metadata arrives intact, the rendered prompt's
 * special tokens are single tokens, BOS is added once, and generation ends at `<|end|>`.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { getLlama, type Llama, LlamaLogLevel, type Token } from "node-llama-cpp";
import { createLlamaCppEngine } from "../src/engine/llama-cpp.ts";
import type { Engine, EngineModel } from "../src/engine/types.ts";
import {
  type ChatFormatter,
  chatFormatter,
  chatFormatterFor,
  readChatFormatter,
} from "../src/skills/chat.ts";
import { type GgufValue, gguf, openGguf, writeGguf } from "../src/tensors/gguf.ts";
import {
  ggufMetadataOf,
  tinyLlamaConfig,
  tinyLlamaMetadata,
  tinyLlamaOnVocab,
} from "./helpers/tiny-gguf.ts";

const VOCAB = join(import.meta.dirname, "fixtures", "vocab");
const PHI3 = join(VOCAB, "ggml-vocab-phi-3.gguf");
const GPT2 = join(VOCAB, "ggml-vocab-gpt-2.gguf");
const ZOO_BASE = join(import.meta.dirname, "..", "zoo", "base.gguf");

/** phi-3's special tokens (ids in its vocabulary). */
const BOS = 1;
const ENDOFTEXT = 32000;
const ASSISTANT = 32001;
const PLACEHOLDER1 = 32002;
const SYSTEM = 32006;
const END = 32007;
const USER = 32010;

/** A later phi-3 template with a system turn (as Phi-3.5-mini-instruct's). */
const PHI3_WITH_SYSTEM =
  "{% for message in messages %}{% if message['role'] == 'system' and message['content'] %}" +
  "{{'<|system|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'user' %}" +
  "{{'<|user|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'assistant' %}" +
  "{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}{% endif %}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}";

let phi3: Map<string, GgufValue>;
let gpt2: Map<string, GgufValue>;

function withKeys(meta: Map<string, GgufValue>, keys: Record<string, GgufValue>) {
  return new Map([...meta, ...Object.entries(keys)]);
}

before(async () => {
  phi3 = await ggufMetadataOf(PHI3);
  gpt2 = await ggufMetadataOf(GPT2);
});

describe("chat formatter from GGUF metadata", () => {
  test("phi-3: the user turn, then the assistant's, with <|end|> and <|endoftext|> as stops", () => {
    const chat = chatFormatter(phi3) as ChatFormatter;
    assert.ok(chat);
    assert.equal(chat.format("Write hello."), "<|user|>\nWrite hello.<|end|>\n<|assistant|>\n");
    assert.deepEqual(chat.stops, ["<|end|>", "<|endoftext|>"]);
    assert.equal(chat.system, "none");
    assert.equal(chat.bosToken, "<s>");
    assert.equal(chat.eosToken, "<|endoftext|>");
    // phi-3's template starts with {{ bos_token }}; llama.cpp adds BOS itself, so it is left out.
    assert.equal(chat.addBos, true);
    assert.equal(chatFormatter(phi3, { addBos: false })?.format("x"), `<s>${chat.format("x")}`);
    const noFlag = new Map(phi3);
    noFlag.delete("tokenizer.ggml.add_bos_token");
    assert.equal(chatFormatter(noFlag)?.addBos, true, "SentencePiece's default");
  });

  test("phi-3's template drops system messages, so the system prompt opens the user message", () => {
    const chat = chatFormatter(phi3, { system: "Answer in one line." }) as ChatFormatter;
    assert.equal(chat.system, "user");
    assert.equal(
      chat.format("Write hello."),
      "<|user|>\nAnswer in one line.\n\nWrite hello.<|end|>\n<|assistant|>\n",
    );
    assert.deepEqual(chat.stops, ["<|end|>", "<|endoftext|>"]);
    assert.equal(chatFormatter(phi3, { system: "" })?.system, "none");
  });

  test("a phi-3 template with a system turn gets the system prompt there", () => {
    const meta = withKeys(phi3, { "tokenizer.chat_template": gguf.str(PHI3_WITH_SYSTEM) });
    const chat = chatFormatter(meta, { system: "Answer in one line." }) as ChatFormatter;
    assert.equal(chat.system, "template");
    assert.equal(
      chat.format("Write hello."),
      "<|system|>\nAnswer in one line.<|end|>\n<|user|>\nWrite hello.<|end|>\n<|assistant|>\n",
    );
    assert.equal(
      chatFormatter(meta)?.format("Write hello."),
      "<|user|>\nWrite hello.<|end|>\n<|assistant|>\n",
    );
    assert.deepEqual(chat.stops, ["<|end|>", "<|endoftext|>"]);
  });

  test("a template that refuses system messages gets the system prompt in the user message", () => {
    const refusing =
      "{% if messages[0]['role'] == 'system' %}{{ raise_exception('no system role') }}{% endif %}" +
      "{% for m in messages %}[INST] {{ m['content'] }} [/INST]{% endfor %}";
    const meta = withKeys(phi3, { "tokenizer.chat_template": gguf.str(refusing) });
    const chat = chatFormatter(meta, { system: "S." }) as ChatFormatter;
    assert.equal(chat.system, "user");
    assert.equal(chat.format("U"), "[INST] S.\n\nU [/INST]");
  });

  test("no chat template, no formatter: GPT-2's vocabulary and the tiny zoo keep raw prompts", async () => {
    assert.equal(chatFormatter(gpt2), null);
    assert.equal(await readChatFormatter(GPT2), null);
    assert.equal(await readChatFormatter(ZOO_BASE), null);
    assert.equal(chatFormatter(tinyLlamaMetadata(tinyLlamaConfig())), null);
    assert.equal(chatFormatter(withKeys(phi3, { "tokenizer.chat_template": gguf.str(" ") })), null);
  });

  test("BPE without add_bos_token: llama.cpp adds no BOS, so the template's BOS text stays", () => {
    const meta = withKeys(gpt2, {
      "tokenizer.chat_template": gguf.str(
        "{{ bos_token }}{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}" +
          "{% if add_generation_prompt %}assistant:{% endif %}",
      ),
    });
    const chat = chatFormatter(meta) as ChatFormatter;
    assert.equal(chat.addBos, false);
    assert.equal(chat.format("hi"), "<|endoftext|>user: hi\nassistant:");
    // Nothing follows an assistant message here, so the stops are the EOS token alone.
    assert.deepEqual(chat.stops, ["<|endoftext|>"]);
  });

  test("metadata as a plain record works as a Map does", async () => {
    const chat = chatFormatter(Object.fromEntries(phi3));
    assert.equal(chat?.format("x"), (await readChatFormatter(PHI3))?.format("x"));
  });

  test("broken templates fail when the formatter is made, naming the template", () => {
    const bad = (t: string) => withKeys(phi3, { "tokenizer.chat_template": gguf.str(t) });
    assert.throws(
      () => chatFormatter(bad("{% for m in messages %}")),
      /chat template of Phi3.*parse/,
    );
    assert.throws(
      () => chatFormatter(bad("{{ raise_exception('nope') }}")),
      /chat template of Phi3.*failed to render: .*nope/,
    );
    assert.throws(() => chatFormatter(bad("hello")), /leaves out the user's message/);
  });

  test("the run's chat section: auto, none, and a system prompt that would go nowhere", () => {
    assert.equal(chatFormatterFor({ template: "none" }, phi3), null);
    assert.equal(chatFormatterFor({ template: "auto" }, gpt2), null);
    assert.equal(chatFormatterFor({ template: "auto", system: "" }, gpt2), null);
    assert.equal(chatFormatterFor({ template: "auto", system: "S." }, phi3)?.system, "user");
    assert.throws(
      () => chatFormatterFor({ template: "none", system: "S." }, phi3),
      /chat.system is set but chat.template is "none"/,
    );
    assert.throws(
      () => chatFormatterFor({ template: "auto", system: "S." }, gpt2, "gpt2.gguf"),
      /gpt2.gguf has no chat template/,
    );
  });
});

describe("tiny LLaMA models on the real vocabularies, in llama.cpp", () => {
  let dir: string;
  let llama: Llama;
  let engine: Engine | undefined;
  let phi3Path: string;
  let gpt2Path: string;
  let model: EngineModel | undefined;

  /**
   * A LLaMA with `vocab`'s tokenizer metadata (and name) whose greedy output is fixed: each
   * rule's token predicts its successor, every other token `fallback`. A rule token's
   * embedding carries a large value in a "state" dimension of its own that dominates the small
   * random layers (as test/helpers/rule-model.ts does on the tiny vocabulary).
   */
  async function writeOnVocab(
    path: string,
    vocab: Map<string, GgufValue>,
    rules: [number, number][],
    fallback: number,
  ): Promise<void> {
    const { cfg, metadata, tensors } = tinyLlamaOnVocab(vocab, {
      nEmbd: 32,
      nLayer: 1,
      nHead: 4,
      nFf: 32,
      std: 0.02,
      seed: 3,
      contextLength: 128,
    });
    const data = (name: string) => tensors.find((t) => t.name === name)?.data as Float32Array;
    const embd = data("token_embd.weight");
    const out = data("output.weight");
    const e = cfg.nEmbd;
    const fallbackState = rules.length;
    for (let id = 0; id < cfg.nVocab; id++) embd[id * e + fallbackState] += 10;
    rules.forEach(([from, to], state) => {
      embd[from * e + fallbackState] -= 10;
      embd[from * e + state] += 10;
      out[to * e + state] = 4;
    });
    out[fallback * e + fallbackState] = 4;
    await writeGguf(path, metadata, tensors);
  }

  const OK = 3431; // "▁ok"

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "cycleqd-chat-"));
    phi3Path = join(dir, "phi3-vocab-llama.gguf");
    gpt2Path = join(dir, "gpt2-vocab-llama.gguf");
    // Every token predicts ▁ok, ▁ok predicts <|placeholder1|> (a control token that does not
    // end generation), and that predicts <|end|>.
    await writeOnVocab(
      phi3Path,
      phi3,
      [
        [OK, PLACEHOLDER1],
        [PLACEHOLDER1, END],
      ],
      OK,
    );
    await writeOnVocab(gpt2Path, gpt2, [], 0);
    // The engine first: llama.cpp's log callback is process-wide, and a later instance takes
    // it over, so that the engine's models log nothing to the console.
    engine = await createLlamaCppEngine({ gpu: false, threads: 1, parallel: 2 });
    model = await engine.loadModel(phi3Path);
    llama = await getLlama({ build: "never", gpu: false, logLevel: LlamaLogLevel.error });
  });

  /** The engine's model on phi-3's vocabulary. */
  const phi3Model = () => model as EngineModel;

  after(async () => {
    await engine?.dispose();
    await llama?.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  test("node-llama-cpp reads the tokenizer metadata intact, and BOS as chat.ts derives it", async () => {
    const phi3Chat = (await readChatFormatter(phi3Path)) as ChatFormatter;
    const m = await llama.loadModel({ modelPath: phi3Path });
    try {
      const tokenizer = (
        m.fileInfo.metadata as unknown as {
          tokenizer: { chat_template: string; ggml: { tokens: string[] } };
        }
      ).tokenizer;
      assert.equal(tokenizer.chat_template, phi3.get("tokenizer.chat_template")?.value);
      assert.equal(tokenizer.ggml.tokens.length, 32064);
      assert.equal(m.tokens.bos, BOS);
      assert.equal(m.tokens.eos, ENDOFTEXT);
      assert.equal(m.tokens.shouldPrependBosToken, phi3Chat.addBos);
      assert.equal(m.isEogToken(END as Token), true, "llama.cpp ends generation at <|end|>");
      assert.equal(m.isEogToken(ENDOFTEXT as Token), true);
      assert.equal(m.isEogToken(PLACEHOLDER1 as Token), false);
    } finally {
      await m.dispose();
    }
    const g = await llama.loadModel({ modelPath: gpt2Path });
    try {
      const meta = withKeys(gpt2, { "tokenizer.chat_template": gguf.str(PHI3_WITH_SYSTEM) });
      assert.equal(g.tokens.shouldPrependBosToken, false);
      assert.equal(g.tokens.shouldPrependBosToken, chatFormatter(meta)?.addBos);
    } finally {
      await g.dispose();
    }
  });

  test("the rendered prompt's special tokens are single tokens when read as special", async () => {
    const model = phi3Model();
    const chat = chatFormatter(
      withKeys(phi3, { "tokenizer.chat_template": gguf.str(PHI3_WITH_SYSTEM) }),
      { system: "Be brief." },
    ) as ChatFormatter;
    const prompt = chat.format("Say ok.");
    const special = model.tokenize(prompt, { special: true });
    // Under phi-3's name llama.cpp strips the whitespace after its special tokens (rstrip).
    assert.deepEqual(special, [
      SYSTEM,
      ...model.tokenize("Be brief."),
      END,
      USER,
      ...model.tokenize("Say ok."),
      END,
      ASSISTANT,
    ]);
    // Read as plain text, the markers are spelled out piece by piece.
    const plain = model.tokenize(prompt);
    assert.ok(plain.every((t) => t < ENDOFTEXT));
    assert.ok(plain.length > special.length + 10);
  });

  test("BOS is added once: a special prompt that starts with <s> scores as one without it", async () => {
    const model = phi3Model();
    const chat = (await readChatFormatter(phi3Path)) as ChatFormatter;
    const prompt = chat.format("Say ok.");
    assert.ok(!prompt.startsWith("<s>"));
    const [withBos, without, plain] = await model.score([
      { prompt: `<s>${prompt}`, continuation: "ok", special: true },
      { prompt, continuation: "ok", special: true },
      { prompt, continuation: "ok" },
    ]);
    assert.deepEqual(withBos.logprobs, without.logprobs);
    assert.notDeepEqual(plain.logprobs, without.logprobs);
  });

  test("generation ends at <|end|>; with special, control tokens are spelled and stop strings match them", async () => {
    const model = phi3Model();
    const chat = (await readChatFormatter(phi3Path)) as ChatFormatter;
    const prompt = chat.format("Say ok.");
    const requests = [
      { prompt, maxTokens: 8, special: true, stop: chat.stops },
      { prompt, maxTokens: 8, special: true },
      { prompt, maxTokens: 8, special: true, stop: ["<|placeholder1|>"] },
      { prompt, maxTokens: 8, stop: ["<|placeholder1|>"] },
    ];
    const results = await model.generate(requests);
    const [withChatStops, spelled, stopped, stoppedPlain] = results;
    assert.deepEqual(withChatStops, { text: "ok<|placeholder1|>", tokens: 3, finish: "eos" });
    assert.deepEqual(spelled, { text: "ok<|placeholder1|>", tokens: 3, finish: "eos" });
    assert.deepEqual(stopped, { text: "ok", tokens: 2, finish: "stop" });
    // Without special the control token spells nothing, so its text cannot stop generation.
    assert.deepEqual(stoppedPlain, { text: "ok", tokens: 3, finish: "eos" });
    // node-llama-cpp's own decode loop gives the same.
    const evaluate = await createLlamaCppEngine({ gpu: false, threads: 1, decodeLoop: "evaluate" });
    try {
      const m = await evaluate.loadModel(phi3Path, { parallel: 2 });
      assert.deepEqual(await m.generate(requests), results);
    } finally {
      await evaluate.dispose();
    }
  });

  test("llama.cpp strips whitespace after phi-3's special tokens only under phi-3's general.name", async () => {
    const model = phi3Model();
    // So a merge of a phi-3 model must keep general.name, or its prompts tokenize differently.
    const renamed = join(dir, "renamed.gguf");
    const reader = await openGguf(phi3Path);
    try {
      const metadata = new Map(reader.metadata);
      metadata.set("general.name", gguf.str("cycleqd-child-1"));
      await writeGguf(
        renamed,
        metadata,
        reader.tensors.map((t) => ({
          name: t.name,
          dtype: "F32" as const,
          shape: t.shape,
          data: () => reader.read(t.name),
        })),
      );
    } finally {
      await reader.close();
    }
    const other = await (engine as Engine).loadModel(renamed, { parallel: 1 });
    try {
      const text = "<|user|>\nSay ok.<|end|>\n<|assistant|>\n";
      const asPhi3 = model.tokenize(text, { special: true });
      const asOther = other.tokenize(text, { special: true });
      assert.deepEqual(asPhi3, [USER, ...model.tokenize("Say ok."), END, ASSISTANT]);
      assert.ok(asOther.length > asPhi3.length, "the newlines stay as tokens");
    } finally {
      await other.dispose();
    }
  });

  test("requests with a special that is not a boolean are refused", async () => {
    const model = phi3Model();
    await assert.rejects(
      model.generate([{ prompt: "x", maxTokens: 1, special: "yes" as unknown as boolean }]),
      /generate request 0: special must be a boolean/,
    );
    await assert.rejects(
      model.score([{ prompt: "x", continuation: "y", special: 1 as unknown as boolean }]),
      /score request 0: special must be a boolean/,
    );
  });
});
