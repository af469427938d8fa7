/**
 * MBPP (google-research/mbpp: task_id, text, code, test_list, test_setup_code,
 * challenge_test_list; the sanitized file's prompt, test_imports) and EvalPlus MBPP+ as a skill,
 * graded by running the tests with python3 in the sandbox, in MBPP's order: the answer, then
 * the test imports and test_setup_code, then the tests.
 *
 * MBPP+ comes in two shapes. Hugging Face's evalplus/mbppplus (task_id, prompt, code,
 * test_list, test_imports, test) is graded by its `test` script, which holds the base and plus
 * inputs with their expected outputs, as bigcode-evaluation-harness and lm-evaluation-harness
 * grade it; `test_list` is only shown in the prompt. EvalPlus's own MbppPlus.jsonl (task_id,
 * prompt, canonical_solution, entry_point, base_input, plus_input, atol, assertion) is graded
 * by its `assertion`, MBPP's base tests: its plus inputs carry no expected outputs (EvalPlus
 * computes them by running the canonical solution), so they are not run here.
 * `challenge_test_list` is not run, as in the paper's and the common harnesses' MBPP scores.
 */
import { gradePython } from "../code/harness.ts";
import { extractAnswer } from "../text.ts";
import type { Problem, Skill, Split } from "../types.ts";
import { DataError, Fields, type SourceRecord } from "./records.ts";
import { type LoadOptions, loadSplits, type SplitSources } from "./splits.ts";

export interface MbppProblem extends Problem {
  taskId: string;
  /** `assert` statements run as the tests. */
  tests: string[];
  /** The tests the prompt shows (the graded ones, or MBPP+'s `test_list` beside its script). */
  shown: string[];
  setup: string;
  imports: string[];
  /** A whole test script (EvalPlus `test`), run after the asserts. */
  check: string;
  entry?: string;
}

