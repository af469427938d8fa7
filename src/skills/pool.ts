import { availableParallelism } from "node:os";

/**
 * Default grading parallelism: one per core. Sandbox and interpreter start-up are CPU work,
 * and graders run beside decoding, which more graders would only slow down.
 */
export function defaultConcurrency(): number {
  return availableParallelism();
}

/**
 * A gate that lets at most `limit` of the functions handed to it run at once, in the order
 * they were handed over.
 */
export function limiter(limit: number): <R>(fn: () => Promise<R>) => Promise<R> {
  if (!(Number.isInteger(limit) && limit >= 1)) {
    throw new Error(`concurrency must be a positive integer, got ${limit}`);
  }
  let running = 0;
  const waiting: (() => void)[] = [];
  return async (fn) => {
    if (running >= limit) await new Promise<void>((go) => waiting.push(go));
    running++;
    try {
      return await fn();
    } finally {
      running--;
      waiting.shift()?.();
    }
  };
}

/** Maps `fn` over `items` with at most `limit` calls in flight; results keep input order. */
export function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const gate = limiter(limit);
  return Promise.all(items.map((item, i) => gate(() => fn(item, i))));
}
