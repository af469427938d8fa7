/**
 * The queue's address and the rule that guards it: Redis on loopback needs nothing more,
 * but a Redis reached over the network must need a password, because whoever can write to
 * it can hand jobs to every worker and read every run's inputs and scores.
 */
import { isIP } from "node:net";
import type { RedisOptions } from "ioredis";

/** A checked queue URL: where Redis is and how to log in. */
export interface QueueUrl {
  host: string;
  port: number;
  /** Redis database number (the URL's path, default 0). */
  db: number;
  username?: string;
  password?: string;
  /** rediss://: TLS to Redis. */
  tls: boolean;
  /** The URL with the password hidden, for messages and status. */
  display: string;
}

/** localhost, 127.0.0.0/8 and ::1. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  if (h === "localhost" || h === "::1") return true;
  return isIP(h) === 4 && h.startsWith("127.");
}

/**
 * Parses and checks a queue URL (redis://[user:pass@]host[:port][/db], or rediss:// for TLS).
 * Throws an Error that says what to do for a malformed URL and for a host off loopback
 * without a password.
 */
export function parseQueueUrl(text: string): QueueUrl {
  const example = "redis://127.0.0.1:6379, or redis://:PASSWORD@HOST:6379 for another machine";
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new Error(`the queue URL "${text}" is not a URL; give one like ${example}`);
  }
  if (u.protocol !== "redis:" && u.protocol !== "rediss:") {
    throw new Error(
      `the queue URL must start with redis:// (or rediss:// for TLS); got "${u.protocol}//"; give one like ${example}`,
    );
  }
  if (!u.hostname)
    throw new Error(`the queue URL "${text}" names no host; give one like ${example}`);
  const port = u.port ? Number(u.port) : 6379;
  const path = u.pathname.replace(/^\//, "");
  if (path !== "" && !/^\d+$/.test(path)) {
    throw new Error(
      `the queue URL's path must be a Redis database number (e.g. /0); got "/${path}"`,
    );
  }
  const host = u.hostname.replace(/^\[|\]$/g, "");
  const password = u.password ? decodeURIComponent(u.password) : undefined;
  const username = u.username ? decodeURIComponent(u.username) : undefined;
  if (!isLoopback(host) && !password) {
    throw new Error(
      `the queue at ${u.protocol}//${u.host} is not on this machine and the URL has no password: ` +
        "anyone who can reach that Redis could give jobs to the workers and read the runs' inputs. " +
        "Set a password in Redis (requirepass, or an ACL user) and put it in the URL, " +
        `${u.protocol}//:PASSWORD@${u.host} or ${u.protocol}//USER:PASSWORD@${u.host} ` +
        `(rediss:// for TLS); or reach it through a tunnel on 127.0.0.1`,
    );
  }
  const shown = new URL(u.href);
  if (shown.password) shown.password = "***";
  return {
    host,
    port,
    db: path === "" ? 0 : Number(path),
    username,
    password,
    tls: u.protocol === "rediss:",
    display: shown.href.replace(/\/$/, ""),
  };
}

/** ioredis options, in the shape BullMQ's connection option takes too. */
export type QueueRedisOptions = Omit<RedisOptions, "retryStrategy"> & {
  retryStrategy: (times: number) => number | null;
};

/**
 * ioredis options for a queue URL. Commands wait through a Redis restart instead of failing
 * (maxRetriesPerRequest: null, which BullMQ's workers require anyway).
 */
export function redisOptions(q: QueueUrl): QueueRedisOptions {
  return {
    host: q.host,
    port: q.port,
    db: q.db,
    username: q.username,
    password: q.password,
    tls: q.tls ? { servername: isIP(q.host) ? undefined : q.host } : undefined,
    maxRetriesPerRequest: null,
    // Reconnect quickly at first, then every 2 s at most.
    retryStrategy: (times) => Math.min(100 * times, 2000),
  };
}
