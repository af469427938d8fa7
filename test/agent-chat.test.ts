/**
 * Multi-turn episodes through a model's chat template: the task and each observation are
 * user messages, each turn the assistant's, rendered by phi-3's real template.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import type { GenerateRequest } from "../src/engine/types.ts";
import { type Environment, runEpisodes } from "../src/skills/agent.ts";
import { readChatFormatter } from "../src/skills/chat.ts";

const PHI3 = join(import.meta.dirname, "fixtures", "vocab", "ggml-vocab-phi-3.gguf");

test("an episode with a chat template is a conversation; without one, a transcript", async () => {
  const chat = await readChatFormatter(PHI3);
  assert.ok(chat);
  // A two-step environment: one observation, then a pass.
  const env = (): Environment => {
    let step = 0;
    return {
      start: async () => "Task: count the files.\nAgent: ",
      step: async () =>
        ++step === 1
          ? { done: false, observation: "\nOS: 5\nAgent: " }
          : { done: true, grade: { pass: true, reason: "ok" } },
    };
  };
  const seen: GenerateRequest[][] = [];
  const model = {
    generate: async (reqs: GenerateRequest[]) => {
      seen.push(reqs);
      return reqs.map(() => ({ text: "Act: bash ls | wc -l", tokens: 1, finish: "stop" as const }));
    },
    score: async () => [],
  };
  const opts = { maxRounds: 3, maxTokens: 20, stop: ["\nOS:"] };

  const [r] = await runEpisodes(model, [env()], { ...opts, chat });
  assert.equal(r.pass, true);
  assert.equal(r.rounds, 2);
  const [first, second] = seen.map((reqs) => reqs[0]);
  assert.equal(first.prompt, chat.format("Task: count the files.\nAgent: "));
  assert.equal(first.special, true);
  assert.ok(first.stop?.includes("<|end|>") && first.stop.includes("\nOS:"));
  assert.equal(
    second.prompt,
    chat.conversation(["Task: count the files.\nAgent: ", "Act: bash ls | wc -l", "OS: 5\nAgent:"]),
  );
  assert.match(second.prompt, /<\|assistant\|>\nAct: bash ls \| wc -l<\|end\|>\n<\|user\|>\nOS: 5/);
  assert.ok(second.prompt.endsWith("<|assistant|>\n"));
  assert.throws(() => chat.conversation(["a", "b"]), /from user to user/);

  seen.length = 0;
  await runEpisodes(model, [env()], opts);
  assert.equal(
    seen[1][0].prompt,
    "Task: count the files.\nAgent: Act: bash ls | wc -l\nOS: 5\nAgent: ",
  );
  assert.equal(seen[1][0].special, undefined);
});
