import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { GenerateRequest, ScoreRequest } from "../src/engine/types.ts";
import { evaluateSkills } from "../src/skills/evaluate.ts";
import {
  compareOutput,
  DataError,
  type JsonlProblem,
  loadJsonlSkill,
  stripFence,
} from "../src/skills/loaders/generic.ts";
import { type Grader, openGrader } from "../src/skills/runner.ts";
import type { Skill } from "../src/skills/types.ts";

const fx = (name: string) => join(import.meta.dirname, "fixtures", "generic", name);

let grader: Grader;
before(async () => {
  grader = await openGrader();
});
after(async () => {
  await grader?.close();
});

const grade = (s: Skill<JsonlProblem>, p: JsonlProblem, output: string) =>
  s.grade(p, output, { run: grader.run });

function byId(s: Skill<JsonlProblem>, id: string): JsonlProblem {
  const p = s.problems("test").find((x) => x.recordId === id);
  if (!p) throw new Error(`no record ${id}`);
  return p;
}

describe("generic jsonl skill: loading", () => {
  test("records of both forms load, in JSONL and JSON array files", () => {
    const s = loadJsonlSkill(
      { files: { test: [fx("tests.jsonl"), fx("expected.json")] } },
      { name: "mine" },
    );
    const ps = s.problems("test");
    assert.equal(ps.length, 9);
    assert.deepEqual(s.skipped, []);
    assert.equal(ps[0].id, "mine/test/0000");
    assert.equal(ps[0].template, "tests");
    assert.equal(byId(s, "pi").template, "expected-python");
    assert.equal(byId(s, "count-lines").template, "expected-bash");
    // Keys: the record's id, else a hash of the prompt.
    assert.equal(ps[0].key, "id:square");
    assert.match(ps[2].key, /^prompt:[0-9a-f]{24}$/);
    assert.equal(ps[2].recordId, undefined);
    // A numeric `expected` is taken as its JSON text; defaults are filled in.
    assert.deepEqual(byId(s, "py-file").judge, {
      kind: "expected",
      language: "python",
      expected: "15",
      match: "trimmed",
      setup: "echo 4 5 6 > nums.txt",
      check: "cat total.txt",
    });
    assert.deepEqual(byId(s, "evens").judge, {
      kind: "tests",
      tests: ["assert evens(data) == [0, 2, 4, 6, 8]", "assert evens([]) == []"],
      setup: "data = list(range(10))\nassert callable(evens)",
    });
    // Prompts as given; Python answers present, so only a closing fence stops generation.
    assert.equal(s.format(ps[0]), ps[0].instruction);
    assert.deepEqual(s.stop, ["\n```"]);
    assert.equal(s.terminator, "\n```");
    assert.equal(s.maxTokens, 256);
  });

  test("options: prefix, format, stop, terminator, maxTokens; bash-only default stop", () => {
    const bashOnly = loadJsonlSkill({ files: { train: fx("train.jsonl") } }, { name: "sh" });
    assert.deepEqual(bashOnly.stop, ["\n\n", "\n```"]);
    assert.equal(bashOnly.terminator, "\n\n");
    const s = loadJsonlSkill(
      { files: { train: fx("train.jsonl") } },
      { name: "sh", prefix: "You are a shell expert.\n", stop: ["\n"], maxTokens: 64 },
    );
    const p = s.problems("train")[0];
    assert.equal(s.format(p), "You are a shell expert.\nPrint one.\n$ ");
    assert.deepEqual(s.stop, ["\n"]);
    assert.equal(s.terminator, "\n");
    assert.equal(s.maxTokens, 64);
    const f = loadJsonlSkill(
      { files: { train: fx("train.jsonl") } },
      { name: "sh", format: (q) => `Q: ${q.instruction.trim()}\nA: `, terminator: "\n\n" },
    );
    assert.equal(f.format(p), "Q: Print one.\n$\nA: ");
    assert.equal(f.terminator, "\n\n");
    assert.throws(
      () => loadJsonlSkill({ files: { train: fx("train.jsonl") } }, { name: "" }),
      /needs a name/,
    );
    assert.throws(
      () => loadJsonlSkill({ files: { train: fx("train.jsonl") } }, { name: "x", maxTokens: 0 }),
      /maxTokens must be a positive integer/,
    );
    assert.throws(
      () => loadJsonlSkill({ files: { train: fx("train.jsonl") } }, { name: "x", stop: [""] }),
      /stop must be/,
    );
  });

  test("a malformed record is skipped and listed with its line and field; strict throws", () => {
    const s = loadJsonlSkill({ files: { test: fx("bad.jsonl") } }, { name: "mine" });
    assert.deepEqual(
      s.problems("test").map((p) => p.recordId),
      ["ok"],
    );
    const reasons = new Map(s.skipped?.map((r) => [r.line, r.reason]));
    assert.ok(s.skipped?.every((r) => r.file === fx("bad.jsonl")));
    assert.deepEqual([...reasons.keys()], [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    assert.equal(reasons.get(2), 'field "prompt" is missing');
    assert.match(reasons.get(3) ?? "", /^field "expected" cannot be given with "tests"/);
    assert.match(reasons.get(4) ?? "", /^needs "tests" .* or "expected"/);
    assert.match(reasons.get(5) ?? "", /^field "chek" is not a known field/);
    assert.match(reasons.get(6) ?? "", /^field "match" is "fuzzy"/);
    assert.match(reasons.get(7) ?? "", /^field "expected" is "one", not a number/);
    assert.match(reasons.get(8) ?? "", /^field "expected" is not a valid regular expression/);
    assert.match(reasons.get(9) ?? "", /^field "language" is "ruby"/);
    assert.match(reasons.get(10) ?? "", /^field "tests" is empty/);
    assert.match(reasons.get(11) ?? "", /^field "match" only applies to "expected" records/);
    assert.match(reasons.get(12) ?? "", /^not valid JSON/);
    assert.throws(
      () => loadJsonlSkill({ files: { test: fx("bad.jsonl") } }, { name: "mine", strict: true }),
      (e: Error) =>
        e instanceof DataError && e.message.startsWith(`${fx("bad.jsonl")}:12: not valid JSON`),
    );
    // In a JSON array, the line is where the record starts.
    const lenient = loadJsonlSkill({ files: { test: fx("bad-field.json") } }, { name: "mine" });
    assert.equal(lenient.problems("test").length, 1);
    assert.deepEqual(lenient.skipped, [
      { file: fx("bad-field.json"), line: 3, reason: 'field "tests" must be an array of strings' },
    ]);
    assert.throws(
      () =>
        loadJsonlSkill({ files: { test: fx("bad-field.json") } }, { name: "mine", strict: true }),
      (e: Error) =>
        e instanceof DataError &&
        e.message === `${fx("bad-field.json")}:3: field "tests" must be an array of strings`,
    );
  });

  test("splits must be disjoint: by id, else by prompt", () => {
    const ok = loadJsonlSkill(
      { files: { train: fx("train.jsonl"), test: fx("test.jsonl") } },
      { name: "sh" },
    );
    assert.equal(ok.problems("train").length, 2);
    assert.equal(ok.problems("test").length, 2);
    assert.equal(ok.problems("test")[0].id, "sh/test/0000");
    assert.throws(
      () =>
        loadJsonlSkill(
          { files: { train: fx("train.jsonl"), test: fx("test-overlap-id.jsonl") } },
          { name: "sh" },
        ),
      (e: Error) =>
        e instanceof DataError &&
        /problem id:t1 is in two splits: train \(.*train\.jsonl:1\) and test \(.*test-overlap-id\.jsonl:1\)/.test(
          e.message,
        ),
    );
    assert.throws(
      () =>
        loadJsonlSkill(
          { files: { train: fx("train.jsonl"), test: fx("test-overlap-prompt.jsonl") } },
          { name: "sh" },
        ),
      (e: Error) =>
        e instanceof DataError &&
        /problem prompt:[0-9a-f]+ is in two splits: train \(.*train\.jsonl:2\)/.test(e.message),
    );
  });
});

describe("generic jsonl skill: comparing outputs", () => {
  test("exact, trimmed, number, regex", () => {
    assert.equal(compareOutput("3\n", "3\n", "exact"), null);
    assert.equal(
      compareOutput("3", "3\n", "exact"),
      'wrong output: got "3", expected "3\\n" (exact match)',
    );
    assert.equal(compareOutput("  3\n", "3", "trimmed"), null);
    assert.match(compareOutput("3 4", "3", "trimmed") ?? "", /wrong output/);
    assert.equal(compareOutput("3.0000001\n", "3", "number"), null);
    assert.equal(compareOutput("1e3", "1000", "number"), null);
    assert.equal(compareOutput("0", "0", "number"), null);
    assert.match(compareOutput("3.01", "3", "number") ?? "", /wrong number/);
    assert.match(compareOutput("three", "3", "number") ?? "", /not a number/);
    assert.match(compareOutput("0x3", "3", "number") ?? "", /not a number/);
    assert.equal(compareOutput("Hi, bob\n", "(Hello|Hi), bob", "regex"), null);
    // The whole trimmed output must match.
    assert.match(compareOutput("Hi, bob and more", "(Hello|Hi), bob", "regex") ?? "", /match/);
    assert.match(compareOutput("say Hi, bob", "Hi, bob|x", "regex") ?? "", /match/);
  });

  test("a Markdown fence around the answer is removed", () => {
    assert.equal(stripFence("```bash\nls -l\n```"), "ls -l");
    assert.equal(stripFence("```python\ndef f():\n    return 1"), "def f():\n    return 1");
    assert.equal(stripFence("echo hi\n```"), "echo hi");
    assert.equal(stripFence("echo '```'"), "echo '```'");
  });
});

describe("generic jsonl skill: grading in the sandbox", () => {
  test("every reference passes", async () => {
    const s = loadJsonlSkill(
      { files: { test: [fx("tests.jsonl"), fx("expected.json")] } },
      { name: "mine" },
    );
    const ps = s.problems("test");
    const grades = await Promise.all(ps.map((p) => grade(s, p, p.reference)));
    for (const [i, g] of grades.entries()) {
      assert.deepEqual(g, { pass: true, reason: "ok" }, `${ps[i].recordId ?? ps[i].id}`);
    }
  });

  test("tests: wrong code fails with the failing call; setup runs after the answer", async () => {
    const s = loadJsonlSkill({ files: { test: fx("tests.jsonl") } }, { name: "mine" });
    const sq = byId(s, "square");
    assert.deepEqual(await grade(s, sq, "def square(n):\n    return n + n"), {
      pass: false,
      reason: "assertion failed: square(3) returned 6, expected 9",
    });
    assert.match((await grade(s, sq, "def square(n) return n")).reason, /^syntax error/);
    assert.deepEqual(await grade(s, sq, ""), { pass: false, reason: "empty answer" });
    // A fenced answer, cut at the skill's stop string.
    assert.deepEqual(
      await grade(s, sq, "```python\ndef square(n):\n    return n ** 2\n```\nsome talk"),
      { pass: true, reason: "ok" },
    );
    // `setup` sees the answer's definitions; when it fails, the answer fails (gradable).
    const ev = byId(s, "evens");
    assert.deepEqual(await grade(s, ev, "def odds(xs):\n    return xs"), {
      pass: false,
      reason: "setup raised NameError: name 'evens' is not defined",
    });
    assert.equal((await grade(s, ev, "def evens(xs):\n    return xs")).pass, false);
  });

  test("expected: wrong output, check, number, regex and exact mismatches fail", async () => {
    const s = loadJsonlSkill({ files: { test: fx("expected.json") } }, { name: "mine" });
    const lines = byId(s, "count-lines");
    assert.deepEqual(await grade(s, lines, "echo 4"), {
      pass: false,
      reason: 'wrong output: got "4", expected "3"',
    });
    // The answer runs in a clean work dir: the setup's files only, none of the grader's.
    assert.match((await grade(s, lines, "ls -A")).reason, /got "data\.txt"/);
    assert.deepEqual(await grade(s, lines, "```bash\nwc -l < data.txt\n```"), {
      pass: true,
      reason: "ok",
    });
    const dir = byId(s, "make-dir");
    // Printing the expected text does not pass when the check looks at the directory.
    assert.deepEqual(await grade(s, dir, "echo x.txt"), {
      pass: false,
      reason: 'check: wrong output: got "", expected "x.txt" (check exit 2)',
    });
    assert.equal((await grade(s, dir, "mkdir out; cd out; touch x.txt")).pass, true);
    const pi = byId(s, "pi");
    assert.match((await grade(s, pi, "print(3.15)")).reason, /^wrong number/);
    assert.match((await grade(s, pi, "import sys; sys.exit(3)")).reason, /\(answer exit 3\)$/);
    assert.match((await grade(s, pi, "print(1/0)")).reason, /ZeroDivisionError/);
    assert.equal((await grade(s, byId(s, "greeting"), "echo 'Hi, alice'")).pass, true);
    assert.match(
      (await grade(s, byId(s, "greeting"), "echo 'Hey, alice'")).reason,
      /^output does not match/,
    );
    const two = byId(s, "two-lines");
    assert.equal((await grade(s, two, "echo a; echo b")).pass, true);
    assert.equal((await grade(s, two, "printf 'a\\nb'")).pass, false);
    const file = byId(s, "py-file");
    assert.equal((await grade(s, file, "open('total.txt', 'w').write('14')")).pass, false);
    assert.deepEqual(await grade(s, lines, ""), { pass: false, reason: "empty answer" });
    assert.match((await grade(s, lines, "yes | head -c 100000")).reason, /^too much output/);
  });

  test("expected: an answer that runs too long fails as a timeout", async () => {
    const s = loadJsonlSkill({ files: { test: fx("expected.json") } }, { name: "mine" });
    assert.deepEqual(await grade(s, byId(s, "count-lines"), "sleep 20; wc -l < data.txt"), {
      pass: false,
      reason: "timeout",
    });
  });

  test("a failing or endless setup makes the problem not gradable, whatever the answer", async () => {
    const s = loadJsonlSkill({ files: { test: fx("setup-fails.jsonl") } }, { name: "mine" });
    const broken = byId(s, "broken-setup");
    for (const answer of [broken.reference, "echo a", ""]) {
      const g = await grade(s, broken, answer);
      assert.equal(g.gradable, false);
      assert.equal(g.pass, false);
      assert.match(g.reason, /^setup failed \(exit 1\): preparing cp: cannot stat/);
    }
    const slow = byId(s, "slow-setup");
    assert.deepEqual(await grade(s, slow, slow.reference), {
      pass: false,
      gradable: false,
      reason: "setup did not finish within the time limit",
    });
  });

  test("evaluateSkills: references pass, problems whose setup fails are left out", async () => {
    const s = loadJsonlSkill(
      {
        files: {
          opt: [fx("tests.jsonl"), fx("expected.json"), fx("setup-fails.jsonl")],
        },
      },
      { name: "mine" },
    );
    const refs = new Map(s.problems("opt").map((p) => [s.format(p), p.reference]));
    const model = {
      generate: async (reqs: GenerateRequest[]) =>
        reqs.map((r) => ({
          // The reference, then the end of the fence and more text past the stop string.
          text: `${refs.get(r.prompt)}\n\`\`\`\nExplanation follows.`,
          tokens: 1,
          finish: "stop" as const,
        })),
      score: async (reqs: ScoreRequest[]) =>
        reqs.map((r) => {
          const logprobs = Array.from(r.continuation, () => -0.25);
          return { logprobs, sum: -0.25 * logprobs.length, mean: -0.25, greedy: false };
        }),
    };
    const res = await evaluateSkills(model, [s as Skill], "opt", { runner: grader.run });
    const r = res.mine;
    assert.equal(r.details.length, 11);
    assert.equal(r.ungradable, 2);
    assert.equal(r.score, 1, JSON.stringify(r.details.filter((d) => !d.pass)));
    assert.equal(r.meanLogLikelihood, -0.25);
  });
});
