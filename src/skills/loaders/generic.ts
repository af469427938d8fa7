/**
 * The generic data-file skill (`kind: jsonl`): bring your own task as records with a prompt
 * and a way to check an answer, graded by running the answer in the sandbox like the
 * built-in skills.
 *
 * Files: JSONL (one record per line), a JSON array of records, or one JSON object, per split
 * (`files: {train, opt, test}`) or one pool divided into splits. Each record is an object:
 *
 * - `prompt` (string, required): shown to the model as is, after the skill's `prefix` if it
 *   has one; the model's answer follows it directly.
 * - `id` (string or number, optional): your name for the record. Splits must be disjoint:
 *   two records with the same `id` (or, without ids, the same `prompt`) in two splits fail
 *   the load.
 * - `reference` (string, optional): one correct answer. Scored for likelihood (reference +
 *   terminator) when that diagnostic is on, and handy to check the record itself: grading
 *   the reference should pass.
 * - `meta` (anything, optional): your own data, ignored. Any other field is an error, so a
 *   misspelt `check` cannot silently change what is graded.
 *
 * and exactly one of two ways to judge the answer:
 *
 * (a) Python tests: `tests` (array of Python statements, usually `assert`s; at least one)
 *     and optional `setup` (Python). The answer is Python code. It runs first, then `setup`
 *     (in the same namespace, so it may use the answer's definitions, as in MBPP), then each
 *     test in order; the answer passes when all of them pass within the time limit (5 s,
 *     4 CPU seconds). A failing `setup` here is the answer's failure, since it runs after the
 *     answer. Example:
 *       {"id": "sq", "prompt": "Write a Python function square(n).\n```python\n",
 *        "reference": "def square(n):\n    return n * n",
 *        "tests": ["assert square(3) == 9", "assert square(-2) == 4"]}
 *
 * (b) Expected output: `expected` (string; a number is taken as its JSON text). The answer
 *     is a program in `language`: "bash" (default) or "python" (python3). In a fresh
 *     sandbox working directory (HOME, writable, otherwise empty):
 *     1. `setup` (bash, optional) runs first. If it fails (exits non-zero or runs out of
 *        time) the problem cannot be graded here: it is reported with gradable: false and
 *        the reason, and left out of the pass rate, whatever the answer.
 *     2. The answer runs (stdin empty; its exit status is not judged).
 *     3. With `check` (a bash command), the check runs next in the same directory and its
 *        stdout is compared with `expected`; without, the answer's own stdout is.
 *     Only the compared stdout decides (exit statuses and stderr are shown in the reason
 *     only). The whole run has 5 s of wall clock (setup included) and 3 CPU seconds per
 *     process; at most 32 KiB of output is compared. `match` says how:
 *       - "trimmed" (default): equal after removing outer whitespace;
 *       - "exact": equal byte for byte (`echo 3` prints "3\n");
 *       - "number": both parse as decimal numbers, equal within 1e-6 relative;
 *       - "regex": `expected` is a JavaScript regular expression that must match the whole
 *         trimmed output (no flags: `.` does not match a newline, use [\s\S]).
 *     Examples:
 *       {"prompt": "Print the number of lines of data.txt.\n$ ", "reference": "wc -l < data.txt",
 *        "setup": "printf 'a\\nb\\nc\\n' > data.txt", "expected": "3"}
 *       {"prompt": "Create a directory named out holding a file x.txt.\n$ ",
 *        "reference": "mkdir out && touch out/x.txt", "check": "ls out", "expected": "x.txt"}
 *       {"prompt": "Print pi to 3 decimals in Python.\n", "language": "python",
 *        "reference": "print(round(3.14159, 3))", "expected": "3.142", "match": "number"}
 *
 * Skill options (`loadJsonlSkill`): `name` (required), `prefix` (put before every prompt) or
 * `format` (the whole prompt from the problem), `stop`, `terminator`, `maxTokens` (default
 * 256) and `strict`. One stop list serves the whole skill. Its default follows the records:
 * when every answer is bash, ["\n\n", "\n```"] (a blank line or a closing code fence ends
 * the answer; multi-line scripts without blank lines are fine); when any answer is Python,
 * ["\n```"] (Python has blank lines inside; have the prompt open a ```python fence, or set
 * `stop`, e.g. ["[DONE]"]). The answer is the text up to the first stop string, trimmed,
 * with a Markdown code fence around it removed. `terminator` defaults to the first stop
 * string.
 *
 * A malformed record is left out and listed in `skill.skipped` with file, line and reason
 * (`strict: true` makes it fail the load with a DataError naming file:line and field).
 * Everything the model writes runs only through the grade context's runner (the sandbox).
 */
