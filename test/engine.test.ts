import assert from "node:assert/strict";
import { copyFile, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { createLlamaCppEngine, defaultThreads } from "../src/engine/llama-cpp.ts";
import { findStop } from "../src/engine/requests.ts";
import type { Engine, EngineModel } from "../src/engine/types.ts";
import { gguf, writeGguf } from "../src/tensors/gguf.ts";
import { EOS, writeRuleModel } from "./helpers/rule-model.ts";
import {
  tinyLlamaConfig,
  tinyLlamaMetadata,
  tinyLlamaTensors,
  tinyVocab,
  writeTinyLlamaGguf,
} from "./helpers/tiny-gguf.ts";

let dir: string;
let engine: Engine;
let rule: EngineModel;
let random: EngineModel;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "cycleqd-engine-"));
  // a→b→c→" "→a cycles; z ends the text; any other character is followed by a.
  await writeRuleModel(join(dir, "rule.gguf"), { a: "b", b: "c", c: " ", " ": "a", z: EOS }, "a");
  await writeTinyLlamaGguf(join(dir, "random.gguf"), { seed: 11, contextLength: 128 });
  engine = await createLlamaCppEngine({ gpu: false, threads: 1 });
  rule = await engine.loadModel(join(dir, "rule.gguf"));
  random = await engine.loadModel(join(dir, "random.gguf"), { parallel: 32 });
});

after(async () => {
  await engine?.dispose();
  await rm(dir, { recursive: true, force: true });
});

describe("engine info", () => {
  test("reports the CPU backend, threads and sequences", () => {
    const info = engine.info();
    assert.equal(info.backend, "CPU");
    assert.equal(info.threads, 1);
    assert.equal(info.parallel, 8);
    assert.match(info.implementation, /node-llama-cpp 3\.21\.1/);
    assert.equal(rule.parallel, 8);
    assert.equal(random.parallel, 32);
    assert.ok(random.contextSize >= 128);
  });

  test("default threads: 1 on small machines, half the cores on large ones", () => {
    assert.equal(defaultThreads(2), 1);
    assert.equal(defaultThreads(4), 1);
    assert.equal(defaultThreads(16), 8);
  });
});

describe("generate", () => {
  test("stops at maxTokens with finish 'length'", async () => {
    const [r] = await rule.generate([{ prompt: "x", maxTokens: 10 }]);
    assert.deepEqual(r, { text: "abc abc ab", tokens: 10, finish: "length" });
  });

  test("cuts the text before the first stop string, even one spread over several tokens", async () => {
    const results = await rule.generate([
      { prompt: "x", maxTokens: 20, stop: ["c a"] },
      { prompt: "x", maxTokens: 20, stop: ["zzz", " ", "b"] },
      { prompt: "x", maxTokens: 20, stop: ["a"] },
      { prompt: "x", maxTokens: 3, stop: ["c a"] },
    ]);
    assert.deepEqual(results, [
      { text: "ab", tokens: 5, finish: "stop" },
      { text: "a", tokens: 2, finish: "stop" },
      { text: "", tokens: 1, finish: "stop" },
      { text: "abc", tokens: 3, finish: "length" },
    ]);
  });

  test("ends at EOS with finish 'eos' and no EOS text", async () => {
    const results = await rule.generate([
      { prompt: "z", maxTokens: 10 },
      { prompt: "hello xyz", maxTokens: 10, stop: ["q"] },
    ]);
    assert.deepEqual(results, [
      { text: "", tokens: 1, finish: "eos" },
      { text: "", tokens: 1, finish: "eos" },
    ]);
  });

  test("an empty prompt is conditioned on BOS alone", async () => {
    const [r] = await rule.generate([{ prompt: "", maxTokens: 4 }]);
    assert.deepEqual(r, { text: "abc ", tokens: 4, finish: "length" });
  });

  test("batched results equal one-at-a-time results with 1, 8 and 32 sequences", async () => {
    const requests = Array.from({ length: 32 }, (_, i) => ({
      prompt: `Q${i}: ${"xyz".repeat(i % 5)} what is ${i * 7}?`,
      maxTokens: 12 + (i % 9),
    }));
    const alone: string[] = [];
    for (const r of requests) alone.push(JSON.stringify((await random.generate([r]))[0]));
    for (const parallel of [1, 8, 32, 32, 32]) {
      const batched = await random.generate(requests, { parallel });
      assert.deepEqual(
        batched.map((b) => JSON.stringify(b)),
        alone,
        `parallel ${parallel}`,
      );
    }
  });

  test("onResult reports each request once, as it finishes, before generate resolves", async () => {
    // Short budgets finish first: completion order differs from request order.
    const requests = Array.from({ length: 10 }, (_, i) => ({
      prompt: `r${i}`,
      maxTokens: i % 2 ? 2 : 20,
    }));
    const seen: [number, string][] = [];
    let resolved = false;
    const results = await random
      .generate(requests, {
        parallel: 4,
        onResult: (i, r) => {
          assert.equal(resolved, false);
          seen.push([i, JSON.stringify(r)]);
        },
      })
      .finally(() => {
        resolved = true;
      });
    assert.deepEqual(
      [...seen].sort((x, y) => x[0] - y[0]),
      results.map((r, i) => [i, JSON.stringify(r)]),
    );
    assert.notDeepEqual(
      seen.map(([i]) => i),
      requests.map((_, i) => i),
    );
  });

  test("concurrent calls on one model share its sequences", async () => {
    const requests = Array.from({ length: 12 }, (_, i) => ({ prompt: `n${i}`, maxTokens: 6 }));
    const [a, b, c] = await Promise.all([
      random.generate(requests),
      random.generate(requests.slice(0, 5)),
      random.generate(requests, { parallel: 3 }),
    ]);
    assert.deepEqual(b, a.slice(0, 5));
    assert.deepEqual(c, a);
  });

  test("a prompt that fills the context is rejected; a long budget ends when it fills", async () => {
    await assert.rejects(
      rule.generate([{ prompt: "a".repeat(rule.contextSize + 5), maxTokens: 1 }]),
      /prompt has \d+ tokens.*contextSize/,
    );
    const prompt = "a".repeat(rule.contextSize - 10);
    const [r] = await rule.generate([{ prompt, maxTokens: 1000 }]);
    assert.equal(r.finish, "length");
    assert.ok(r.tokens <= 10, `generated ${r.tokens} tokens`);
  });

  test("rejects malformed requests with a message naming the field", async () => {
    await assert.rejects(rule.generate([{ prompt: "a", maxTokens: 0 }]), /maxTokens/);
    await assert.rejects(rule.generate([{ prompt: "a", maxTokens: 1.5 }]), /maxTokens/);
    await assert.rejects(rule.generate([{ prompt: "a", maxTokens: 2, stop: [""] }]), /stop/);
    await assert.rejects(
      rule.generate([{ prompt: 3 as unknown as string, maxTokens: 2 }]),
      /request 0: prompt/,
    );
    await assert.rejects(
      rule.generate([{ prompt: "a", maxTokens: 2 }], { parallel: 0 }),
      /parallel/,
    );
    assert.deepEqual(await rule.generate([]), []);
  });

  test("findStop finds the earliest stop string at or after a position", () => {
    assert.equal(findStop("abcabc", ["c", "b"]), 1);
    assert.equal(findStop("abcabc", ["c", "b"], 3), 4);
    assert.equal(findStop("abc", ["x"]), -1);
    assert.equal(findStop("abc", ["a"], -4), 0);
  });
});

