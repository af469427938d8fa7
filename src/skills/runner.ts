/**
 * Chooses where answers run: the sandbox, or (only when the user opted in) directly on the
 * host. Without a working sandbox and without the opt-in, evaluation refuses to start.
 */
import { checkSandbox, runSandboxed, runUnsandboxed, type SandboxCheck } from "../sandbox/index.ts";
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
