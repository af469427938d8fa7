/**
 * MBPP and EvalPlus MBPP+ in their published formats, on tasks of our own
 * (test/fixtures/mbpp-format, see its README.md): every reference solution passes in the real
 * sandbox, in MBPP's order (the answer, then test_setup_code, then the tests), including the
 * tasks whose setup builds objects of the answer's own class (as MBPP's tasks 367 and 927
 * do); wrong answers fail.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { gradePython } from "../src/skills/code/harness.ts";
import { loadMbppSkill, type MbppProblem, mbppSplitOf } from "../src/skills/loaders/mbpp.ts";
import { readRecords } from "../src/skills/loaders/records.ts";
import { resolveRunner } from "../src/skills/runner.ts";
import type { Grade, Skill } from "../src/skills/types.ts";

const dir = join(import.meta.dirname, "fixtures", "mbpp-format");
const runner = resolveRunner();

function all(s: Skill<MbppProblem>): MbppProblem[] {
  return (["pretrain", "train", "opt", "test"] as const).flatMap((x) => s.problems(x));
}

function byTask(s: Skill<MbppProblem>, id: string): MbppProblem {
  const p = all(s).find((x) => x.taskId === id);
  if (!p) throw new Error(`no task ${id}`);
  return p;
}

/** The model's text: the answer, then the stop marker, as a generation ends. */
async function grade(s: Skill<MbppProblem>, p: MbppProblem, answer: string): Promise<Grade> {
  return s.grade(p, `${answer}\n[DONE]`, { run: await runner });
}

/** `text` with `from` replaced by `to`, which must occur in it. */
function variant(text: string, from: string, to: string): string {
  assert.ok(text.includes(from), `variant: ${JSON.stringify(from)} not in the reference`);
  return text.replace(from, to);
}

describe("MBPP's mbpp.jsonl format", () => {
  const s = loadMbppSkill({ all: join(dir, "mbpp.jsonl"), assign: mbppSplitOf }, { strict: true });

  test("MBPP's task-id ranges pick the splits; the prompt shows test_list, not the challenge tests", () => {
    const ids = (split: "train" | "opt" | "test") => s.problems(split).map((p) => p.taskId);
    assert.deepEqual(ids("test"), ["23", "58", "96", "301", "418"]);
    assert.deepEqual(ids("opt"), ["556"]);
    assert.deepEqual(ids("train"), ["745", "812"]);
    const vowels = byTask(s, "23");
    assert.equal(vowels.tests.length, 3);
    assert.ok(!vowels.tests.some((t) => t.includes("Queueing")), "challenge tests are not run");
    assert.ok(!byTask(s, "96").tests.some((t) => t.includes("8128")));
    assert.equal(
      s.format(vowels),
      "You are an expert Python programmer, and here is your task: Write a python function to " +
        "count the number of vowels in a given string. Your code should pass these tests:\n\n" +
        'assert count_vowels("programming") == 3\nassert count_vowels("AEIOU") == 5\n' +
        'assert count_vowels("rhythm") == 0\n[BEGIN]\n',
    );
    // MBPP's code and setup keep their CRLF line ends and tab indents.
    assert.match(vowels.reference, /^def count_vowels\(s\): \r\n {4}count = 0\r\n/);
    assert.match(byTask(s, "96").reference, /\r\n\t\tif \(n % i == 0\): \r\n/);
    assert.match(byTask(s, "418").setup, /^root = Node\(7\) \r\nroot\.left = Node\(3\)/);
    assert.match(byTask(s, "745").setup, /^head = ListNode\(1\); {2}\r\n/);
  });

  test("every reference passes, 418 and 745 included (their setup uses the answer's class)", async () => {
    const ps = all(s);
    const got = await Promise.all(ps.map((p) => grade(s, p, p.reference)));
    for (const [i, g] of got.entries()) {
      assert.deepEqual(g, { pass: true, reason: "ok" }, `task ${ps[i].taskId}`);
    }
  });

  test("another task's reference, a syntax error and off-by-one variants fail", async () => {
    const ps = all(s);
    const swapped = await Promise.all(
      ps.map((p, i) => grade(s, p, ps[(i + 1) % ps.length].reference)),
    );
    for (const [i, g] of swapped.entries()) {
      assert.equal(
        g.pass,
        false,
        `task ${ps[i].taskId} passed with task ${ps[(i + 1) % ps.length].taskId}'s code`,
      );
      assert.notEqual(g.gradable, false);
    }
    const broken = await Promise.all(ps.map((p) => grade(s, p, p.reference.replace(/\):/, ")"))));
    for (const [i, g] of broken.entries()) {
      assert.equal(g.pass, false, `task ${ps[i].taskId}`);
      assert.match(g.reason, /^syntax error/);
    }
    const ref = (id: string) => byTask(s, id).reference;
    const offByOne: [string, string][] = [
      ["23", variant(ref("23"), "count = count + 1", "count = count + 2")],
      ["58", variant(ref("58"), "range(1, n+1)", "range(1, n)")],
      ["96", variant(ref("96"), "total = 1", "total = 2")],
      ["301", variant(ref("301"), "f = c * 9 / 5 + 32", "f = c * 9 / 5 + 31")],
      ["418", variant(ref("418"), "return 1", "return 2")],
      ["556", variant(ref("556"), "return a", "return a - 1")],
      ["745", variant(ref("745"), "fast = fast.next.next", "fast = fast.next")],
      ["812", variant(ref("812"), "words.count(word)", "words.count(word) + 1")],
    ];
    const got = await Promise.all(offByOne.map(([id, code]) => grade(s, byTask(s, id), code)));
    for (const [i, g] of got.entries()) assert.equal(g.pass, false, `task ${offByOne[i][0]}`);
    assert.equal(got[1].reason, "assertion failed: square_sum(3) returned 5, expected 14");
    assert.equal(got[6].reason, "assertion failed: middle_value(head) returned 5, expected 3");
  });

  test("the setup runs after the answer: without the answer's class it fails, with any such class it passes", async () => {
    const leaves = byTask(s, "418");
    const noNode = leaves.reference.replace(/^class Node:[\s\S]*?(?=def count_leaves)/, "");
    assert.ok(!noNode.includes("class Node"));
    assert.deepEqual(await grade(s, leaves, noNode), {
      pass: false,
      reason: "test setup failed: NameError: name 'Node' is not defined",
    });
    const own =
      "class Node:\n    def __init__(self, v, left=None, right=None):\n" +
      "        self.v, self.left, self.right = v, left, right\n\n" +
      "def count_leaves(t):\n    if t is None:\n        return 0\n" +
      "    kids = [k for k in (t.left, t.right) if k is not None]\n" +
      "    return sum(count_leaves(k) for k in kids) if kids else 1\n";
    assert.deepEqual(await grade(s, leaves, own), { pass: true, reason: "ok" });
    const middle = byTask(s, "745");
    const noList = middle.reference.replace(/^class ListNode:[\s\S]*?(?=def middle_value)/, "");
    assert.deepEqual(await grade(s, middle, noList), {
      pass: false,
      reason: "test setup failed: NameError: name 'ListNode' is not defined",
    });
  });
});

