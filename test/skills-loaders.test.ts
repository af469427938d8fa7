import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, test } from "node:test";
import {
  compareAnswers,
  type DbBenchProblem,
  loadDbBenchSkill,
  sqliteType,
} from "../src/skills/loaders/dbbench.ts";
import { loadMbppSkill, type MbppProblem, mbppSplitOf } from "../src/skills/loaders/mbpp.ts";
import { loadOsInteractionSkill } from "../src/skills/loaders/os-interaction.ts";
import { DataError, parseRecords } from "../src/skills/loaders/records.ts";
import { resolveRunner } from "../src/skills/runner.ts";
import type { Problem, Skill } from "../src/skills/types.ts";

const dir = join(import.meta.dirname, "fixtures", "skills");
const fx = (name: string) => join(dir, name);
const runner = resolveRunner();

async function grade<P extends Problem>(s: Skill<P>, p: P, output: string) {
  return s.grade(p, output, { run: await runner });
}

function byTask(s: Skill<MbppProblem>, id: string): MbppProblem {
  for (const split of ["train", "opt", "test"] as const) {
    const p = s.problems(split).find((x) => x.taskId === id);
    if (p) return p;
  }
  throw new Error(`no task ${id}`);
}

describe("MBPP / EvalPlus loader", () => {
  test("MBPP's task-id ranges pick the splits; prompts show the tests", () => {
    const s = loadMbppSkill({ all: fx("mbpp.jsonl"), assign: mbppSplitOf });
    assert.deepEqual(
      s.problems("train").map((p) => p.taskId),
      ["601"],
    );
    assert.deepEqual(
      s.problems("opt").map((p) => p.taskId),
      ["520"],
    );
    assert.deepEqual(
      s.problems("test").map((p) => p.taskId),
      ["11"],
    );
    const prompt = s.format(s.problems("test")[0]);
    assert.match(prompt, /count the vowels/);
    assert.match(prompt, /assert count_vowels\('banana'\) == 3\n/);
    assert.ok(prompt.endsWith("[BEGIN]\n"));
    assert.deepEqual(s.stop, ["[DONE]"]);
  });

  test("references pass, wrong code fails with the failing call", async () => {
    const s = loadMbppSkill({ files: { train: fx("mbpp.jsonl") } });
    const results = await Promise.all(s.problems("train").map((p) => grade(s, p, p.reference)));
    assert.ok(
      results.every((g) => g.pass),
      JSON.stringify(results),
    );
    const sq = byTask(s, "601");
    const wrong = await grade(s, sq, "def square(n):\n    return n + n");
    assert.equal(wrong.pass, false);
    assert.equal(wrong.reason, "assertion failed: square(3) returned 6, expected 9");
    // The model's text is cut at [DONE]; a Markdown fence is removed.
    const fenced = await grade(
      s,
      sq,
      "```python\ndef square(n):\n    return n ** 2\n```\n[DONE] junk",
    );
    assert.deepEqual(fenced, { pass: true, reason: "ok" });
    // test_setup_code runs before the tests.
    const cap = byTask(s, "520");
    assert.equal((await grade(s, cap, "def cap_all(xs):\n    return xs")).pass, false);
  });

  test("EvalPlus check(candidate) scripts, with and without their own call, and test_imports", async () => {
    const s = loadMbppSkill({ files: { test: fx("mbpp-plus.jsonl") } });
    const ps = s.problems("test");
    assert.equal(ps.length, 3);
    const ok = await Promise.all(ps.map((p) => grade(s, p, p.reference)));
    assert.ok(
      ok.every((g) => g.pass),
      JSON.stringify(ok),
    );
    const similar = byTask(s, "Mbpp/2");
    const bad = await grade(s, similar, "def similar_elements(a, b):\n    return tuple(a)");
    assert.equal(bad.pass, false);
    assert.match(bad.reason, /^assertion failed in the test script/);
    const prime = byTask(s, "Mbpp/3");
    const bad2 = await grade(s, prime, "def is_not_prime(n):\n    return False");
    assert.equal(bad2.pass, false);
    const renamed = await grade(s, prime, "def not_prime(n):\n    return n < 2");
    assert.equal(renamed.reason, "function is_not_prime is not defined");
  });

  test("malformed files name the file, the line and the field", () => {
    assert.throws(
      () => loadMbppSkill({ files: { train: fx("mbpp-bad-field.jsonl") } }, { strict: true }),
      (e: Error) =>
        e instanceof DataError &&
        e.message.includes("mbpp-bad-field.jsonl:2:") &&
        e.message.includes('"test_list", "test", "assertion"'),
    );
    assert.throws(
      () => loadMbppSkill({ files: { train: fx("mbpp-bad-json.jsonl") } }, { strict: true }),
      /mbpp-bad-json\.jsonl:3: not valid JSON/,
    );
    // Without strict, a bad record is left out and listed; the others load.
    const lenient = loadMbppSkill({ files: { train: fx("mbpp-bad-json.jsonl") } });
    assert.deepEqual(
      lenient.skipped?.map((r) => [r.file, r.line]),
      [[fx("mbpp-bad-json.jsonl"), 3]],
    );
    assert.match(lenient.skipped?.[0].reason ?? "", /^not valid JSON/);
    assert.ok(lenient.problems("train").length > 0);
    assert.throws(
      () => loadMbppSkill({ files: { train: fx("missing.jsonl") } }),
      /cannot read .*missing\.jsonl/,
    );
    assert.throws(
      () => loadMbppSkill({ files: { train: fx("mbpp.jsonl"), test: fx("mbpp.jsonl") } }),
      /is in two splits: train .* and test .*mbpp\.jsonl:1/,
    );
    // A JSON array's records know the line each element starts on.
    const recs = parseRecords('[\n  {"a": "[x]"},\n\n  {"b": {"c": [1, 2]}}\n]', "x.json");
    assert.deepEqual(
      recs.map((r) => r.line),
      [2, 4],
    );
    assert.throws(() => parseRecords("[1, 2]", "y.json"), /y\.json:1: expected a JSON object/);
    const bad: number[] = [];
    assert.equal(parseRecords('[1, {"a": 2}]', "y.json", (_, line) => bad.push(line)).length, 1);
    assert.deepEqual(bad, [1]);
  });
});