/** MBPP's published split by task id: 11-510 test, 511-600 validation (our opt), 601-974 train. */
export function mbppSplitOf(rec: SourceRecord): Split | null {
  const raw = rec.value.task_id;
  const id = typeof raw === "number" ? raw : Number(String(raw).replace(/^\D*\//, ""));
  if (id >= 11 && id <= 510) return "test";
  if (id >= 511 && id <= 600) return "opt";
  if (id >= 601 && id <= 974) return "train";
  return null;
}

/** EvalPlus's prompt is a docstring: its text without the quotes and the assert lines. */
function docstringText(prompt: string): { text: string; asserts: string[] } {
  const m = /^\s*("""|''')([\s\S]*?)\1\s*$/.exec(prompt);
  if (!m) return { text: prompt, asserts: [] };
  const lines = m[2].split("\n");
  const isAssert = (l: string) => /^assert\b/.test(l.trim());
  return {
    text: lines
      .filter((l) => !isAssert(l))
      .join("\n")
      .trim(),
    asserts: lines.filter(isAssert).map((l) => l.trim()),
  };
}

/**
 * EvalPlus's `assertion`: the sanitized MBPP's test imports, then its assert statements, in
 * one string. Lines before the first assert are imports; each assert (with any continuation
 * lines) is one test.
 */
function splitAssertion(text: string): { imports: string[]; tests: string[] } {
  const imports: string[] = [];
  const tests: string[] = [];
  for (const line of text.split("\n")) {
    if (/^assert\b/.test(line)) tests.push(line);
    else if (tests.length) tests[tests.length - 1] += `\n${line}`;
    else if (line.trim() !== "") imports.push(line);
  }
  return { imports, tests: tests.map((t) => t.trimEnd()) };
}

function parseMbppRecord(rec: SourceRecord, id: string, split: Split): MbppProblem {
  const f = new Fields(rec);
  const rawId = f.raw("task_id");
  if (typeof rawId !== "number" && typeof rawId !== "string") {
    f.fail("task_id", rawId === undefined ? "is missing" : "must be a number or a string");
  }
  const prompt = docstringText(f.string(f.oneOf(["text", "prompt"])));
  const reference = f.has("code") ? f.string("code") : (f.optString("canonical_solution") ?? "");
  f.oneOf(["test_list", "test", "assertion"]);
  // What runs: MBPP+'s test script when there is one, else the assert list.
  const testField = f.has("test") ? "test" : f.has("test_list") ? "test_list" : "assertion";
  let tests: string[] = [];
  let assertionImports: string[] = [];
  let check = "";
  if (testField === "test") {
    check = f.string("test");
  } else if (testField === "test_list") {
    tests = f.stringArray("test_list");
    if (tests.length === 0) f.fail("test_list", "is empty: a problem needs at least one test");
  } else {
    const a = splitAssertion(f.string("assertion"));
    tests = a.tests;
    assertionImports = a.imports;
    if (tests.length === 0) f.fail("assertion", "has no assert statement");
  }
  for (const [i, t] of tests.entries()) {
    if (!/\bassert\b/.test(t)) {
      f.fail(testField, `item ${i} is not an assert statement: ${t.slice(0, 60)}`);
    }
  }
  let shown = tests;
  if (check) {
    if (f.has("test_list")) shown = f.stringArray("test_list");
    else if (f.has("assertion")) shown = splitAssertion(f.string("assertion")).tests;
    else shown = prompt.asserts;
  }
  const entry = f.optString("entry_point");
  if (check && !entry && !/^check\(/m.test(check) && /def check\(/.test(check)) {
    f.fail(
      "entry_point",
      "is missing: the test script defines check(candidate) but never calls it",
    );
  }
  const imports = f.has("test_imports") ? f.stringArray("test_imports") : assertionImports;
  const setup = f.optString("test_setup_code") ?? "";
  return {
    id,
    split,
    template: "mbpp",
    key: `mbpp:${rawId as string | number}`,
    taskId: String(rawId),
    instruction: prompt.text,
    reference,
    tests,
    shown,
    setup,
    imports,
    check,
    entry,
  };
}

/** The MBPP paper's prompt: the task, the tests, then the solution between [BEGIN] and [DONE]. */
function mbppPrompt(p: MbppProblem): string {
  const tests = p.shown.length ? `${p.shown.join("\n")}\n` : "";
  return (
    `You are an expert Python programmer, and here is your task: ${p.instruction.trim()} ` +
    `Your code should pass these tests:\n\n${tests}[BEGIN]\n`
  );
}

export interface MbppOptions extends LoadOptions {
  name?: string;
  maxTokens?: number;
  format?: (p: MbppProblem) => string;
}

/**
 * MBPP or MBPP+ files as the skill `code` (or `opts.name`): the MBPP prompt, answers up to
 * `[DONE]`, at most `maxTokens` tokens (default 512), graded by running the tests with
 * python3 in the sandbox. Reads every file now (JSON, JSON array or JSONL, per split or
 * one pool divided by `assign`; for MBPP's single file, `all` with `assign: mbppSplitOf`);
 * throws a DataError naming file, line and field for an unreadable file, one with no
 * records, a malformed record, or a problem in two splits, and an Error for an unknown
 * split or no files at all.
 */
export function loadMbppSkill(sources: SplitSources, opts: MbppOptions = {}): Skill<MbppProblem> {
  const { problems, skipped } = loadSplits("mbpp", sources, parseMbppRecord, opts);
  const stop = ["[DONE]"];
  return {
    name: opts.name ?? "code",
    problems,
    skipped,
    format: opts.format ?? mbppPrompt,
    stop,
    terminator: "\n[DONE]",
    maxTokens: opts.maxTokens ?? 512,
    grade: (p, output, ctx) => {
      const code = stripFence(extractAnswer(output, stop));
      if (code === "") return Promise.resolve({ pass: false, reason: "empty answer" });
      return gradePython(ctx.run, code, {
        entry: p.entry,
        tests: p.tests,
        imports: p.imports,
        setup: p.setup,
        check: p.check,
      });
    },
  };
}

/** Removes a Markdown code fence around the code, which chat models often add. */
function stripFence(s: string): string {
  const m = /^```[a-zA-Z]*\n([\s\S]*?)\n?```\s*$/.exec(s.trim());
  return m ? m[1] : s;
}

export { DataError };
