import { join } from "node:path";
import { parseQueueUrl } from "../../queue/url.ts";
import {
  finishReport,
  type OutputMode,
  reporter,
  withInterrupts,
  withLiveView,
} from "../../run/cli-support.ts";
import { loadConfig } from "../../run/config.ts";
import { run as runSearch } from "../../run/runner.ts";
import { type Command, type ParsedArgs, UsageError } from "../command.ts";
import { parsePort } from "./report.ts";

export function outputMode(args: ParsedArgs): OutputMode {
  if (args.values.json && args.values.quiet)
    throw new UsageError("choose one of --json and --quiet");
  return args.values.json ? "json" : args.values.quiet ? "quiet" : "human";
}

/** runs/2026-11-25T17-30-05: sortable and free of characters shells dislike. */
export function defaultRunDir(date = new Date()): string {
  return join("runs", date.toISOString().slice(0, 19).replace(/:/g, "-"));
}

export const run: Command = {
  name: "run",
  summary: "Run a CycleQD search from a config file (YAML or JSON).",
  usage: "CONFIG [--out RUN] [--queue redis://HOST:PORT] [--serve [--port N]] [--quiet | --json]",
  help: `
Checks the config and the models first (one expert per skill, same tensors and shapes,
same tokenizer), then evaluates the seed experts and runs the search, one line per child:
its active task, scores, what it did in each archive (new cell, improved, -), the archives'
coverage and QD scores, and the time left. Everything is recorded in RUN/run.db as it
finishes; an interrupted run continues with \`cycleqd resume RUN\`. At the end it writes
RUN/report.html (\`cycleqd report\`). Write a starter config with \`cycleqd init\`.

Options:
  --out RUN   the run directory (default runs/<date and time>)
  --queue URL evaluate on \`cycleqd worker\` processes through the BullMQ queue on this
              Redis (as \`queue:\` in the config; kept with the run for resume). Off
              loopback the URL needs a password: redis://:PASSWORD@HOST:6379
  --serve     serve the live view of the run on 127.0.0.1 while it runs (\`cycleqd serve\`)
  --port N    its port (default 8470; 0 picks a free one)
  --quiet     print only the last line
  --json      one JSON object per event and line, for programs`,
  options: {
    out: { type: "string" },
    queue: { type: "string" },
    serve: { type: "boolean" },
    port: { type: "string" },
    quiet: { type: "boolean" },
    json: { type: "boolean" },
  },
  async run(args) {
    if (args.positionals.length !== 1) throw new UsageError("expects exactly one CONFIG file");
    const mode = outputMode(args);
    const config = await loadConfig(args.positionals[0]);
    if (args.values.queue !== undefined) {
      try {
        parseQueueUrl(args.values.queue as string);
      } catch (e) {
        throw new UsageError(`--queue: ${(e as Error).message}`);
      }
      config.queue = args.values.queue as string;
    }
    const out = (args.values.out as string | undefined) ?? defaultRunDir();
    if (args.values.port !== undefined && !args.values.serve)
      throw new UsageError("--port goes with --serve");
    const port = args.values.serve ? parsePort(args.values.port as string | undefined) : null;
    const code = await withLiveView(port, reporter(mode), (onEvent) =>
      withInterrupts((signal) => runSearch(config, { out, onEvent, signal })),
    );
    await finishReport(out, mode);
    return code;
  },
};