import { createHash } from "node:crypto";
import { gradePython } from "../code/harness.ts";
import { SHELL_LIMITS } from "../limits.ts";
import { clip, extractAnswer, nonce, ranTooLong } from "../text.ts";
import { type Grade, type Problem, type Runner, type Skill, SPLITS, type Split } from "../types.ts";
import { DataError, Fields, type SourceRecord } from "./records.ts";
import { type LoadOptions, loadSplits, type SplitSources } from "./splits.ts";

export type JsonlMatch = "exact" | "trimmed" | "number" | "regex";
export const JSONL_MATCHES: readonly JsonlMatch[] = ["exact", "trimmed", "number", "regex"];

/** How an answer is judged: Python tests, or an expected output of a program. */
export type JsonlJudge =
  | { kind: "tests"; tests: string[]; setup: string }
  | {
      kind: "expected";
      language: "bash" | "python";
      expected: string;
      match: JsonlMatch;
      /** Bash run before the answer; "" for none. */
      setup: string;
      /** Bash whose stdout is compared instead of the answer's. */
      check?: string;
    };

export interface JsonlProblem extends Problem {
  /** The record's own `id`, when it has one. */
  recordId?: string;
  judge: JsonlJudge;
}

export interface JsonlOptions extends LoadOptions {
  /** The skill's name (unique among a run's skills). */
  name: string;
  /** Put before every prompt (default ""). Ignored when `format` is given. */
  prefix?: string;
  /** The whole prompt for a problem (default: prefix + the record's prompt). */
  format?: (p: JsonlProblem) => string;
  /** Generation stops at the first of these (default: see the file's header). */
  stop?: string[];
  /** Appended to the reference when its likelihood is scored (default: the first stop string). */
  terminator?: string;
  /** Most tokens per answer (default 256). */
  maxTokens?: number;
}

/** Bytes of the compared output that come back from the sandbox. */
const OUTPUT_CAP = 32 * 1024;
const KNOWN = [
  "id",
  "prompt",
  "reference",
  "meta",
  "tests",
  "setup",
  "expected",
  "language",
  "check",
  "match",
];
const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

