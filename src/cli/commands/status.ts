import { type QueueStatus, queueStatus } from "../../queue/status.ts";
import { parseQueueUrl } from "../../queue/url.ts";
import { formatStatus } from "../../run/format.ts";
import { runStatus } from "../../run/status.ts";
import { type Command, table, UsageError } from "../command.ts";

export const status: Command = {
  name: "status",
  summary: "Show a run's progress, archives, best elites and timings.",
  usage: "RUN [--json]",
  help: `
Reads RUN/run.db (safe while the run is in progress) and prints the generation reached,
each archive's filled cells, coverage, QD score and best elite, the best elite on average,
the mean time per child by step, the final models, and whether a live process holds the run.
For a queue run (\`--queue\`) it also shows the workers connected to its Redis, the run's
jobs waiting and in flight, and each worker's throughput on the run.

Options:
  --json   the same as one JSON object`,
  options: { json: { type: "boolean" } },
  async run(args) {
    if (args.positionals.length !== 1) throw new UsageError("expects exactly one RUN directory");
    const report = await runStatus(args.positionals[0]);
    const url = report.queue ? parseQueueUrl(report.queue.url) : null;
    const queue = url && report.queue?.runId ? await queueStatus(url, report.queue.runId) : null;
    if (args.values.json) {
      const out = {
        ...report,
        queue: url ? { ...report.queue, url: url.display, ...queue } : null,
      };
      console.log(
        JSON.stringify(out, (_, v) => (typeof v === "number" && Number.isNaN(v) ? null : v), 2),
      );
    } else {
      console.log(formatStatus(report));
      if (url) console.log(formatQueue(url.display, queue));
    }
    return 0;
  },
};

/** The queue section of a status: workers, jobs in flight, throughput per worker. */
function formatQueue(url: string, q: QueueStatus | null): string {
  if (!q) return `\nQueue ${url}: no job dispatched yet`;
  if (q.error) return `\nQueue ${url}: cannot be read (${q.error})`;
  const lines = [
    "",
    `Queue ${url}: ${q.waiting} job(s) waiting, ${q.active} in flight; ${q.workers.length} worker(s) connected`,
  ];
  if (q.workers.length) {
    const f = (x: number | null, d: number) => (x === null ? "-" : x.toFixed(d));
    lines.push(
      table(
        ["worker", "slots", "busy", "done", "children/min", "s/child"],
        q.workers.map((w) => [
          w.id,
          w.concurrency,
          w.busy,
          w.done,
          f(w.perMinute, 1),
          f(w.meanEvalSeconds, 2),
        ]),
      ),
    );
  }
  return lines.join("\n");
}
