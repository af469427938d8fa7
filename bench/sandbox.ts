/**
 * Sandbox start-up benchmark: sandboxes started per second for `bash -c true` and
 * `python3 -c pass`, one at a time and 8 at once, for each usable tool and for both modes
 * (root and rootless), against the same programs run with limits only (runUnsandboxed).
 * Started as root, it measures the root mode itself and the rootless mode as the ordinary
 * account the tests use (cycleqd-test, or CYCLEQD_TEST_USER), and prints both side by side.
 *
 *   node --import tsx bench/sandbox.ts [seconds per measurement]
 *
 * Numbers are wall-clock on whatever else is running.
 */
import { availableParallelism } from "node:os";
import {
  checkSandbox,
  runSandboxed,
  runUnsandboxed,
  type SandboxOptions,
  type SandboxResult,
} from "../src/sandbox/index.ts";
import { findAccount, readableCopy, runAsUser } from "../test/helpers/unprivileged.ts";

const seconds = Number(process.argv[2] ?? 2);
const asJson = process.argv.includes("--json");
if (!(seconds > 0))
  throw new Error("usage: bench/sandbox.ts [seconds per measurement > 0] [--json]");

type Runner = (o: SandboxOptions) => Promise<SandboxResult>;

interface Row {
  runner: string;
  program: string;
  one: number;
  eight: number;
}

/** Starts per second over `seconds`, `width` at a time, after one warm-up. */
async function rate(run: Runner, command: string[], width: number): Promise<number> {
  const once = async () => {
    const r = await run({ command, timeoutMs: 30_000 });
    if (r.exitCode !== 0) throw new Error(`${command.join(" ")} failed: ${r.reason} ${r.stderr}`);
  };
  await once();
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) {
    await Promise.all(Array.from({ length: width }, once));
    n += width;
  }
  return n / ((performance.now() - t0) / 1000);
}

const programs: [string, string[]][] = [
  ["bash -c true", ["bash", "-c", "true"]],
  ["python3 -c pass", ["python3", "-c", "pass"]],
];

/** Every usable (tool, this process's mode) and the limits-only baseline, measured here. */
async function measure(notes: string[]): Promise<Row[]> {
  const runners: [string, Runner][] = [["limits only", runUnsandboxed]];
  for (const tool of ["unshare", "bwrap"] as const) {
    const c = await checkSandbox({ tool });
    if (c.ok) runners.push([`${c.mode} ${tool}`, (o) => runSandboxed({ ...o, tool })]);
    else notes.push(`${c.mode} ${tool}: not usable here (${c.problems.join("; ")})`);
  }
  const rows: Row[] = [];
  for (const [label, command] of programs)
    for (const [name, run] of runners)
      rows.push({
        runner: name,
        program: label,
        one: await rate(run, command, 1),
        eight: await rate(run, command, 8),
      });
  return rows;
}

const notes: string[] = [];
const rows = await measure(notes);
if (asJson) {
  console.log(JSON.stringify({ rows, notes }));
  process.exit(0);
}

// As root, the rootless mode is measured as an ordinary account, in the same run.
const account = process.getuid?.() === 0 ? findAccount() : null;
if (account) {
  const copy = readableCopy(["src/sandbox", "bench/sandbox.ts", "test/helpers"], account);
  try {
    const r = await runAsUser(account, copy, ["bench/sandbox.ts", String(seconds), "--json"]);
    if (r.code !== 0) throw new Error(`the rootless run failed: ${r.stderr.slice(-2000)}`);
    const theirs = JSON.parse(r.stdout.trim().split("\n").pop() as string);
    for (const row of theirs.rows as Row[])
      rows.push({
        ...row,
        runner: row.runner === "limits only" ? "limits only (user)" : row.runner,
      });
    notes.push(...(theirs.notes as string[]));
  } finally {
    copy.dispose();
  }
} else if (process.getuid?.() === 0) {
  notes.push("rootless: no ordinary account to measure it as (see .ci/run)");
}

for (const n of notes) console.log(n);
console.log(`cores: ${availableParallelism()}; ${seconds} s per measurement`);
console.log(
  "runner               program            1 at a time   8 at once    vs limits only (1 / 8)",
);
for (const [label] of programs) {
  const base = rows.find((r) => r.program === label && r.runner === "limits only") as Row;
  for (const r of rows.filter((x) => x.program === label))
    console.log(
      `${r.runner.padEnd(20)} ${label.padEnd(18)} ${r.one.toFixed(1).padStart(7)}/s ${r.eight
        .toFixed(1)
        .padStart(
          10,
        )}/s    ${(r.one / base.one).toFixed(2)} / ${(r.eight / base.eight).toFixed(2)}`,
    );
}
