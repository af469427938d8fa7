import { resolve } from "node:path";
import { exportPngs, serveReport, writeReport } from "../../report/index.ts";
import { type Command, UsageError } from "../command.ts";

export const report: Command = {
  name: "report",
  summary: "Write a run's report: one self-contained HTML file (and PNG figures).",
  usage: "RUN [--out FILE] [--png DIR] [--browser PATH] [--no-timings]",
  help: `
Reads RUN/run.db (safe while the run is in progress) and writes one HTML file that needs
no network: the archives as heatmaps with a generation slider that replays how they
filled, best quality / coverage / QD score per archive over generations, the final table
(seeds, aggregate, best elite on opt and test), the lineage of the aggregate's elites back
to the seed experts, the time per child by step, and the run's config.

Options:
  --out FILE       where to write it (default RUN/report.html)
  --png DIR        also export the figures as PNG into DIR (needs Chromium: on Debian or
                   Ubuntu, apt-get install chromium)
  --browser PATH   the Chromium to use for --png (default: the system's)
  --no-timings     leave out the time per child, so the report depends only on the run's
                   seed and results (a resumed run's report then equals an uninterrupted one's)`,
  options: {
    out: { type: "string" },
    png: { type: "string" },
    browser: { type: "string" },
    "no-timings": { type: "boolean" },
  },
  async run(args) {
    if (args.positionals.length !== 1) throw new UsageError("expects exactly one RUN directory");
    const dir = args.positionals[0];
    const out = args.values.out as string | undefined;
    const { path, html } = await writeReport(dir, out, {
      timings: !args.values["no-timings"],
    });
    console.log(`report: ${resolve(path)} (${Math.round(html.length / 1024)} KB)`);
    if (args.values.png) {
      const files = await exportPngs(html, args.values.png as string, {
        browser: args.values.browser as string | undefined,
      });
      for (const f of files) console.log(`figure: ${f}`);
    }
    return 0;
  },
};

export const serve: Command = {
  name: "serve",
  summary: "Serve a run's report live while it runs (read-only, this machine only).",
  usage: "RUN [--port N] [--host ADDRESS]",
  help: `
Serves the report of RUN over HTTP and updates it in the browser as children finish, with no
reload. It only reads the run store, so it can run beside \`cycleqd run\` or \`resume\`.
Stop it with Ctrl-C.

Options:
  --port N          TCP port (default 8470; 0 picks a free one)
  --host ADDRESS    address to bind (default 127.0.0.1, this machine only; 0.0.0.0 shows
                    the run to your whole network)`,
  options: { port: { type: "string" }, host: { type: "string" } },
  async run(args) {
    if (args.positionals.length !== 1) throw new UsageError("expects exactly one RUN directory");
    const port = parsePort(args.values.port as string | undefined);
    const server = await serveReport(args.positionals[0], {
      port,
      host: args.values.host as string | undefined,
    });
    console.log(`live view of ${args.positionals[0]}: ${server.url}  (Ctrl-C stops it)`);
    await new Promise<void>((done) => {
      const stop = () => done();
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
    });
    await server.close();
    return 0;
  },
};

export const DEFAULT_PORT = 8470;

/** --port: an integer in 0..65535 (0: any free port). */
export function parsePort(value: string | undefined): number {
  if (value === undefined) return DEFAULT_PORT;
  const n = Number(value);
  if (!(Number.isInteger(n) && n >= 0 && n <= 65535)) {
    throw new UsageError(`--port must be an integer from 0 to 65535, got ${value}`);
  }
  return n;
}
