/**
 * Runs a Python answer against its tests inside the sandbox. The harness is fixed text; the
 * answer and the tests travel as files. Its verdict is the last stdout line tagged with a
 * nonce the answer cannot know, so printing "pass" from the answer fools nothing.
 *
 * Order, as MBPP's and EvalPlus's programs are built (answer, then the test code): the answer,
 * the test imports, the setup, each assert, then the test script, all in one namespace.
 * Before the answer runs, the problem's own code is compiled and its top-level imports looked
 * up: if either fails the problem is ungradable here (`gradable: false`), whatever the answer.
 */

import { PYTHON_LIMITS } from "../limits.ts";
import { clip, nonce, ranTooLong } from "../text.ts";
import type { Grade, Runner } from "../types.ts";

const HARNESS_PY = String.raw`import ast, importlib.util, json, os, sys
spec = json.load(open("spec.json"))
source = open("answer.py").read()
os.remove("spec.json")
os.remove("answer.py")
tag = spec["nonce"]
verdict_out = os.fdopen(os.dup(1), "w")
devnull = os.open(os.devnull, os.O_WRONLY)
os.dup2(devnull, 1)
os.dup2(devnull, 2)

def verdict(ok, reason, gradable=True):
    verdict_out.write("\n" + tag + json.dumps({"pass": ok, "reason": reason, "gradable": gradable}) + "\n")
    verdict_out.flush()
    os._exit(0)

def short(v):
    r = repr(v)
    return r if len(r) <= 60 else r[:57] + "..."

def describe(e):
    msg = str(e).splitlines()[0] if str(e) else ""
    return type(e).__name__ + (": " + msg[:80] if msg else "")

def test_sources():
    """The problem's own code: everything that runs besides the answer."""
    out = [("test import", line) for line in spec.get("imports", [])]
    if spec.get("setup"):
        out.append(("test setup", spec["setup"]))
    out += [("test", t) for t in spec.get("tests", [])]
    if spec.get("check"):
        out.append(("test script", spec["check"]))
    return out

def missing_module(tree):
    # Top-level imports only: one inside a function or a try block may be optional.
    for node in tree.body:
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        for name in names:
            top = name.split(".")[0]
            try:
                found = importlib.util.find_spec(top) is not None
            except (ImportError, ValueError):
                found = False
            if not found:
                return top
    return None

# The problem's code is checked before the answer runs, so that nothing the answer does can
# make a problem ungradable: code that does not compile, or needs a module this python3 lacks.
for what, text in test_sources():
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError) as e:
        verdict(False, "ungradable: the %s does not compile (%s)" % (what, describe(e)), gradable=False)
    mod = missing_module(tree)
    if mod:
        verdict(False, "ungradable: the %s needs module %s, which the sandbox's python3 lacks" % (what, mod), gradable=False)

# MBPP's order: the answer, then test_setup_code, then the tests (the setup may use what the
# answer defines, e.g. tasks 367 and 927 build trees of the answer's class Node).
env = {"__name__": "__cqd_answer__"}
try:
    code = compile(source, "answer.py", "exec")
except (SyntaxError, ValueError) as e:
    verdict(False, "syntax error" + (" (line %s: %s)" % (e.lineno, e.msg) if isinstance(e, SyntaxError) else ""))
try:
    exec(code, env)
except BaseException as e:
    verdict(False, "error while loading the answer: " + describe(e))
entry = spec.get("entry")
if entry and not callable(env.get(entry)):
    verdict(False, "function %s is not defined" % entry)
try:
    for line in spec.get("imports", []):
        exec(line, env)
    if spec.get("setup"):
        exec(spec["setup"], env)
except BaseException as e:
    verdict(False, "test setup failed: " + describe(e))

def run_assert(text):
    tree = ast.parse(text)
    node = tree.body[0] if len(tree.body) == 1 else None
    simple = (isinstance(node, ast.Assert) and isinstance(node.test, ast.Compare)
              and len(node.test.ops) == 1 and isinstance(node.test.ops[0], ast.Eq))
    if not simple:
        try:
            exec(compile(tree, "<test>", "exec"), env)
        except AssertionError:
            verdict(False, "assertion failed: " + text.strip()[:120])
        return
    left = ast.Expression(node.test.left)
    right = ast.Expression(node.test.comparators[0])
    call = ast.get_source_segment(text, node.test.left) or "the call"
    try:
        got = eval(compile(left, "<test>", "eval"), env)
    except BaseException as e:
        verdict(False, "%s raised %s" % (call, describe(e)))
    want = eval(compile(right, "<test>", "eval"), env)
    try:
        same = bool(got == want)
    except BaseException:
        same = False
    if not same:
        verdict(False, "assertion failed: %s returned %s, expected %s" % (call, short(got), short(want)))

for t in spec.get("tests", []):
    try:
        run_assert(t)
    except SystemExit as e:
        verdict(False, "the answer called exit (%s)" % e.code)
    except BaseException as e:
        verdict(False, "test %s raised %s" % (t.strip()[:60], describe(e)))
check = spec.get("check")
if check:
    try:
        exec(compile(check, "<check>", "exec"), env)
        if entry and callable(env.get("check")) and not spec.get("checkCalled"):
            env["check"](env[entry])
    except AssertionError as e:
        verdict(False, "assertion failed in the test script" + (": " + str(e)[:80] if str(e) else ""))
    except BaseException as e:
        verdict(False, "the test script raised " + describe(e))
verdict(True, "ok")
`;

export interface PythonTests {
  /** Function the tests call; missing it is reported by name. */
  entry?: string;
  /** `assert` statements, one per test. */
  tests: string[];
  /** Import lines (MBPP's `test_imports`), run after the answer. */
  imports?: string[];
  /** MBPP's `test_setup_code`: runs after the answer (it may use what the answer defines). */
  setup?: string;
  /** A whole test script (EvalPlus/HumanEval style); `check(entry)` is called unless the script does. */
  check?: string;
}

/** Runs `answer` with the tests in a fresh sandbox and reads the harness's verdict. */
export async function gradePython(run: Runner, answer: string, t: PythonTests): Promise<Grade> {
  const tag = nonce();
  const spec = {
    nonce: tag,
    entry: t.entry,
    tests: t.tests,
    imports: t.imports ?? [],
    setup: t.setup ?? "",
    check: t.check ?? "",
    checkCalled: t.check ? /^check\(/m.test(t.check) : false,
  };
  const res = await run({
    command: ["python3", "-I", "harness.py"],
    files: { "harness.py": HARNESS_PY, "spec.json": JSON.stringify(spec), "answer.py": answer },
    ...PYTHON_LIMITS,
  });
  if (ranTooLong(res)) return { pass: false, reason: "timeout" };
  const line = res.stdout.split("\n").find((l) => l.startsWith(tag));
  if (line) {
    try {
      const v = JSON.parse(line.slice(tag.length)) as {
        pass: boolean;
        reason: string;
        gradable?: boolean;
      };
      const g: Grade = { pass: v.pass === true, reason: String(v.reason) };
      if (v.gradable === false) g.gradable = false;
      return g;
    } catch {
      // fall through: a truncated verdict counts as none
    }
  }
  if (res.outputTruncated) return { pass: false, reason: "too much output" };
  const why = res.reason ?? (res.signal ? `killed by ${res.signal}` : `exit code ${res.exitCode}`);
  const err = res.stderr.trim() ? `: ${clip(res.stderr, 100)}` : "";
  return { pass: false, reason: `no verdict, the program ended early (${why})${err}` };
}