describe("tokenize", () => {
  test("round-trips text without adding BOS and without parsing special tokens", () => {
    const tokens = rule.tokenize("hi <s> there é");
    assert.ok(!tokens.includes(1));
    assert.equal(rule.detokenize(tokens), "hi <s> there é");
    assert.equal(rule.tokenize("abc").length, 3);
  });
});

describe("score", () => {
  test("log-probs are ≤ 0 and the greedy continuation has the highest log-prob at each step", async () => {
    const prompts = ["Hello", "What is 2+2?", "", "xyz"];
    const generated = await random.generate(prompts.map((prompt) => ({ prompt, maxTokens: 8 })));
    for (const [i, g] of generated.entries()) {
      // Byte tokens that form no valid UTF-8 do not survive a text round trip.
      if (random.tokenize(g.text).length !== g.tokens) continue;
      const prompt = prompts[i];
      const [greedy] = await random.score([{ prompt, continuation: g.text }]);
      assert.equal(greedy.logprobs.length, g.tokens);
      assert.ok(greedy.greedy, `greedy continuation of ${JSON.stringify(prompt)}`);
      assert.ok(greedy.sum <= 0 && greedy.logprobs.every((l) => l <= 0 && Number.isFinite(l)));
      assert.ok(Math.abs(greedy.mean - greedy.sum / g.tokens) < 1e-12);

      // Any other first token is less likely than the greedy one.
      const other = g.text[0] === "q" ? "r" : "q";
      const [alt] = await random.score([{ prompt, continuation: other + g.text.slice(1) }]);
      assert.ok(!alt.greedy);
      assert.ok(alt.logprobs[0] < greedy.logprobs[0]);
    }
  });

  test("log-probs of every next token sum to 1 in probability", async () => {
    const chars = Array.from({ length: 0x7e - 0x21 + 1 }, (_, i) => String.fromCharCode(0x21 + i));
    const scores = await random.score(
      [" ", "\n", ...chars].map((c) => ({ prompt: "Hi", continuation: c })),
    );
    const printable = scores.reduce((s, r) => s + Math.exp(r.sum), 0);
    // The rest of the mass is on the specials and the byte tokens.
    assert.ok(printable > 0 && printable < 1);
  });

  test("agrees with generate on the rule model and is order-independent in a batch", async () => {
    const requests = [
      { prompt: "x", continuation: "abc" },
      { prompt: "x", continuation: "b" },
      { prompt: "", continuation: "ab" },
    ];
    const batch = await rule.score(requests);
    assert.deepEqual(
      batch.map((r) => r.greedy),
      [true, false, true],
    );
    assert.ok(batch[0].logprobs[0] > batch[1].logprobs[0]);
    const reversed = await rule.score([...requests].reverse());
    assert.deepEqual([...reversed].reverse(), batch);
  });

  test("batched log-probs equal one-at-a-time log-probs, call after call", async () => {
    // Prompts of different lengths make llama.cpp split batches out of order, the case where
    // unsynchronised sampling used to hand sequences each other's logits.
    const requests = Array.from({ length: 32 }, (_, i) => ({
      prompt: `Q${i}: ${"xyz".repeat(i % 5)} what is ${i * 7}?`,
      continuation: "abcdefghijklmnop",
    }));
    const alone: number[][] = [];
    for (const r of requests) alone.push((await random.score([r]))[0].logprobs);
    for (let rep = 0; rep < 12; rep++) {
      const batched = await random.score(requests);
      let maxErr = 0;
      batched.forEach((b, i) => {
        b.logprobs.forEach((lp, j) => {
          maxErr = Math.max(maxErr, Math.abs(lp - alone[i][j]));
        });
      });
      assert.ok(maxErr < 1e-4, `call ${rep}: max |Δ log p| ${maxErr}`);
    }
  });

  test("rejects an empty continuation and a request longer than the context", async () => {
    await assert.rejects(rule.score([{ prompt: "a", continuation: "" }]), /continuation/);
    await assert.rejects(
      rule.score([{ prompt: "a", continuation: "b".repeat(rule.contextSize) }]),
      /context holds/,
    );
  });
});