describe("EvalPlus MBPP+'s MbppPlus.jsonl format", () => {
  const s = loadMbppSkill({ files: { test: join(dir, "MbppPlus.jsonl") } }, { strict: true });

  test("reads the docstring prompt, the entry point and the assertion's imports and asserts", () => {
    const ps = s.problems("test");
    assert.deepEqual(
      ps.map((p) => p.taskId),
      ["Mbpp/23", "Mbpp/58", "Mbpp/96", "Mbpp/171", "Mbpp/301", "Mbpp/445"],
    );
    const circle = byTask(s, "Mbpp/171");
    assert.equal(
      circle.instruction,
      "Write a function to find the area of a circle given its radius.",
    );
    assert.equal(circle.entry, "circle_area");
    assert.deepEqual(circle.imports, ["import math"]);
    assert.equal(circle.tests.length, 3);
    assert.equal(byTask(s, "Mbpp/96").tests.length, 5);
    assert.deepEqual(byTask(s, "Mbpp/58").imports, []);
    assert.equal(
      s.format(byTask(s, "Mbpp/58")),
      "You are an expert Python programmer, and here is your task: Write a function to find the " +
        "sum of the squares of the first n natural numbers. Your code should pass these " +
        "tests:\n\nassert square_sum(3)==14\nassert square_sum(5)==55\n" +
        "assert square_sum(10)==385\n[BEGIN]\n",
    );
  });

  test("canonical solutions pass; wrong answers fail", async () => {
    const ps = s.problems("test");
    const refs = await Promise.all(ps.map((p) => grade(s, p, p.reference)));
    for (const [i, g] of refs.entries()) {
      assert.deepEqual(g, { pass: true, reason: "ok" }, ps[i].taskId);
    }
    const swapped = await Promise.all(
      ps.map((p, i) => grade(s, p, ps[(i + 1) % ps.length].reference)),
    );
    for (const [i, g] of swapped.entries()) assert.equal(g.pass, false, ps[i].taskId);
    assert.equal(swapped[0].reason, "function count_vowels is not defined");
    const sq = byTask(s, "Mbpp/58");
    assert.equal(
      (await grade(s, sq, variant(sq.reference, "// 6", "// 6 + 1"))).reason,
      "assertion failed: square_sum(3) returned 15, expected 14",
    );
    const circle = byTask(s, "Mbpp/171");
    const pi3 = await grade(s, circle, variant(circle.reference, "math.pi", "3.0"));
    assert.equal(pi3.pass, false);
    assert.match(pi3.reason, /^assertion failed: assert math\.isclose\(circle_area\(10\)/);
    const clamp = byTask(s, "Mbpp/445");
    const noLow = await grade(
      s,
      clamp,
      variant(clamp.reference, "max(lo, min(x, hi))", "min(x, hi)"),
    );
    assert.equal(noLow.reason, "assertion failed: clamp(-3, 0, 10) returned -3, expected 0");
  });
});

describe("EvalPlus MBPP+ with non-finite inputs", () => {
  // Python's json writes inf as Infinity and nan as NaN, which JSON.parse rejects; the shared
  // record reader (src/skills/loaders/records.ts) reads them outside strings as numbers.
  test("Mbpp/445, whose plus_input holds Infinity, -Infinity and NaN, loads and its solution passes", async () => {
    const file = join(dir, "MbppPlus.jsonl");
    const recs = readRecords(file);
    const rec = recs.find((r) => r.value.task_id === "Mbpp/445");
    assert.ok(rec);
    assert.equal(rec.line, 6);
    const plus = rec.value.plus_input as number[][];
    assert.deepEqual(plus.slice(0, 3), [
      [Number.POSITIVE_INFINITY, 0, 10],
      [Number.NEGATIVE_INFINITY, -1.5, 1.5],
      [0.25, Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY],
    ]);
    assert.ok(Number.isNaN(plus[3][0]));
    assert.deepEqual(plus[5], [1e300, -1e300, 1e300]);
    const s = loadMbppSkill({ files: { test: file } }, { strict: true });
    const p = byTask(s, "Mbpp/445");
    // "-Infinity or Infinity" inside the prompt's string is text, left as it is.
    assert.equal(
      p.instruction,
      "Write a function to clamp a number x to the range from lo to hi (either bound may be -Infinity or Infinity).",
    );
    assert.deepEqual(await grade(s, p, p.reference), { pass: true, reason: "ok" });
  });
});

describe("the problem's own code", () => {
  const tmp = mkdtempSync(join(tmpdir(), "cqd-mbpp-"));
  after(() => rmSync(tmp, { recursive: true, force: true }));

  test("Hugging Face's MBPP+ shape: the test script grades, test_list is what the prompt shows", async () => {
    const file = join(tmp, "mbppplus.jsonl");
    const script =
      "inputs = [[3], [5], [10], [0], [1]]\nresults = [14, 55, 385, 0, 1]\n" +
      "for i, (inp, exp) in enumerate(zip(inputs, results)):\n" +
      "    assert square_sum(*inp) == exp\n";
    const rec = {
      task_id: 58,
      prompt: "Write a function to find the sum of the squares of the first n natural numbers.",
      code: "def square_sum(n):\n  total=0\n  for i in range(1, n+1):\n    total+=i*i\n  return total",
      test_imports: [],
      test_list: ["assert square_sum(3)==14", "assert square_sum(5)==55"],
      test: script,
    };
    writeFileSync(file, `${JSON.stringify(rec)}\n`);
    const s = loadMbppSkill({ files: { test: file } }, { strict: true });
    const p = s.problems("test")[0];
    assert.deepEqual(p.tests, []);
    assert.deepEqual(p.shown, rec.test_list);
    assert.match(s.format(p), /assert square_sum\(5\)==55\n\[BEGIN\]\n$/);
    assert.deepEqual(await grade(s, p, rec.code), { pass: true, reason: "ok" });
    // Passes test_list, fails the script's extra inputs.
    const fitted = "def square_sum(n):\n  return {3: 14, 5: 55}[n]";
    const g = await grade(s, p, fitted);
    assert.equal(g.pass, false);
    assert.match(g.reason, /^the test script raised KeyError/);
  });

  test("tests that cannot run here are ungradable whatever the answer; the answer cannot make them so", async () => {
    const run = await runner;
    const good = "def f(x):\n    return x * x\n";
    const bad = "def f(x):\n    return x + x\n";
    const missing = {
      tests: ["assert f(3) == 9"],
      check: "import cqd_no_such_module\nassert f(2) == 4\n",
    };
    const broken = { tests: ["assert f(3) == 9"], setup: "k = (" };
    for (const answer of [good, bad, "def f(:"]) {
      const g1 = await gradePython(run, answer, missing);
      assert.equal(g1.gradable, false);
      assert.match(g1.reason, /needs module cqd_no_such_module/);
      const g2 = await gradePython(run, answer, broken);
      assert.equal(g2.gradable, false);
      assert.match(g2.reason, /the test setup does not compile/);
    }
    // An answer that breaks imports for the tests still only fails.
    const sabotage = `import sys\nsys.modules["math"] = None\n${good}`;
    const g3 = await gradePython(run, sabotage, {
      tests: ["assert f(3) == 9"],
      imports: ["import math"],
    });
    assert.deepEqual(g3, {
      pass: false,
      reason: "test setup failed: ModuleNotFoundError: import of math halted; None in sys.modules",
    });
  });
});