function parseJsonlRecord(rec: SourceRecord, id: string, split: Split): JsonlProblem {
  const f: Fields = new Fields(rec);
  for (const k of Object.keys(rec.value)) {
    if (!KNOWN.includes(k)) {
      f.fail(k, `is not a known field (known: ${KNOWN.join(", ")}; put your own data in "meta")`);
    }
  }
  const prompt = f.string("prompt");
  if (prompt.trim() === "") f.fail("prompt", "is empty");
  let recordId: string | undefined;
  if (f.has("id")) {
    const raw = f.raw("id");
    if (typeof raw === "number" && Number.isFinite(raw)) recordId = String(raw);
    else if (typeof raw === "string" && raw.trim() !== "") recordId = raw;
    else f.fail("id", "must be a non-empty string or a number");
  }
  const reference = f.optString("reference") ?? "";
  const setup = f.optString("setup") ?? "";
  const hasTests = f.has("tests");
  const hasExpected = f.has("expected");
  if (hasTests && hasExpected) {
    f.fail("expected", 'cannot be given with "tests": a record has exactly one of the two');
  }
  let judge: JsonlJudge;
  if (hasTests) {
    for (const k of ["language", "check", "match"]) {
      if (f.has(k)) f.fail(k, 'only applies to "expected" records, not to "tests"');
    }
    const tests = f.stringArray("tests");
    if (tests.length === 0) f.fail("tests", "is empty: a problem needs at least one test");
    tests.forEach((t, i) => {
      if (t.trim() === "") f.fail("tests", `item ${i} is empty`);
    });
    judge = { kind: "tests", tests, setup };
  } else if (hasExpected) {
    const raw = f.raw("expected");
    let expected: string;
    if (typeof raw === "string") expected = raw;
    else if (typeof raw === "number" && Number.isFinite(raw)) expected = String(raw);
    else expected = f.fail("expected", "must be a string (or a number)");
    const lang = f.optString("language") ?? "bash";
    if (lang !== "bash" && lang !== "python") {
      f.fail("language", `is "${lang}"; use "bash" or "python"`);
    }
    const language: "bash" | "python" = lang;
    const match = (f.optString("match") ?? "trimmed") as JsonlMatch;
    if (!JSONL_MATCHES.includes(match)) {
      f.fail("match", `is "${match}"; use one of ${JSONL_MATCHES.map((m) => `"${m}"`).join(", ")}`);
    }
    if (match === "number" && !NUMBER.test(expected.trim())) {
      f.fail("expected", `is "${clip(expected, 40)}", not a number, but "match" is "number"`);
    }
    if (match === "regex") {
      try {
        new RegExp(expected);
      } catch (e) {
        f.fail("expected", `is not a valid regular expression (${(e as Error).message})`);
      }
    } else if (Buffer.byteLength(expected) > OUTPUT_CAP) {
      f.fail("expected", `is longer than the ${OUTPUT_CAP} bytes of output that are compared`);
    }
    const check = f.optString("check");
    if (check !== undefined && check.trim() === "") f.fail("check", "is empty");
    judge = { kind: "expected", language, expected, match, setup, check };
  } else {
    throw new DataError(
      `${rec.file}:${rec.line}: needs "tests" (Python asserts) or "expected" (an output to compare)`,
    );
  }
  const key =
    recordId !== undefined
      ? `id:${recordId}`
      : `prompt:${createHash("sha256").update(prompt).digest("hex").slice(0, 24)}`;
  return {
    id,
    split,
    template: judge.kind === "tests" ? "tests" : `expected-${judge.language}`,
    key,
    instruction: prompt,
    reference,
    recordId,
    judge,
  };
}

/** Removes a Markdown code fence around the answer (either end may be missing). */
export function stripFence(s: string): string {
  let t = s.trim();
  const open = /^```[\w+.-]*[ \t]*(\n|$)/.exec(t);
  if (open) t = t.slice(open[0].length);
  return t.replace(/(^|\n)```[ \t]*$/, "").trim();
}

/** Compares a program's output with the expected text; null when they agree, else why not. */
export function compareOutput(output: string, expected: string, match: JsonlMatch): string | null {
  // Exact matches show the text as JSON, so that differences in whitespace are visible.
  const show = (x: string) =>
    match === "exact" ? clip(JSON.stringify(x), 60) : `"${clip(x, 50)}"`;
  const shown = `got ${show(output)}, expected ${match === "regex" ? `/${clip(expected, 50)}/` : show(expected)}`;
  switch (match) {
    case "exact":
      return output === expected ? null : `wrong output: ${shown} (exact match)`;
    case "trimmed":
      return output.trim() === expected.trim() ? null : `wrong output: ${shown}`;
    case "number": {
      const a = output.trim();
      if (!NUMBER.test(a)) return `not a number: ${shown}`;
      const x = Number(a);
      const y = Number(expected.trim());
      const ok = Math.abs(x - y) <= 1e-6 * Math.max(Math.abs(x), Math.abs(y));
      return ok ? null : `wrong number: ${shown}`;
    }
    case "regex":
      return new RegExp(`^(?:${expected})$`).test(output.trim())
        ? null
        : `output does not match: ${shown}`;
  }
}

/**
 * Bash run in the sandbox for an `expected` record. The nonce comes on stdin (never in argv
 * or the environment); the scripts come as files under .cqd, which is moved out of the work
 * dir before anything runs and deleted before the answer runs. Setup, answer and check run
 * as child processes in the work dir; their output goes to files, and only the wrapper's own
 * lines, tagged with the nonce, report back. Arguments: language, output cap in bytes.
 */
