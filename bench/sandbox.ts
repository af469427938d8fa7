/**
 * Sandbox start-up benchmark: sandboxes started per second for `bash -c true` and
 * `python3 -c pass`, one at a time and 8 at once, for each usable tool, against the same
 * programs run with limits only (runUnsandboxed). Run with `node --import tsx bench/sandbox.ts
 * [seconds per measurement]`. Numbers are wall-clock on whatever else is running.
 */
import { availableParallelism } from "node:os";
import {
  checkSandbox,
  runSandboxed,
  runUnsandboxed,
  type SandboxOptions,
  type SandboxResult,
} from "../src/skills/sandbox/index.ts";

const seconds = Number(process.argv[2] ?? 2);
if (!(seconds > 0)) throw new Error("usage: bench/sandbox.ts [seconds per measurement > 0]");

type Runner = (o: SandboxOptions) => Promise<SandboxResult>;

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

const runners: [string, Runner][] = [["limits only", runUnsandboxed]];
for (const tool of ["unshare", "bwrap"] as const) {
  const c = await checkSandbox({ tool });
  if (c.ok) runners.push([tool, (o) => runSandboxed({ ...o, tool })]);
  else console.log(`${tool}: not usable here (${c.problems.join("; ")})`);
}

console.log(`cores: ${availableParallelism()}; ${seconds} s per measurement`);
console.log("runner        program            1 at a time   8 at once    vs limits only (1 / 8)");
const base = new Map<string, [number, number]>();
for (const [label, command] of programs) {
  for (const [name, run] of runners) {
    const seq = await rate(run, command, 1);
    const par = await rate(run, command, 8);
    if (name === "limits only") base.set(label, [seq, par]);
    const [bs, bp] = base.get(label) ?? [seq, par];
    console.log(
      `${name.padEnd(13)} ${label.padEnd(18)} ${seq.toFixed(1).padStart(7)}/s ${par
        .toFixed(1)
        .padStart(10)}/s    ${(seq / bs).toFixed(2)} / ${(par / bp).toFixed(2)}`,
    );
  }
}
