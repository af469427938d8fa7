import { finishReport, reporter, withInterrupts } from "../../run/cli-support.ts";
import { resume as resumeSearch } from "../../run/runner.ts";
import { type Command, UsageError } from "../command.ts";
import { outputMode } from "./run.ts";

export const resume: Command = {
  name: "resume",
  summary: "Continue an interrupted run where it stopped.",
  usage: "RUN [--quiet | --json]",
  help: `
Rebuilds the archives from the children recorded in RUN/run.db and evaluates the missing
ones; with one worker the result equals an uninterrupted run. A run that another live
process is working on is refused. The models must be the ones the run started with.
At the end it writes RUN/report.html again.

Options:
  --quiet     print only the last line
  --json      one JSON object per event and line, for programs`,
  options: { quiet: { type: "boolean" }, json: { type: "boolean" } },
  async run(args) {
    if (args.positionals.length !== 1) throw new UsageError("expects exactly one RUN directory");
    const mode = outputMode(args);
    const onEvent = reporter(mode);
    const dir = args.positionals[0];
    const code = await withInterrupts((signal) => resumeSearch(dir, { onEvent, signal }));
    await finishReport(dir, mode);
    return code;
  },
};