describe("AgentBench DB loader", () => {
  const s = loadDbBenchSkill({ files: { test: fx("dbbench.jsonl") } });
  const ps = s.problems("test") as DbBenchProblem[];

  test("reads tables, types and labels; the prompt carries AgentBench's description", () => {
    assert.equal(ps.length, 5);
    assert.deepEqual(
      ps.map((p) => p.type),
      ["other", "counting", "other", "INSERT", "UPDATE"],
    );
    assert.deepEqual(ps[0].tables[0].columns[1], { name: "Age", type: "INTEGER" });
    assert.match(
      s.format(ps[0]),
      /^The name of this table is Pet Owners.*\nQuestion: Who is the oldest.*\nSQL: $/,
    );
    assert.equal(sqliteType("STRING"), "TEXT");
    assert.equal(sqliteType("double"), "REAL");
  });

  test("queries graded against the label, changes by the table hash", async () => {
    const right = await Promise.all(ps.slice(0, 4).map((p) => grade(s, p, p.reference)));
    assert.ok(
      right.every((g) => g.pass),
      JSON.stringify(right),
    );
    const table = "`Pet Owners`";
    const cases: [number, string, boolean][] = [
      [0, `SELECT Name FROM ${table} WHERE City = 'Oslo' ORDER BY Age ASC LIMIT 1;`, false],
      [1, `SELECT COUNT(*) FROM ${table} WHERE Age > 40;`, false],
      // Text columns declared INT compare as numbers, as in MySQL.
      [1, `SELECT COUNT(Name) FROM ${table} WHERE Age >= 31;`, true],
      [2, `SELECT Name FROM ${table} WHERE City = 'Lima' ORDER BY Name DESC;`, true],
      [2, `SELECT Name FROM ${table} WHERE City = 'Oslo';`, false],
      [3, `INSERT INTO ${table} VALUES ('Fay', '33', 'Rome');`, true],
      [3, `INSERT INTO ${table} VALUES ('Fay', 34, 'Rome');`, false],
      [4, `UPDATE ${table} SET City = 'Oslo' WHERE Name = 'Eli';`, true],
      [4, `UPDATE ${table} SET City = 'Oslo';`, false],
      [4, `SELEC 1`, false],
    ];
    const got = await Promise.all(cases.map(([i, sql]) => grade(s, ps[i], sql)));
    for (const [k, g] of got.entries())
      assert.equal(g.pass, cases[k][2], `${cases[k][1]}: ${g.reason}`);
    assert.match(got[0].reason, /^wrong result: got \["Dee"\], expected \["Ann"\]/);
    assert.match(got[9].reason, /^SQL error/);
    assert.equal(got[6].reason, "wrong table contents (hash differs)");
  });

  test("AgentBench's answer normalisation", () => {
    assert.ok(compareAnswers(["2.0"], ["2"]));
    assert.ok(compareAnswers(["1,174"], ["1174.001"]));
    assert.ok(compareAnswers(["50%"], ["50"]));
    assert.ok(compareAnswers(["None"], ["0"]));
    assert.ok(compareAnswers(["b", "a"], ["a", "b"]));
    assert.ok(!compareAnswers(["a"], ["a", "b"]));
    assert.ok(compareAnswers(["1", "2"], ["2.001", "1"]));
  });

  test("malformed rows name the file, the line and the field", () => {
    assert.throws(
      () => loadDbBenchSkill({ files: { test: fx("dbbench-bad.jsonl") } }, { strict: true }),
      (e: Error) =>
        e.message.startsWith(`${fx("dbbench-bad.jsonl")}:2: field "table"`) &&
        e.message.includes("table_info.rows[1] must be an array of values"),
    );
  });
});

