/** A connection to the queue's Redis, with an error that says what to do when it fails. */
import { Redis } from "ioredis";
import { type QueueUrl, redisOptions } from "./url.ts";

/** Connects to Redis at `url`; throws naming the URL (password hidden) when it cannot. */
export async function connectRedis(url: QueueUrl): Promise<Redis> {
  const redis = new Redis({ ...redisOptions(url), lazyConnect: true });
  try {
    await redis.connect();
  } catch (e) {
    redis.disconnect();
    throw new Error(
      `cannot reach the queue at ${url.display} (${(e as Error).message}); start Redis there or fix the URL`,
    );
  }
  return redis;
}