const WRAPPER = String.raw`IFS= read -r t || exit 90
exec </dev/null
lang=$1 cap=$2 home=$PWD d=/tmp/.cqd
mv -- .cqd "$d" || exit 91
answer=$(cat -- "$d/answer"; printf x); answer=@{answer%x}
has_check=0 check=
if [ -f "$d/check" ]; then has_check=1; check=$(cat -- "$d/check"; printf x); check=@{check%x}; fi
if [ -f "$d/setup" ]; then
  bash "$d/setup" >"$d/setup.log" 2>&1
  rc=$?
  if [ $rc -ne 0 ]; then
    printf '\n%s setup-failed %d\n' "$t" "$rc"
    tail -c 300 "$d/setup.log"
    printf '\n%s end\n' "$t"
    exit 0
  fi
  cd "$home" || exit 92
fi
rm -rf -- "$d"
printf '\n%s setup-ok\n' "$t"
o=$(mktemp -d) || exit 93
if [ "$lang" = python ]; then
  python3 -c "$answer" >"$o/out" 2>"$o/err"
else
  bash -c -- "$answer" >"$o/out" 2>"$o/err"
fi
rc=$?
cd "$home" || exit 94
printf '\n%s answer %d\n' "$t" "$rc"
tail -c 200 "$o/err"
if [ $has_check = 1 ]; then
  o=$(mktemp -d) || exit 95
  bash -c -- "$check" >"$o/out" 2>"$o/err"
  rc=$?
  printf '\n%s check %d\n' "$t" "$rc"
  tail -c 200 "$o/err"
fi
printf '\n%s output %d\n' "$t" "$(wc -c <"$o/out")"
head -c "$cap" "$o/out"
printf '\n%s end\n' "$t"`.replaceAll("@{", "${");

/** The text after `\n<tag> <marker>...\n` up to the next tagged line; undefined when absent. */
function section(
  out: string,
  tag: string,
  marker: string,
): { args: string; body: string } | undefined {
  const head = `\n${tag} ${marker}`;
  const at = out.lastIndexOf(head);
  if (at < 0) return undefined;
  const eol = out.indexOf("\n", at + head.length);
  if (eol < 0) return undefined;
  const next = out.indexOf(`\n${tag} `, eol);
  return {
    args: out.slice(at + head.length, eol).trim(),
    body: out.slice(eol + 1, next < 0 ? out.length : next),
  };
}

function exitWords(rc: number): string {
  if (rc === 128 + 24) return "killed by the CPU time limit";
  if (rc === 128 + 25) return "killed by the file size limit";
  if (rc > 128) return `killed by signal ${rc - 128}`;
  return `exit ${rc}`;
}

async function gradeExpected(
  run: Runner,
  j: Extract<JsonlJudge, { kind: "expected" }>,
  answer: string,
): Promise<Grade> {
  const tag = nonce();
  const files: Record<string, string> = { ".cqd/answer": answer };
  if (j.setup) files[".cqd/setup"] = j.setup;
  if (j.check !== undefined) files[".cqd/check"] = j.check;
  const res = await run({
    command: ["bash", "-c", WRAPPER, "generic", j.language, String(OUTPUT_CAP)],
    stdin: `${tag}\n`,
    files,
    ...SHELL_LIMITS,
  });
  const out = res.stdout;
  const failed = section(out, tag, "setup-failed");
  if (failed) {
    const log = failed.body.trim() ? `: ${clip(failed.body, 100)}` : "";
    return {
      pass: false,
      gradable: false,
      reason: `setup failed (${exitWords(Number(failed.args))})${log}`,
    };
  }
  if (!out.includes(`\n${tag} setup-ok\n`)) {
    // The answer has not run yet: whatever stopped here is the problem's, not the answer's.
    if (ranTooLong(res)) {
      return { pass: false, gradable: false, reason: "setup did not finish within the time limit" };
    }
    const why = res.reason ?? `exit code ${res.exitCode}`;
    const err = res.stderr.trim() ? `: ${clip(res.stderr, 100)}` : "";
    return {
      pass: false,
      gradable: false,
      reason: `the grading script failed before the answer ran (${why})${err}`,
    };
  }
  if (answer === "") return { pass: false, reason: "empty answer" };
  const ans = section(out, tag, "answer");
  const chk = section(out, tag, "check");
  const got = section(out, tag, "output");
  if (!ans || !got || (j.check !== undefined && !chk) || !out.includes(`\n${tag} end\n`)) {
    if (ranTooLong(res)) return { pass: false, reason: "timeout" };
    if (res.outputTruncated) return { pass: false, reason: "too much output" };
    const why =
      res.reason ?? (res.signal ? `killed by ${res.signal}` : `exit code ${res.exitCode}`);
    return { pass: false, reason: `no verdict, the run ended early (${why})` };
  }
  const size = Number(got.args);
  const whose = j.check !== undefined ? "check" : "answer";
  if (size > OUTPUT_CAP)
    return { pass: false, reason: `too much output from the ${whose} (${size} bytes)` };
  const wrong = compareOutput(got.body, j.expected, j.match);
  if (wrong === null) return { pass: true, reason: "ok" };
  const notes: string[] = [];
  const arc = Number(ans.args);
  if (arc !== 0) notes.push(`answer ${exitWords(arc)}`);
  const lastErr = ans.body.trim().split("\n").pop() ?? "";
  if (lastErr) notes.push(`answer stderr: ${clip(lastErr, 80)}`);
  if (chk && Number(chk.args) !== 0) notes.push(`check ${exitWords(Number(chk.args))}`);
  const prefix = j.check !== undefined ? "check: " : "";
  return {
    pass: false,
    reason: `${prefix}${wrong}${notes.length ? ` (${notes.join("; ")})` : ""}`,
  };
}

