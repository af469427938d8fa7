/**
 * The live view: a small read-only HTTP server for one run. `/` is the report page in live
 * mode, `/data.json` the report's data as of now, and `/events` a server-sent-events stream
 * with one `update` message whenever the run store changes (a child committed, the status
 * or the final models). It only reads the store, so it is safe beside a running search, and
 * it binds to 127.0.0.1 unless told otherwise.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { RunStore } from "../run/store.ts";
import { reportData } from "./data.ts";
import { reportHtml } from "./page.ts";

export interface ServeOptions {
  /** TCP port (default 0: any free port; the URL says which). */
  port?: number;
  /** Address to bind (default 127.0.0.1: this machine only). */
  host?: string;
  /** Milliseconds between looks at the store for changes (default 500). */
  pollMs?: number;
}

export interface ReportServer {
  /** Where the live view is, e.g. http://127.0.0.1:8470/. */
  url: string;
  close(): Promise<void>;
}

/**
 * Serves the live view of the run in `dir`. Throws when `dir` holds no run store or the
 * port cannot be bound (in use, or a privileged port).
 */
export async function serveReport(dir: string, opts: ServeOptions = {}): Promise<ReportServer> {
  const store = await RunStore.open(dir, { readonly: true });
  const host = opts.host ?? "127.0.0.1";
  const streams = new Set<ServerResponse>();
  // What a change looks like from outside: children committed, status, final models.
  const version = () => `${store.childCount()}/${store.status}/${store.finals().length}`;
  let seen = version();
  const poll = setInterval(() => {
    let now: string;
    try {
      now = version();
    } catch {
      return; // the writer holds the database for a moment; look again next time
    }
    if (now === seen) return;
    seen = now;
    for (const res of streams) res.write(`event: update\ndata: ${JSON.stringify(now)}\n\n`);
  }, opts.pollMs ?? 500);

  const server = createServer((req, res) => {
    handle(req, res).catch((e) => {
      if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain; charset=utf-8" });
      res.end(`error: ${(e as Error).message}\n`);
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain; charset=utf-8" });
      res.end("read-only: GET only\n");
      return;
    }
    const path = new URL(req.url ?? "/", "http://x").pathname;
    const common = { "cache-control": "no-store", "x-content-type-options": "nosniff" };
    if (path === "/" || path === "/index.html") {
      const html = await reportHtml(reportData(store), { live: true });
      res.writeHead(200, { ...common, "content-type": "text/html; charset=utf-8" });
      res.end(html);
    } else if (path === "/data.json") {
      res.writeHead(200, { ...common, "content-type": "application/json" });
      res.end(JSON.stringify(reportData(store)));
    } else if (path === "/events") {
      res.writeHead(200, {
        ...common,
        "content-type": "text/event-stream",
        connection: "keep-alive",
      });
      res.write(`event: update\ndata: ${JSON.stringify(seen)}\n\n`);
      streams.add(res);
      req.on("close", () => streams.delete(res));
    } else {
      res.writeHead(404, { ...common, "content-type": "text/plain; charset=utf-8" });
      res.end("not found\n");
    }
  }

  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(opts.port ?? 0, host, () => resolve());
    });
  } catch (e) {
    clearInterval(poll);
    store.close();
    const err = e as NodeJS.ErrnoException;
    throw new Error(
      err.code === "EADDRINUSE"
        ? `port ${opts.port} on ${host} is in use; choose another with --port`
        : `cannot listen on ${host}:${opts.port ?? 0} (${err.code ?? err.message})`,
    );
  }
  const { port } = server.address() as AddressInfo;
  const shown = host.includes(":") ? `[${host}]` : host;
  return {
    url: `http://${shown}:${port}/`,
    async close() {
      clearInterval(poll);
      for (const res of streams) res.end();
      streams.clear();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      store.close();
    },
  };
}
