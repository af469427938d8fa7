/**
 * Chooses where answers run: the sandbox, or (only when the user opted in) directly on the
 * host. Without a working sandbox and without the opt-in, evaluation refuses to start.
 */
import {
  type BatchStats,
  checkSandbox,
  createBatchRunner,
  runSandboxed,
  runUnsandboxed,
  type SandboxCheck,
} from "../sandbox/index.ts";
import type { Runner } from "./types.ts";

export interface RunnerOptions {
  /** Run model output without a sandbox when none works. Dangerous; off by default. */
  unsafe?: boolean;
  /** The sandbox probe (default: checkSandbox, run once per process). */
  check?: () => Promise<SandboxCheck>;
}

let cached: Promise<SandboxCheck> | null = null;

export async function resolveRunner(opts: RunnerOptions = {}): Promise<Runner> {
  if (!opts.check) cached ??= checkSandbox();
  const check = await (opts.check ? opts.check() : (cached as Promise<SandboxCheck>));
  if (check.ok) return runSandboxed;
  if (opts.unsafe) return runUnsandboxed;
  throw new Error(
    `cannot grade: no working sandbox to run model output in (${check.problems.join("; ")}).\n` +
      `Fix: ${check.fix || "install util-linux (unshare, setpriv, prlimit) or bubblewrap"}\n` +
      "Or, at your own risk, run model output directly on this machine with --unsafe.",
  );
}

/** Where a whole evaluation's answers run, and what to close when it is over. */
export interface Grader {
  run: Runner;
  /** Batched grading's counts (lanes broken, answers re-run alone); null for other runners. */
  stats(): BatchStats | null;
  close(): Promise<void>;
}

/**
 * A grader: lanes of long-lived sandboxes when `batch` (the default) and the sandbox works,
 * one sandbox per answer otherwise, or the unsafe runner when the user opted in.
 */
export async function openGrader(opts: RunnerOptions & { batch?: boolean } = {}): Promise<Grader> {
  const run = await resolveRunner(opts);
  if (run !== runSandboxed || opts.batch === false)
    return { run, stats: () => null, close: async () => {} };
  const batch = createBatchRunner();
  return { run: (req) => batch.run(req), stats: () => batch.stats(), close: () => batch.close() };
}