/** Python's `s.strip()[:n]`, as the harness quotes a test in its reasons. */
const head = (s: string, n: number) => [...s.trim()].slice(0, n).join("");

async function gradeTests(
  run: Runner,
  j: Extract<JsonlJudge, { kind: "tests" }>,
  code: string,
): Promise<Grade> {
  if (code === "") return { pass: false, reason: "empty answer" };
  // `setup` runs after the answer, as MBPP's test_setup_code does, but as the first test,
  // not as the harness's setup: its failures stay the answer's (the harness would call a
  // setup that does not compile ungradable) and are named for the record's field.
  const g = await gradePython(run, code, { tests: j.setup ? [j.setup, ...j.tests] : j.tests });
  if (j.setup && !g.pass) {
    const raised = `test ${head(j.setup, 60)} raised `;
    if (g.reason.startsWith(raised))
      return { ...g, reason: `setup raised ${g.reason.slice(raised.length)}` };
    if (g.reason === `assertion failed: ${head(j.setup, 120)}`) {
      return { ...g, reason: "assertion failed in setup" };
    }
  }
  return g;
}

/**
 * A skill from generic data files (see the header for the record format): prompts as given
 * (after `prefix`), answers up to the first stop string, graded in the sandbox by Python
 * tests or by comparing a program's output. Reads every file now; throws a DataError naming
 * file, line and field for an unreadable file, one with no records, a malformed record
 * (with `strict`; otherwise it is skipped and listed in `skipped`) or a problem in two
 * splits, and an Error for bad options, an unknown split or no files at all.
 */
export function loadJsonlSkill(sources: SplitSources, opts: JsonlOptions): Skill<JsonlProblem> {
  if (typeof opts?.name !== "string" || opts.name.trim() === "") {
    throw new Error("a jsonl skill needs a name");
  }
  const maxTokens = opts.maxTokens ?? 256;
  if (!Number.isInteger(maxTokens) || maxTokens < 1) {
    throw new Error(`maxTokens must be a positive integer, got ${maxTokens}`);
  }
  if (
    opts.stop &&
    (opts.stop.length === 0 || opts.stop.some((s) => typeof s !== "string" || s === ""))
  ) {
    throw new Error("stop must be a non-empty list of non-empty strings");
  }
  const { problems, skipped } = loadSplits(opts.name, sources, parseJsonlRecord, opts);
  const all = SPLITS.flatMap((s) => problems(s));
  const allBash = all.every((p) => p.judge.kind === "expected" && p.judge.language === "bash");
  const stop = opts.stop ?? (allBash ? ["\n\n", "\n```"] : ["\n```"]);
  const prefix = opts.prefix ?? "";
  return {
    name: opts.name,
    problems,
    skipped,
    format: opts.format ?? ((p) => `${prefix}${p.instruction}`),
    stop,
    terminator: opts.terminator ?? stop[0],
    maxTokens,
    grade: (p, output, ctx) => {
      const answer = stripFence(extractAnswer(output, stop));
      const j = p.judge;
      return j.kind === "tests"
        ? gradeTests(ctx.run, j, answer)
        : gradeExpected(ctx.run, j, answer);
    },
  };
}

export { DataError };
