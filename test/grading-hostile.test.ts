/**
 * Hostile answers in batched grading: each runs between ordinary answers in a one-lane
 * runner, and neither its own verdict nor any sibling's may differ from what one sandbox per
 * answer gives. Runs in the mode of whoever runs it; test/sandbox-rootless.test.ts runs it
 * as an ordinary user too.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { checkSandbox, createBatchRunner, runSandboxed } from "../src/sandbox/index.ts";
import { gradePython } from "../src/skills/code/harness.ts";
import type { Grade, Runner } from "../src/skills/types.ts";

const check = await checkSandbox();
const skip =
  check.ok || process.env.CI ? false : `sandbox unavailable: ${check.problems.join("; ")}`;
console.log(`# ${check.mode} mode`);

describe("hostile answers in batched grading", { skip }, () => {
  const tests = { entry: "f", tests: ["assert f(2) == 4", "assert f(3) == 9"] };
  const good = "def f(x):\n    return x * x\n";
  const bad = "def f(x):\n    return x + x\n";
  const hostile: Record<string, string> = {
    "kills every process it can see": "import os, signal\nos.kill(-1, signal.SIGKILL)\n" + good,
    "stops its lane": "import os, signal\nos.kill(os.getppid(), signal.SIGSTOP)\n" + good,
    "lowers its lane's limits":
      "import os, resource\nresource.prlimit(os.getppid(), resource.RLIMIT_NOFILE, (8, 8))\n" +
      good,
    "renices its lane": "import os\nos.setpriority(os.PRIO_PROCESS, os.getppid(), 19)\n" + good,
    "fork bomb": "import os\nwhile True:\n    os.fork()\n",
    "fills the disk":
      "i = 0\nwhile True:\n    open('/work/f%d' % i, 'wb').write(b'x' * 2**20); i += 1\n",
    "fills /tmp and leaves a trap for the next answer":
      "open('/tmp/answer.py', 'w').write('def f(x): return 0')\nimport os\nos.makedirs('/work/x', exist_ok=True)\n" +
      good,
    "writes into where a sibling's work goes":
      "import os\nfor d in ('/work', '/tmp'):\n    open(os.path.join(d, 'harness.py'), 'w').write('print(1)')\n" +
      good,
    "leaves a process that rewrites files later":
      "import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(0.3)\n    open('/work/answer.py', 'w').write('def f(x): return 0')\n    os._exit(0)\n" +
      good,
    "endless loop": "def f(x):\n    while True:\n        pass\n",
    "shared memory left behind":
      "import ctypes, ctypes.util\nlibc = ctypes.CDLL(ctypes.util.find_library('c'))\nlibc.shmget(0x1234, 1 << 20, 0o1666)\n" +
      good,
  };

  for (const [name, answer] of Object.entries(hostile)) {
    // Rootless, the answer shares its uid and gid with its PID 1 and may lower that one's
    // limits: alone, dash then fails to report (a failed verdict, "broke its sandbox"), while
    // in a lane the job's Python init copes. Known difference; see the README.
    const gap = check.mode === "rootless" && name === "lowers its lane's limits";
    test(`hostile answer: ${name}; its verdict and its siblings' are unchanged`, {
      skip: gap ? "rootless: PID 1 shares the answer's uid (known difference)" : false,
    }, async () => {
      const lane = createBatchRunner({ lanes: 1 });
      try {
        const sequence = [good, bad, answer, good, bad, good];
        const grade = async (run: Runner) => {
          const out: Grade[] = [];
          for (const a of sequence) out.push(await gradePython(run, a, tests));
          return out;
        };
        const single = await grade(runSandboxed);
        const batched = await grade((req) => lane.run(req));
        assert.deepEqual(batched, single);
        assert.deepEqual(
          single.map((g) => g.pass),
          [true, false, single[2].pass, true, false, true],
        );
      } finally {
        await lane.close();
      }
    });
  }
});
