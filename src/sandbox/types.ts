/** Options and results shared by the sandboxed and the opt-in unsandboxed runners. */

export type SandboxTool = "unshare" | "bwrap";

/** root: a uid of its own per sandbox; rootless: a user namespace of an ordinary user. */
export type SandboxMode = "root" | "rootless";

/**
 * One program to run in a fresh sandbox: its argv, input files, stdin and limits. Limits
 * must be positive integers (times in ms or s, sizes in bytes as named); `runSandboxed`
 * throws an Error for a bad option (before starting anything).
 */
export interface SandboxOptions {
  /** argv inside the sandbox; argv[0] is looked up on the sandbox's PATH. */
  command: string[];
  /** Files written into the private work dir before start; keys are relative paths. */
  files?: Record<string, string | Uint8Array>;
  /** Written to the program's stdin, then closed. Without it stdin is /dev/null. */
  stdin?: string | Uint8Array;
  /** Wall-clock limit in ms, sandbox start-up included (default 5000). */
  timeoutMs?: number;
  /** CPU time per process in seconds (default 5): SIGXCPU at the limit, SIGKILL a second later. */
  cpuSeconds?: number;
  /** Address-space limit per process in bytes (default 512 MiB). */
  memoryBytes?: number;
  /** Processes and threads the sandbox may hold at once (default 64). */
  maxProcesses?: number;
  /** Largest file a process may write, in bytes (default 16 MiB). */
  maxFileBytes?: number;
  /** Total size of the writable work dir /work, in bytes (default 32 MiB). */
  workdirBytes?: number;
  /** Total size of the private /tmp (and /dev/shm), in bytes (default 8 MiB). */
  tmpBytes?: number;
  /** Bytes kept of stdout and of stderr each, and of each collected file (default 64 KiB). */
  maxOutputBytes?: number;
  /** The sandbox never has a network; only `false` is accepted. */
  network?: false;
  /** Added to the sandbox environment, which otherwise holds only PATH, HOME=/work, LANG. */
  env?: Record<string, string>;
  /** Work-dir paths (files or directories) read back after the program ends. */
  collect?: string[];
  /**
   * Extra host paths bound read-only at the same path, for interpreters installed outside
   * /usr (a pyenv or conda prefix, say). Put their bin dir on PATH through `env`.
   */
  readOnlyPaths?: string[];
}

/**
 * How a sandboxed program ended. A failing, killed or timed-out program is reported here,
 * never thrown.
 */
export interface SandboxResult {
  /** Exit status, or null when the program was killed by a signal. */
  exitCode: number | null;
  /** Name of the signal that ended the program ("SIGKILL"), or null. */
  signal: string | null;
  /** Output as UTF-8, each cut at maxOutputBytes. */
  stdout: string;
  stderr: string;
  /** The wall clock (timeoutMs) ran out and the sandbox was killed. */
  timedOut: boolean;
  /** True when stdout, stderr or a collected file went past maxOutputBytes. */
  outputTruncated: boolean;
  /** Wall-clock milliseconds, sandbox start-up included. */
  durationMs: number;
  /**
   * What went wrong, in words ("timed out after 5000 ms", "exit 1 (memory limit ...)");
   * absent when the program exited 0 and left nothing running.
   */
  reason?: string;
  /** Processes the program left running when it exited; all were killed. */
  leftover: number;
  /** Collected regular files (UTF-8), keyed by their path relative to the work dir. */
  files?: Record<string, string>;
  /** Which runner ran it. */
  tool: SandboxTool | "none";
  /** How the sandbox got its privileges; "none" for the unsandboxed runner. */
  mode: SandboxMode | "none";
  /**
   * The host uid the program ran as: the slot's own in root mode, the user's in rootless
   * mode (-1 for the unsandboxed runner as the current user).
   */
  uid: number;
}

export const DEFAULTS = {
  timeoutMs: 5000,
  cpuSeconds: 5,
  memoryBytes: 512 * 1024 * 1024,
  maxProcesses: 64,
  maxFileBytes: 16 * 1024 * 1024,
  workdirBytes: 32 * 1024 * 1024,
  tmpBytes: 8 * 1024 * 1024,
  maxOutputBytes: 64 * 1024,
  maxOpenFiles: 256,
  path: "/usr/local/bin:/usr/bin:/bin",
  lang: "C.UTF-8",
} as const;

/** Thrown when the sandbox itself cannot be set up: never a verdict on the program. */
export class SandboxError extends Error {
  override name = "SandboxError";
}