describe("loading errors", () => {
  test("a missing file names the path", async () => {
    const path = join(dir, "nope.gguf");
    await assert.rejects(engine.loadModel(path), (e: Error) =>
      e.message.includes(`not found: ${path}`),
    );
  });

  test("a file that is not GGUF says so", async () => {
    const path = join(dir, "text.gguf");
    await writeFile(path, "this is not a model");
    await assert.rejects(engine.loadModel(path), /is not a GGUF file/);
  });

  test("a truncated GGUF fails with the path and llama.cpp's reason", async () => {
    const path = join(dir, "truncated.gguf");
    const bytes = await readFile(join(dir, "random.gguf"));
    await writeFile(path, bytes.subarray(0, bytes.length - 1000));
    await assert.rejects(engine.loadModel(path), (e: Error) => {
      assert.match(e.message, /could not load model .*truncated\.gguf/);
      assert.match(e.message, /llama\.cpp: .*(corrupted|bounds|failed)/);
      return true;
    });
  });

  test("a SentencePiece vocabulary without byte tokens is refused before it can abort", async () => {
    const cfg = tinyLlamaConfig({ seed: 2 });
    const metadata = tinyLlamaMetadata(cfg);
    const tokens = tinyVocab().tokens.map((t) => (t === "<0x41>" ? "A-byte" : t));
    metadata.set("tokenizer.ggml.tokens", gguf.arr("string", tokens));
    const path = join(dir, "nobytes.gguf");
    await writeGguf(path, metadata, tinyLlamaTensors(cfg));
    await assert.rejects(engine.loadModel(path), /255 of the 256 byte tokens/);
  });

  test("bad options are rejected", async () => {
    await assert.rejects(createLlamaCppEngine({ threads: 0 }), /threads/);
    await assert.rejects(createLlamaCppEngine({ gpu: "cuda" as unknown as false }), /gpu/);
    await assert.rejects(engine.loadModel(join(dir, "rule.gguf"), { parallel: -1 }), /parallel/);
  });
});

describe("lifetimes", () => {
  test("a disposed model refuses work; the engine disposes what is still loaded", async () => {
    const path = join(dir, "copy.gguf");
    await copyFile(join(dir, "rule.gguf"), path);
    const local = await createLlamaCppEngine({ gpu: false, threads: 1, parallel: 2 });
    const a = await local.loadModel(path);
    const b = await local.loadModel(path, { contextSize: 32 });
    assert.equal(b.contextSize >= 32, true);
    await a.dispose();
    await a.dispose();
    await assert.rejects(a.generate([{ prompt: "x", maxTokens: 2 }]), /disposed/);
    assert.deepEqual(await b.generate([{ prompt: "x", maxTokens: 2 }]), [
      { text: "ab", tokens: 2, finish: "length" },
    ]);
    await local.dispose();
    await assert.rejects(b.score([{ prompt: "x", continuation: "a" }]), /disposed/);
    await assert.rejects(local.loadModel(path), /engine has been disposed/);
    // Engines share one llama.cpp instance; disposing one leaves the others working.
    assert.deepEqual(await rule.generate([{ prompt: "x", maxTokens: 3 }]), [
      { text: "abc", tokens: 3, finish: "length" },
    ]);
  });
});
