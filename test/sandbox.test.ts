import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statfsSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { homedir, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, describe, test } from "node:test";
import {
  checkSandbox,
  runSandboxed,
  runUnsandboxed,
  type SandboxOptions,
  type SandboxResult,
  type SandboxTool,
} from "../src/sandbox/index.ts";
import { processesOf } from "../src/sandbox/run.ts";
import { removeTree } from "../src/sandbox/skeleton.ts";
import { findTools } from "../src/sandbox/tools.ts";

// ---------------------------------------------------------------- setup

const check = await checkSandbox();
// Where no sandbox works (no user namespaces) the suite skips; in CI it must fail loudly.
const skip =
  check.ok || process.env.CI ? false : `sandbox unavailable: ${check.problems.join("; ")}`;
const hasBwrap = check.ok && (await checkSandbox({ tool: "bwrap" })).ok;
/** Root mode as root, rootless mode as an ordinary user (test/sandbox-rootless.test.ts). */
const MODE = check.mode;
console.log(`# ${MODE} mode`);

// Every sandbox this file starts carries this mark in its environment, so that what
// survives of it can be found whichever uid it ran as.
const MARK = randomBytes(8).toString("hex");

const SECRET = `cycleqd-secret-${randomBytes(8).toString("hex")}`;
process.env.CYCLEQD_TEST_SECRET = SECRET;
const secretFile = join(tmpdir(), `${SECRET}.txt`);
writeFileSync(secretFile, SECRET, { mode: 0o644 });
after(() => {
  delete process.env.CYCLEQD_TEST_SECRET;
  if (existsSync(secretFile)) unlinkSync(secretFile);
});

type Extra = Partial<SandboxOptions>;

function run(command: string[], extra: Extra, tool?: SandboxTool): Promise<SandboxResult> {
  return runSandboxed({
    command,
    tool,
    ...extra,
    env: { CYCLEQD_TEST_MARK: MARK, ...extra.env },
  });
}

function sh(script: string, extra: Extra = {}, tool?: SandboxTool): Promise<SandboxResult> {
  return run(["bash", "-c", script], extra, tool);
}

function py(code: string, extra: Extra = {}, tool?: SandboxTool): Promise<SandboxResult> {
  return run(["python3", "-c", code], extra, tool);
}

