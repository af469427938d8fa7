/**
 * A real redis-server for the queue tests, on a free loopback port with its own data folder.
 * With `appendonly` every write is fsynced to the append-only file, so a restart keeps the
 * queue; `restart` stops the server gracefully and starts it again on the same port.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";

export interface TestRedis {
  port: number;
  url: string;
  dir: string;
  /** A plain client (closed by `stop`). */
  client: Redis;
  restart(): Promise<void>;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

function launch(port: number, dir: string, appendonly: boolean): Promise<ChildProcess> {
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--dir", dir];
  args.push("--appendonly", appendonly ? "yes" : "no");
  if (appendonly) args.push("--appendfsync", "always");
  const proc = spawn("redis-server", args, { stdio: ["ignore", "pipe", "pipe"] });
  return new Promise((resolve, reject) => {
    let out = "";
    const onData = (b: Buffer) => {
      out += b.toString();
      if (out.includes("Ready to accept connections")) {
        proc.stdout?.off("data", onData);
        proc.stdout?.resume();
        resolve(proc);
      }
    };
    proc.stdout?.on("data", onData);
    proc.stderr?.on("data", (b: Buffer) => {
      out += b.toString();
    });
    proc.on("error", (e) =>
      reject(
        new Error(
          `cannot start redis-server (${e.message}); install it: apt-get install redis-server`,
        ),
      ),
    );
    proc.on("exit", (code) => reject(new Error(`redis-server exited (${code}):\n${out}`)));
  });
}

function exited(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((r) => proc.once("exit", () => r()));
}

/** Starts redis-server; stop it with `stop()`. */
export async function startRedis(opts: { appendonly?: boolean } = {}): Promise<TestRedis> {
  const appendonly = opts.appendonly ?? false;
  const dir = await mkdtemp(join(tmpdir(), "cycleqd-redis-"));
  const port = await freePort();
  let proc = await launch(port, dir, appendonly);
  const client = new Redis({ host: "127.0.0.1", port, maxRetriesPerRequest: null });
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    client,
    async restart() {
      proc.kill("SIGTERM"); // a graceful shutdown writes everything out first
      await exited(proc);
      proc = await launch(port, dir, appendonly);
    },
    async stop() {
      client.disconnect();
      proc.kill("SIGTERM");
      await exited(proc);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
