/**
 * What `cycleqd run` and `cycleqd resume` share: event output (human lines, --quiet,
 * --json lines), Ctrl-C handling (the first stops after the evaluations in flight, the
 * second at once; either way the run can be resumed), the live view beside the run, and the
 * report written at the end.
 */
import { type ReportServer, serveReport, writeReport } from "../report/index.ts";
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

/**
 * Runs `fn` with the live view of its run served from the moment the run store exists
 * (the "start" event) until the run ends; `port` null serves nothing.
 */
export async function withLiveView(
  port: number | null,
  onEvent: (e: RunEvent) => void,
  fn: (onEvent: (e: RunEvent) => void) => Promise<number>,
  out: (line: string) => void = console.log,
): Promise<number> {
  if (port === null) return fn(onEvent);
  let server: Promise<ReportServer | null> | undefined;
  const code = await fn((e) => {
    onEvent(e);
    if (e.type === "start" && !server) {
      server = serveReport(e.dir, { port }).then(
        (s) => {
          out(`live view: ${s.url}`);
          return s;
        },
        (err: Error) => {
          out(`warning: no live view (${err.message}); the run goes on`);
          return null;
        },
      );
    }
  });
  await (await server)?.close();
  return code;
}

/** Writes RUN/report.html after a run or resume and says where; a failure only warns. */
export async function finishReport(
  dir: string,
  mode: OutputMode,
  out: (line: string) => void = console.log,
): Promise<void> {
  try {
    const { path } = await writeReport(dir);
    if (mode === "json") out(JSON.stringify({ type: "report", path }));
    else if (mode === "human") out(`report: ${path}`);
  } catch (e) {
    out(`warning: the report could not be written (${(e as Error).message})`);
  }
}
