import { constants } from "node:os";
import type { ResolvedOptions } from "./validate.ts";

const SIGNAL_NAMES = new Map<number, string>(
  Object.entries(constants.signals).map(([name, n]) => [n, name]),
);

export function signalName(n: number): string | null {
  return SIGNAL_NAMES.get(n) ?? null;
}

/** What a failed program's stderr usually means when a limit was hit. */
const HINTS: [RegExp, (o: ResolvedOptions) => string][] = [
  [
    /MemoryError|Cannot allocate memory|std::bad_alloc|out of memory/i,
    (o) => `memory limit of ${o.memoryBytes} bytes`,
  ],
  [
    /No space left on device/i,
    (o) => `work dir or /tmp full (${o.workdirBytes} / ${o.tmpBytes} bytes)`,
  ],
  [/File too large/i, (o) => `file size limit of ${o.maxFileBytes} bytes`],
  [
    /Resource temporarily unavailable|fork: retry|BlockingIOError/i,
    (o) => `process limit of ${o.maxProcesses}`,
  ],
  [
    /Network is unreachable|Temporary failure in name resolution|Could not resolve host/i,
    () => "no network in the sandbox",
  ],
  [/Read-only file system/i, () => "writes go only to /work and /tmp"],
  [/Operation not permitted|Permission denied/i, () => "not permitted in the sandbox"],
];

export function exitReason(code: number, stderr: string, o: ResolvedOptions): string | undefined {
  if (code === 0) return undefined;
  if (code === 127 && /No such file or directory|not found/.test(stderr))
    return "exit 127 (command not found)";
  for (const [re, hint] of HINTS) if (re.test(stderr)) return `exit ${code} (${hint(o)})`;
  return `exit ${code}`;
}

/**
 * The result fields of a program that the supervisor killed for the wall clock or the output
 * cap, or null when it ended on its own.
 */
export function supervisorKill(
  outcome: { timedOut: boolean; outputKilled: boolean },
  o: ResolvedOptions,
): { exitCode: null; signal: string; reason: string } | null {
  if (outcome.timedOut)
    return { exitCode: null, signal: "SIGKILL", reason: `timed out after ${o.timeoutMs} ms` };
  if (outcome.outputKilled)
    return {
      exitCode: null,
      signal: "SIGKILL",
      reason: `killed: output limit of ${o.maxOutputBytes} bytes exceeded`,
    };
  return null;
}

export function signalReason(signal: string, o: ResolvedOptions, stderr = ""): string {
  const memory = HINTS[0];
  if (signal !== "SIGXCPU" && signal !== "SIGXFSZ" && memory[0].test(stderr))
    return `killed: ${signal} (${memory[1](o)})`;
  switch (signal) {
    case "SIGXCPU":
      return `killed: cpu time limit (${o.cpuSeconds} s)`;
    case "SIGXFSZ":
      return `killed: file size limit (${o.maxFileBytes} bytes)`;
    case "SIGKILL":
      return "killed: SIGKILL (cpu hard limit or out of memory)";
    case "SIGSEGV":
      return "killed: SIGSEGV (a crash, or the memory limit)";
    default:
      return `killed: ${signal}`;
  }
}
