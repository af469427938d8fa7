import { formatStatus } from "../../run/format.ts";
import { runStatus } from "../../run/status.ts";
import { type Command, UsageError } from "../command.ts";

export const status: Command = {
  name: "status",
  summary: "Show a run's progress, archives, best elites and timings.",
  usage: "RUN [--json]",
  help: `
Reads RUN/run.db (safe while the run is in progress) and prints the generation reached,
each archive's filled cells, coverage, QD score and best elite, the best elite on average,
the mean time per child by step, the final models, and whether a live process holds the run.

Options:
  --json   the same as one JSON object`,
  options: { json: { type: "boolean" } },
  async run(args) {
    if (args.positionals.length !== 1) throw new UsageError("expects exactly one RUN directory");
    const report = await runStatus(args.positionals[0]);
    if (args.values.json) {
      console.log(
        JSON.stringify(report, (_, v) => (typeof v === "number" && Number.isNaN(v) ? null : v), 2),
      );
    } else console.log(formatStatus(report));
    return 0;
  },
};