/** Host processes that carry `mark` in their environment. */
function marked(mark: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${name}/environ`, "latin1").includes(`CYCLEQD_TEST_MARK=${mark}`))
        out.push(Number(name));
    } catch {}
  }
  return out;
}

/**
 * Nothing of the sandbox may be left on the host. A PID namespace's last processes are
 * killed by the kernel when its init exits and may take a moment to go; a survivor is one
 * still there after that (an escaped `setsid sleep 1000` would be).
 */
async function assertNoSurvivors(r: SandboxResult): Promise<void> {
  assert.equal(r.mode, MODE);
  const left = () => [...(MODE === "root" ? processesOf(r.uid) : []), ...marked(MARK)];
  for (let i = 0; i < 40 && left().length > 0; i++) await new Promise((f) => setTimeout(f, 50));
  if (MODE === "root") {
    assert.ok(r.uid >= 200_000, `sandbox uid ${r.uid}`);
    assert.deepEqual(processesOf(r.uid), [], `processes of uid ${r.uid} survived`);
  } else assert.equal(r.uid, process.getuid?.());
  assert.deepEqual(marked(MARK), [], "sandbox processes survived");
}

function freeBytes(): number {
  const s = statfsSync("/");
  return s.bavail * s.bsize;
}

// ---------------------------------------------------------------- the check

describe("checkSandbox", { skip }, () => {
  test("finds a working sandbox and names the tool", () => {
    assert.equal(check.ok, true, `${check.problems.join("; ")} -> ${check.fix}`);
    assert.ok(["unshare", "bwrap"].includes(check.tool));
    assert.deepEqual(check.problems, []);
    assert.equal(check.fix, "");
  });

  test("names the package for a program the skills need but the sandbox lacks", async () => {
    const c = await checkSandbox({ require: ["python3", "no-such-program-xyz"] });
    assert.equal(c.ok, false);
    assert.match(c.problems.join("\n"), /no-such-program-xyz not found inside the sandbox/);
    assert.match(c.fix, /apt-get install -y no-such-program-xyz/);
  });
});

// ---------------------------------------------------------------- normal programs

describe("normal programs", { skip }, () => {
  test("python and bash run and their output comes back", async () => {
    const p = await py(
      "import sys, json; print(json.dumps({'a': 2 ** 10})); print('err', file=sys.stderr)",
    );
    assert.equal(p.exitCode, 0);
    assert.equal(p.signal, null);
    assert.equal(p.stdout, '{"a": 1024}\n');
    assert.equal(p.stderr, "err\n");
    assert.equal(p.reason, undefined);
    assert.equal(p.timedOut, false);
    const b = await sh("for i in 1 2 3; do echo $((i * i)); done; pwd; echo $HOME; exit 3");
    assert.equal(b.exitCode, 3);
    assert.equal(b.stdout, "1\n4\n9\n/work\n/work\n");
    assert.equal(b.reason, "exit 3");
  });

  test("stdin, files in, files collected, env", async () => {
    const r = await runSandboxed({
      command: ["bash", "run.sh"],
      files: {
        "run.sh":
          '#!/bin/bash\nset -e\nmkdir out\npython3 lib/sum.py > out/total.txt\n./exe.sh >> out/total.txt\necho "$GREETING"\n',
        "lib/sum.py": "import sys\nprint(sum(int(x) for x in sys.stdin.read().split()))\n",
        "exe.sh": "#!/bin/sh\necho executable\n",
        "bin.dat": new Uint8Array([0, 1, 2, 255]),
      },
      stdin: "1 2 3\n4\n",
      env: { GREETING: "hi there" },
      collect: ["out", "bin.dat", "missing.txt", "link"],
    });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.stdout, "hi there\n");
    assert.deepEqual(Object.keys(r.files ?? {}).sort(), ["bin.dat", "out/total.txt"]);
    assert.equal(r.files?.["out/total.txt"], "10\nexecutable\n");
  });

  test("a symlink in the work dir is never followed when collecting", async () => {
    const r = await sh("ln -s /etc/passwd stolen; ln -s /proc/self/environ env", {
      collect: ["stolen", "env"],
    });
    assert.equal(r.exitCode, 0);
    assert.deepEqual(r.files, {});
  });

  test("the environment holds only PATH, HOME, LANG and what the caller adds", async () => {
    const r = await sh("env | sort", { env: { EXTRA: "1" } });
    const names = r.stdout
      .trim()
      .split("\n")
      .map((l) => l.split("=")[0]);
    assert.deepEqual(
      names.filter((n) => n !== "PWD" && n !== "SHLVL" && n !== "_"),
      ["CYCLEQD_TEST_MARK", "EXTRA", "HOME", "LANG", "PATH"],
    );
  });

  test("output is capped in the parent, and the flood stopped", async () => {
    const r = await sh("yes 0123456789", { maxOutputBytes: 4096 });
    assert.equal(r.outputTruncated, true);
    assert.equal(r.stdout.length, 4096);
    assert.match(r.reason ?? "", /output limit of 4096 bytes/);
    await assertNoSurvivors(r);
    const small = await sh("head -c 100 /dev/zero | tr '\\0' a", { maxOutputBytes: 4096 });
    assert.equal(small.outputTruncated, false);
    assert.equal(small.stdout.length, 100);
  });

  test("a missing program is a result, not an exception", async () => {
    const r = await runSandboxed({ command: ["no-such-program-xyz"] });
    assert.equal(r.exitCode, 127);
    assert.match(r.reason ?? "", /command not found/);
  });

  test("bad input is refused with a message", async () => {
    await assert.rejects(runSandboxed({ command: [] }), /command must be a non-empty array/);
    await assert.rejects(
      runSandboxed({ command: ["true"], files: { "../x": "" } }),
      /inside the work dir/,
    );
    await assert.rejects(runSandboxed({ command: ["true"], files: { "/etc/x": "" } }), /relative/);
    await assert.rejects(runSandboxed({ command: ["true"], collect: ["a/../../b"] }), /inside/);
    await assert.rejects(runSandboxed({ command: ["true"], timeoutMs: 0 }), /timeoutMs/);
    await assert.rejects(
      runSandboxed({ command: ["true"], network: true as unknown as false }),
      /network must be false/,
    );
    await assert.rejects(runSandboxed({ command: ["true"], env: { "A=B": "x" } }), /env name/);
  });

  test("an interpreter outside /usr runs when its prefix is bound read-only", async () => {
    const node = realpathSync(process.execPath);
    const prefix = dirname(dirname(node));
    const r = await runSandboxed({
      command: [node, "-e", "console.log(6 * 7)"],
      readOnlyPaths: [prefix],
      // V8 reserves address space far beyond what it uses.
      memoryBytes: 8 * 2 ** 30,
    });
    assert.equal(r.exitCode, 0, `${r.reason} ${r.stderr}`);
    assert.equal(r.stdout, "42\n");
    await assert.rejects(
      runSandboxed({ command: ["true"], readOnlyPaths: ["/tmp/x"] }),
      /would hide part of the sandbox/,
    );
    await assert.rejects(runSandboxed({ command: ["true"], tool: "nsjail" as "bwrap" }), /tool/);
  });

  test("eight at once, each in a PID namespace of its own (root mode: and a uid)", async () => {
    const rs = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        py(
          `import os\nprint(${i} * 2, sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))`,
          {
            timeoutMs: 20_000,
          },
        ),
      ),
    );
    rs.forEach((r, i) => {
      assert.equal(r.exitCode, 0, r.stderr);
      assert.equal(r.stdout.split(" ")[0], String(i * 2));
    });
    // Each sees only its PID 1 and itself, never a neighbour.
    for (const r of rs) assert.match(r.stdout, /^\d+ \[1, \d+\]\n$/);
    if (MODE === "root") assert.equal(new Set(rs.map((r) => r.uid)).size, 8);
  });
});

// ---------------------------------------------------------------- attacks

describe("attacks are contained", { skip }, () => {
  test("bash fork bomb: contained, reported, nothing survives", async () => {
    const r = await sh(":(){ :|:& };:", { timeoutMs: 2000 });
    assert.match(r.reason ?? "", /left \d+ process(es)? running, killed|timed out/);
    await assertNoSurvivors(r);
  });

  test("a fork bomb that stays hits the process limit and the clock; a neighbour is unharmed", async () => {
    const [bomb, neighbour] = await Promise.all([
      sh(":(){ :|:& };:; sleep 30", { timeoutMs: 1500, maxProcesses: 32 }),
      py(
        "import subprocess\nprint(subprocess.run(['echo', 'ok'], capture_output=True, text=True).stdout, end='')",
        {
          timeoutMs: 10_000,
        },
      ),
    ]);
    assert.equal(bomb.timedOut, true);
    assert.equal(bomb.reason, "timed out after 1500 ms");
    await assertNoSurvivors(bomb);
    assert.equal(neighbour.exitCode, 0, neighbour.stderr);
    assert.equal(neighbour.stdout, "ok\n");
  });

  test("python os.fork loop hits the process limit", async () => {
    const r = await py("import os\nwhile True:\n    os.fork()", {
      timeoutMs: 3000,
      maxProcesses: 16,
    });
    assert.notEqual(r.exitCode, 0);
    assert.match(r.reason ?? "", /process limit of 16|timed out/);
    await assertNoSurvivors(r);
  });

  test("an endless loop is stopped by the cpu limit, a sleeper by the wall clock", async () => {
    const cpu = await py("while True: pass", { cpuSeconds: 1, timeoutMs: 5000 });
    assert.equal(cpu.signal, "SIGXCPU");
    assert.equal(cpu.reason, "killed: cpu time limit (1 s)");
    assert.equal(cpu.timedOut, false);
    const wall = await sh("sleep 30", { timeoutMs: 300 });
    assert.equal(wall.timedOut, true);
    assert.equal(wall.exitCode, null);
    assert.ok(wall.durationMs < 2000, `took ${wall.durationMs} ms`);
    await assertNoSurvivors(wall);
  });

  test("10 GB writes stop at the size caps; host disk unchanged", async () => {
    const before = freeBytes();
    const dd = await sh("dd if=/dev/zero of=/work/big bs=1M count=10240");
    assert.equal(dd.signal, "SIGXFSZ");
    assert.match(dd.reason ?? "", /file size limit/);
    const many = await py(
      "i = 0\nwhile i < 10240:\n    open(f'/work/f{i}', 'wb').write(b'x' * 2**20)\n    i += 1",
    );
    assert.equal(many.exitCode, 1);
    assert.match(many.stderr, /No space left on device/);
    assert.match(many.reason ?? "", /full/);
    const tmp = await sh(
      "for i in $(seq 10240); do head -c 1048576 /dev/zero > /tmp/f$i || exit 9; done",
    );
    assert.equal(tmp.exitCode, 9);
    assert.match(tmp.stderr, /No space left on device/);
    const shm = await py("open('/dev/shm/x', 'wb').write(b'x' * 2**30)");
    assert.notEqual(shm.exitCode, 0);
    // Other test runs share this disk: allow noise far below the 10 GB attempted.
    assert.ok(before - freeBytes() < 256 * 2 ** 20, "host disk filled up");
  });

  test("System V shared memory is capped like /tmp", async () => {
    const r = await py(
      [
        "import ctypes, ctypes.util",
        "libc = ctypes.CDLL(ctypes.util.find_library('c'), use_errno=True)",
        "libc.shmat.restype = ctypes.c_void_p",
        "mb = 0",
        "for i in range(256):",
        "    sid = libc.shmget(0, 4 << 20, 0o1600)",
        "    if sid < 0: break",
        "    addr = libc.shmat(sid, None, 0)",
        "    ctypes.memset(addr, 1, 4 << 20)",
        "    libc.shmdt(ctypes.c_void_p(addr))",
        "    mb += 4",
        "print(mb)",
      ].join("\n"),
      { tmpBytes: 8 * 2 ** 20 },
    );
    assert.equal(r.exitCode, 0, r.stderr);
    assert.ok(Number(r.stdout) <= 8, `${r.stdout.trim()} MB of shared memory`);
  });

  test("no network: TCP to 127.0.0.1 and outside, raw sockets, DNS, curl", async () => {
    const r = await py(
      [
        "import socket",
        "for host in ['127.0.0.1', '1.1.1.1', '8.8.8.8']:",
        "    try:",
        "        socket.create_connection((host, 80), timeout=2); print('connected', host)",
        "    except OSError as e: print('refused', host, e.errno)",
        "try:",
        "    socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP); print('raw ok')",
        "except OSError as e: print('raw refused', e.errno)",
        "try:",
        "    socket.getaddrinfo('example.com', 80); print('dns ok')",
        "except OSError as e: print('dns refused')",
        "print(open('/proc/net/dev').read())",
      ].join("\n"),
    );
    assert.equal(r.exitCode, 0, r.stderr);
    assert.doesNotMatch(r.stdout, /connected|raw ok|dns ok/);
    assert.match(r.stdout, /refused 127\.0\.0\.1/);
    const ifaces = r.stdout
      .split("\n")
      .filter((l) => l.includes(":") && !l.includes("|"))
      .map((l) => l.split(":")[0].trim());
    assert.deepEqual(ifaces, ["lo"]);
    if (existsSync("/usr/bin/curl")) {
      const c = await sh(
        "curl -sS -m 3 http://1.1.1.1/ && echo GOT; curl -sS -m 3 http://example.com/ && echo GOT",
      );
      assert.doesNotMatch(c.stdout, /GOT/);
    }
    const up = await sh("ip link set lo up 2>/dev/null && echo LO-UP; cat /proc/net/route");
    assert.doesNotMatch(up.stdout, /LO-UP/);
    assert.equal(up.stdout.trim().split("\n").length, 1, "a route exists");
  });

  test("writes outside /work and /tmp fail; the host's /tmp and mounts are untouched", async () => {
    const mounts = readFileSync("/proc/self/mountinfo", "utf8");
    const name = `cycleqd-probe-${randomBytes(6).toString("hex")}`;
    const r = await sh(
      ["/usr", "/etc", "/", "/bin", "/dev", "/proc/sys/kernel"]
        .map((d) => `(echo x > ${d}/${name}) 2>/dev/null && echo WROTE ${d}`)
        .concat([
          `echo x > /tmp/${name} && echo tmp-ok`,
          "echo 1 > /proc/sys/kernel/hostname 2>/dev/null && echo HOST",
        ])
        .join("; "),
    );
    assert.doesNotMatch(r.stdout, /WROTE|HOST/);
    assert.match(r.stdout, /tmp-ok/);
    assert.equal(existsSync(join(tmpdir(), name)), false);
    for (const d of ["/usr", "/etc", "/"]) assert.equal(existsSync(join(d, name)), false);
    assert.equal(readFileSync("/proc/self/mountinfo", "utf8"), mounts, "host mounts changed");
  });

  test("the host's home, repo, run dir and a secret in its /tmp are invisible", async () => {
    const cwd = process.cwd();
    const r = await sh(
      [
        `cat ${secretFile} 2>/dev/null`,
        "ls -la /tmp /root /home 2>/dev/null",
        `ls ${cwd} ${homedir()} 2>/dev/null && echo SAW-REPO`,
        "ls /proc/1/root/ 2>/dev/null && echo SAW-ROOT",
        "cat /proc/self/mountinfo",
        "ls -A /",
      ].join("; "),
    );
    assert.doesNotMatch(r.stdout, new RegExp(SECRET));
    assert.doesNotMatch(r.stdout, /SAW-REPO|SAW-ROOT/);
    // Rootless, the read-only skeleton's own mount names its (empty) host directory.
    const seen = MODE === "rootless" ? r.stdout.replace(/^.* \/ ro,.*$/m, "") : r.stdout;
    assert.doesNotMatch(seen, new RegExp(tmpdir() === "/tmp" ? "cycleqd-sandbox-" : "\0"));
    assert.ok(!r.stdout.includes(cwd), "the repo path shows inside");
    const top = r.stdout.trim().split("\n").slice(-12).join(" ");
    assert.doesNotMatch(top, /\broot\b|\bhome\b|\bmnt\b|\bvar\b|\bsrv\b|\bopt\b/);
  });

  test("no process outlives the program: nohup, setsid, double fork", async () => {
    const r = await sh(
      "nohup sleep 1000 >/dev/null 2>&1 & setsid sleep 1000 & (sleep 1000 &); " +
        "python3 -c \"import os\nif os.fork() == 0:\n  os.setsid()\n  if os.fork() == 0:\n    os.execvp('sleep', ['sleep', '1000'])\" ; echo started",
    );
    assert.equal(r.exitCode, 0);
    assert.match(r.reason ?? "", /left [1-9]\d* process/);
    await assertNoSurvivors(r);
    const t = await sh("setsid nohup sleep 1000 >/dev/null 2>&1 & sleep 1000", { timeoutMs: 400 });
    assert.equal(t.timedOut, true);
    await assertNoSurvivors(t);
  });

  test("the sandbox dies with its grader, even a SIGKILLed one", async () => {
    const script = join(tmpdir(), `cycleqd-parent-${randomBytes(4).toString("hex")}.mts`);
    const mod = new URL("../src/sandbox/", import.meta.url).pathname;
    const mark = randomBytes(8).toString("hex");
    writeFileSync(
      script,
      `import { runSandboxed } from "${mod}run.ts";\n` +
        `await runSandboxed({ command: ["sleep", "1000"], timeoutMs: 60000, env: { CYCLEQD_TEST_MARK: "${mark}" } });\n`,
    );
    try {
      const child = spawn(process.execPath, ["--import", "tsx", script], {
        stdio: ["ignore", "inherit", "inherit"],
      });
      const inBlock = () => marked(mark).length;
      const until = Date.now() + 10_000;
      while (inBlock() === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      assert.ok(inBlock() > 0, "the sandbox never started");
      child.kill("SIGKILL");
      const gone = Date.now() + 3000;
      while (inBlock() > 0 && Date.now() < gone) await new Promise((r) => setTimeout(r, 20));
      assert.equal(inBlock(), 0, "sandbox processes outlived their grader");
      // The dead grader's skeleton (later graders sweep these too).
      for (const n of readdirSync(tmpdir()))
        if (n.startsWith(`cycleqd-sandbox-${child.pid}-`)) removeTree(join(tmpdir(), n));
    } finally {
      unlinkSync(script);
    }
  });

  test("/proc/1/environ and every environ inside hold nothing of the parent's", async () => {
    assert.equal(process.env.CYCLEQD_TEST_SECRET, SECRET);
    const r = await sh(
      "for f in /proc/[0-9]*/environ; do cat $f 2>/dev/null | tr '\\0' '\\n'; done; env",
    );
    assert.doesNotMatch(r.stdout + r.stderr, new RegExp(SECRET));
    assert.doesNotMatch(r.stdout, /CYCLEQD_TEST_SECRET/);
  });

  test("no root, no capabilities, no setuid, no user namespaces; PID 1 survives signals", async () => {
    const r = await sh(
      [
        "id -u",
        "cat /proc/self/uid_map",
        "for s in $(seq 1 31); do kill -$s 1 2>/dev/null; done",
        "grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs)' /proc/self/status",
        "su -c id root </dev/null 2>/dev/null && echo SU",
        "unshare -Ur true 2>/dev/null && echo USERNS",
        // Rootless, the program is the namespace's root already, without capabilities.
        MODE === "root" ? "python3 -c 'import os; os.setuid(0)' 2>/dev/null && echo SETUID" : ":",
        "kill -9 -1 2>/dev/null; echo still-here",
      ].join("; "),
    );
    const lines = r.stdout.trim().split("\n");
    // The uid on the host, through the user namespace's map: never root.
    const [inside, outside, count] = lines[1].trim().split(/\s+/).map(Number);
    const host = outside + Number(lines[0]) - inside;
    assert.ok(Number(lines[0]) - inside < count);
    if (MODE === "root") assert.ok(host >= 200_000, `host uid ${host}`);
    else assert.equal(host, process.getuid?.());
    assert.equal(r.exitCode, 0, `the sandbox broke: ${r.reason} ${r.stderr}`);
    for (const l of lines.filter((x) => x.startsWith("Cap"))) assert.match(l, /:\s+0+$/, l);
    assert.ok(lines.includes("NoNewPrivs:\t1"));
    assert.doesNotMatch(r.stdout, /SU|USERNS|SETUID/);
    await assertNoSurvivors(r);
  });
});

describe("the user's own files are out of reach", { skip }, () => {
  // An SSH key planted in the test account's home (test/sandbox-rootless.test.ts), or a
  // file in the checkout standing in for one where the home is the developer's own.
  const secret = `cycleqd-key-${randomBytes(8).toString("hex")}`;
  const planted = process.env.CYCLEQD_TEST_PLANT_HOME === "1";
  const sshDir = join(homedir(), ".ssh");
  const runDir = join(process.cwd(), `.cycleqd-test-run-${randomBytes(4).toString("hex")}`);
  const store = join(runDir, "run.sqlite");
  const parent = process.pid;

  test("reading ~/.ssh, writing the checkout, reading the run store, signalling the grader", async () => {
    mkdirSync(runDir, { recursive: true });
    writeFileSync(store, `SQLite format 3\0${secret}`);
    if (planted) {
      mkdirSync(sshDir, { recursive: true, mode: 0o700 });
      writeFileSync(join(sshDir, "id_ed25519"), secret, { mode: 0o600 });
    }
    const target = join(process.cwd(), `pwned-${secret}`);
    try {
      const r = await sh(
        [
          `cat ${sshDir}/id_ed25519 ${sshDir}/* 2>/dev/null`,
          `ls -d ${homedir()} 2>/dev/null && echo SAW-HOME`,
          `(echo x > ${target}) 2>/dev/null && echo WROTE-CHECKOUT`,
          `cat ${store} 2>/dev/null`,
          `find / -maxdepth 4 \\( -name 'run.sqlite' -o -name '*.db' \\) 2>/dev/null | grep -v '^/proc' | head -3`,
          `kill -0 ${parent} 2>/dev/null && echo PARENT-VISIBLE`,
          `kill -9 ${parent} 2>/dev/null`,
          "echo done",
        ].join("; "),
      );
      assert.equal(r.exitCode, 0, r.stderr);
      assert.doesNotMatch(r.stdout + r.stderr, new RegExp(secret));
      assert.doesNotMatch(r.stdout, /SAW-HOME|WROTE-CHECKOUT|PARENT-VISIBLE|run\.sqlite/);
      assert.match(r.stdout, /done/);
      assert.equal(existsSync(target), false, "the sandbox wrote into the checkout");
      assert.equal(readFileSync(store, "latin1").includes(secret), true);
    } finally {
      rmSync(runDir, { recursive: true, force: true });
      if (planted) rmSync(join(sshDir, "id_ed25519"), { force: true });
    }
  });
});

// ---------------------------------------------------------------- bubblewrap

describe("bubblewrap layout", {
  skip: skip || (hasBwrap ? false : "bubblewrap not installed"),
}, () => {
  test("runs programs and contains the same attacks", async () => {
    const ok = await runSandboxed({
      tool: "bwrap",
      command: ["python3", "-c", "import sys; print(sys.stdin.read().upper())"],
      stdin: "abc",
      files: { "a.txt": "x" },
      collect: ["a.txt"],
    });
    assert.equal(ok.tool, "bwrap");
    assert.equal(ok.stdout, "ABC\n");
    assert.deepEqual(ok.files, { "a.txt": "x" });
    const bomb = await sh(
      ":(){ :|:& };:; sleep 30",
      { timeoutMs: 1000, maxProcesses: 32 },
      "bwrap",
    );
    assert.equal(bomb.timedOut, true);
    await assertNoSurvivors(bomb);
    const esc = await sh(
      "nohup sleep 1000 >/dev/null 2>&1 & setsid sleep 1000 & unshare -Ur true 2>/dev/null && echo USERNS; " +
        `cat ${secretFile} 2>/dev/null; id -u; cat /proc/1/environ 2>/dev/null`,
      {},
      "bwrap",
    );
    assert.doesNotMatch(esc.stdout, new RegExp(`USERNS|${SECRET}`));
    if (MODE === "root") assert.ok(Number(esc.stdout.trim().split("\n").pop()) >= 200_000);
    await assertNoSurvivors(esc);
    const big = await sh("dd if=/dev/zero of=/work/big bs=1M count=10240", {}, "bwrap");
    assert.equal(big.signal, "SIGXFSZ");
  });
});

// ---------------------------------------------------------------- opt-in unsafe path

describe("runUnsandboxed", () => {
  test("applies limits, timeout and caps, and cleans its work dir", async () => {
    if (!findTools().prlimit) return;
    const r = await runUnsandboxed({
      command: ["sh", "-c", "cat in.txt; echo out > out.txt; pwd"],
      files: { "in.txt": "in\n" },
      collect: ["out.txt"],
    });
    assert.equal(r.exitCode, 0);
    assert.equal(r.tool, "none");
    const [first, work] = r.stdout.trim().split("\n");
    assert.equal(first, "in");
    assert.match(work, /cycleqd-unsandboxed-/);
    assert.deepEqual(r.files, { "out.txt": "out\n" });
    assert.equal(existsSync(work), false, "work dir left behind");
    const t = await runUnsandboxed({ command: ["sleep", "30"], timeoutMs: 300 });
    assert.equal(t.timedOut, true);
    const cpu = await runUnsandboxed({
      command: ["sh", "-c", "while :; do :; done"],
      cpuSeconds: 1,
    });
    assert.equal(cpu.signal, "SIGXCPU");
    const flood = await runUnsandboxed({ command: ["yes"], maxOutputBytes: 1000 });
    assert.equal(flood.outputTruncated, true);
  });
});