describe("AgentBench OS loader (one turn)", () => {
  const s = loadOsInteractionSkill(
    { files: { test: fx("os.json") } },
    { scriptDir: fx("os-scripts") },
  );
  const ps = s.problems("test");

  test("reads init, start, match and check scripts (null means the example)", () => {
    assert.equal(ps.length, 5);
    const ev = ps[1].evaluation;
    assert.equal(ev.kind, "check");
    if (ev.kind === "check") {
      assert.equal(ev.checks.length, 2);
      assert.equal(ev.checks[0].code, "ls logs/*.log | wc -l");
      assert.equal(ev.checks[1].language, "python");
    }
    assert.equal(ps[1].reference, "ls logs/*.log | wc -l");
    assert.equal(ps[0].reference, "");
    assert.equal(ps[4].start, "export GREETING=hello");
    assert.equal(
      s.format(ps[0]),
      "Q: What is the number written in the file secret.txt?\nA: ```bash\n",
    );
  });

  test("a command's output is the answer; checks see the state it left", async () => {
    const cases: [number, string, boolean][] = [
      [0, "cat secret.txt", true],
      [0, "echo 41", false],
      [0, "Act: answer(42)", true],
      [1, "ls logs | grep -c 'log$'", true],
      [1, "ls logs | wc -l", false],
      [1, ps[1].reference, true],
      [2, ps[2].reference, true],
      [2, "mkdir reports", false],
      [2, "Act: finish", false],
      [3, "echo 7", true],
      [3, "echo seven", false],
      [4, "echo $GREETING", true],
      [4, "echo $HOME", false],
    ];
    const got = await Promise.all(cases.map(([i, out]) => grade(s, ps[i], out)));
    for (const [k, g] of got.entries())
      assert.equal(g.pass, cases[k][2], `${cases[k][1]}: ${g.reason}`);
    assert.equal(got[1].reason, 'wrong answer: got "41", expected "42"');
    assert.match(got[4].reason, /^check script 1 failed \(exit 1\) for answer "4"$/);
    assert.match(got[10].reason, /does not match/);
  });

  test("malformed problems name the file, the line and the field", () => {
    assert.throws(
      () => loadOsInteractionSkill({ files: { test: fx("os-bad.json") } }, { strict: true }),
      (e: Error) => e.message === `${fx("os-bad.json")}:6: field "evaluation" is missing`,
    );
    assert.throws(
      () => loadOsInteractionSkill({ files: { test: fx("os.json") } }, { strict: true }),
      /field "evaluation\.check\[1\]\.file": cannot read .*integer-match\.py/,
    );
  });
});

describe("record reader", () => {
  test("Python json's NaN, Infinity and -Infinity outside strings load as numbers", () => {
    const line =
      '{"task_id": "x", "text": "NaN or -Infinity, \\"Infinity\\"", "v": [NaN, Infinity, -Infinity, 1e+300]}';
    const [rec] = parseRecords(`{"a": 1}\n${line}\n`, "p.jsonl").slice(1);
    assert.equal(rec.line, 2);
    assert.equal(rec.value.text, 'NaN or -Infinity, "Infinity"');
    const v = rec.value.v as number[];
    assert.ok(Number.isNaN(v[0]));
    assert.deepEqual(v.slice(1), [Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 1e300]);
    // In a JSON array file too, with each record's line.
    const arr = parseRecords('[\n  {"a": NaN},\n  {"b": [-Infinity]}\n]', "p.json");
    assert.deepEqual(
      arr.map((r) => r.line),
      [2, 3],
    );
    assert.deepEqual(arr[1].value, { b: [Number.NEGATIVE_INFINITY] });
    // Anything else stays invalid, reported with strict JSON's error.
    for (const bad of ['{"a": nan}', '{"a": NaNa}', '{"a": Infinity1}', '{"a": +Infinity}']) {
      assert.throws(() => parseRecords(bad, "q.jsonl"), /q\.jsonl:1: not valid JSON/, bad);
    }
    const skipped: number[] = [];
    const recs = parseRecords('{"a": Infinity}\n{"a": inf}\n', "q.jsonl", (_, n) =>
      skipped.push(n),
    );
    assert.deepEqual(recs.length, 1);
    assert.deepEqual(skipped, [2]);
  });
});
