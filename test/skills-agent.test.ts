import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { GenerateRequest } from "../src/engine/types.ts";
import { runEpisodes } from "../src/skills/agent.ts";
import {
  OS_EPISODE_STOP,
  type OsInteractionProblem,
  osEpisode,
  parseAgentAction,
} from "../src/skills/loaders/os-interaction.ts";
import { ShellSession } from "../src/skills/os/session.ts";
import { resolveRunner } from "../src/skills/runner.ts";
import type { SkillModel } from "../src/skills/types.ts";

const runner = resolveRunner();

/** The pointer file names another file; its number is the answer. */
const pointerProblem: OsInteractionProblem = {
  id: "agent/test/0",
  split: "test",
  template: "file",
  key: "pointer",
  instruction: "The file pointer.txt names another file. What number is written in that file?",
  reference: "",
  init: [
    { language: "bash", code: "mkdir -p vault && echo vault/code_17.txt > pointer.txt" },
    { language: "python", code: "open('vault/code_17.txt', 'w').write('4711\\n')" },
  ],
  evaluation: { kind: "match", answer: "4711", strip: true },
  labels: ["file"],
};

/** A state task: judged by a check script after the episode. */
const mkdirProblem: OsInteractionProblem = {
  id: "agent/test/1",
  split: "test",
  template: "file",
  key: "mkdir",
  instruction: "Create the directory out inside work.",
  reference: "",
  init: [{ language: "bash", code: "mkdir work" }],
  evaluation: { kind: "check", checks: [{ language: "bash", code: "test -d work/out" }] },
  labels: ["file"],
};

const bash = (cmd: string) => `Think: next step.\nAct: bash\n\`\`\`bash\n${cmd}\n\`\`\``;

/** A scripted agent: it reads the last observation in its transcript to choose the next act. */
function scriptedAgent(policy: (transcript: string) => string) {
  const batches: number[] = [];
  const model: SkillModel = {
    generate: async (reqs: GenerateRequest[]) => {
      batches.push(reqs.length);
      return reqs.map((r) => ({ text: policy(r.prompt), tokens: 1, finish: "stop" as const }));
    },
    score: async () => [],
  };
  return { model, batches };
}

function lastOutput(transcript: string): string {
  const i = transcript.lastIndexOf("The output of the OS:\n");
  if (i < 0) return "";
  return transcript
    .slice(i + 22)
    .split("\nAgent: ")[0]
    .trim();
}

function policy(t: string): string {
  if (t.includes("What number is written")) {
    const turns = (t.match(/\nOS: /g) ?? []).length;
    if (turns === 0) return bash("cat pointer.txt");
    if (turns === 1) return bash(`cat ${lastOutput(t)}`);
    return `Think: found it.\nAct: answer(${lastOutput(t)})`;
  }
  if (t.includes("Create the directory out")) {
    const turns = (t.match(/\nOS: /g) ?? []).length;
    if (turns === 0) return bash("cd work");
    if (turns === 1) return bash("mkdir out && ls");
    return "Think: done.\nAct: finish";
  }
  return bash("ls");
}

describe("agent loop (multi-turn episodes)", () => {
  test("an episode that needs the first command's output for the second", async () => {
    const run = await runner;
    const { model, batches } = scriptedAgent(policy);
    const [r] = await runEpisodes(model, [osEpisode(run, pointerProblem)], {
      maxRounds: 8,
      maxTokens: 200,
      stop: OS_EPISODE_STOP,
    });
    assert.deepEqual(
      { pass: r.pass, reason: r.reason, rounds: r.rounds },
      { pass: true, reason: "ok", rounds: 3 },
    );
    assert.equal(
      r.turns[0].observation,
      "\nOS: The output of the OS:\nvault/code_17.txt\n\nAgent: ",
    );
    assert.match(r.turns[1].observation, /4711/);
    assert.deepEqual(batches, [1, 1, 1]);
  });

  test("state carries across turns (cd), checks run after the episode, episodes are batched", async () => {
    const run = await runner;
    const { model, batches } = scriptedAgent(policy);
    const wrong: OsInteractionProblem = {
      ...pointerProblem,
      evaluation: { kind: "match", answer: "17", strip: true },
    };
    const results = await runEpisodes(
      model,
      [osEpisode(run, mkdirProblem), osEpisode(run, pointerProblem), osEpisode(run, wrong)],
      { maxRounds: 8, maxTokens: 200, stop: OS_EPISODE_STOP },
    );
    assert.deepEqual(
      results.map((r) => [r.pass, r.rounds]),
      [
        [true, 3],
        [true, 3],
        [false, 3],
      ],
    );
    assert.match(results[0].turns[1].observation, /out/);
    assert.equal(results[2].reason, 'wrong answer: got "4711", expected "17"');
    assert.deepEqual(batches, [3, 3, 3], "one generate call per round for all live episodes");
  });

  test("round limit and invalid actions end an episode as a fail", async () => {
    const run = await runner;
    const looping = scriptedAgent(() => bash("ls"));
    const [r] = await runEpisodes(looping.model, [osEpisode(run, mkdirProblem)], {
      maxRounds: 2,
      maxTokens: 50,
      stop: OS_EPISODE_STOP,
    });
    assert.deepEqual([r.pass, r.reason, r.rounds], [false, "round limit (2) reached", 2]);
    const rambling = scriptedAgent(() => "I am not sure what to do.");
    const [r2] = await runEpisodes(rambling.model, [osEpisode(run, mkdirProblem)], {
      maxRounds: 5,
      maxTokens: 50,
      stop: OS_EPISODE_STOP,
    });
    assert.equal(r2.pass, false);
    assert.match(r2.reason, /^invalid action/);
  });

  test("AgentBench's action parser", () => {
    assert.deepEqual(parseAgentAction(bash("ls -a")), { action: "bash", content: "ls -a" });
    assert.deepEqual(parseAgentAction("Think: x\nAct: answer(4 (four))"), {
      action: "answer",
      content: "4 (four)",
    });
    assert.deepEqual(parseAgentAction("Act: finish"), { action: "finish" });
    assert.equal(parseAgentAction("Act: bash\nls").action, "invalid");
  });

  test("a shell session replays earlier commands: cd and variables persist", async () => {
    const s = new ShellSession(await runner, { files: { "a/b.txt": "hi\n" } });
    assert.equal((await s.exec("cd a; X=5")).output, "");
    assert.equal((await s.exec("cat b.txt; echo $X")).output, "hi\n5\n");
    assert.equal((await s.exec("pwd")).output, "/work/a\n");
  });
});
