/**
 * What `cycleqd run` and `cycleqd resume` share: event output (human lines, --quiet,
 * --json lines) and Ctrl-C handling (the first stops after the evaluations in flight, the
 * second at once; either way the run can be resumed).
 */
import { formatEvent } from "./format.ts";
import type { RunEvent, RunResult } from "./runner.ts";

export type OutputMode = "human" | "quiet" | "json";

/** NaN (a missing likelihood) is written as null in JSON lines. */
function jsonLine(e: RunEvent): string {
  return JSON.stringify(e, (_, v) => (typeof v === "number" && Number.isNaN(v) ? null : v));
}

export function reporter(mode: OutputMode, out: (line: string) => void = console.log) {
  return (e: RunEvent) => {
    if (mode === "json") return out(jsonLine(e));
    if (mode === "quiet" && e.type !== "done") return;
    const line = formatEvent(e);
    if (line !== null) out(line);
  };
}

/** Runs `fn` with an AbortSignal tied to SIGINT/SIGTERM; returns the exit code. */
export async function withInterrupts(
  fn: (signal: AbortSignal) => Promise<RunResult>,
): Promise<number> {
  const ac = new AbortController();
  const onSignal = () => {
    if (ac.signal.aborted) process.exit(130);
    ac.abort();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    const r = await fn(ac.signal);
    return r.status === "finished" ? 0 : 130;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}
