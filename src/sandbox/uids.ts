import { randomInt } from "node:crypto";

/**
 * Each running sandbox gets a uid of its own. RLIMIT_NPROC counts the processes of a real
 * uid across the whole host, so with a shared uid one sandbox's fork bomb would use up the
 * process budget of every other sandbox running beside it.
 *
 * A process takes a block of UID_BLOCK uids at random above UID_FLOOR, so that grader
 * processes on one host (or in sibling containers) almost never share a uid. The choice of
 * uid never changes what a program computes, so this randomness stays out of the seeded RNG.
 */
export const UID_BLOCK = 64;
const UID_FLOOR = 200_000;
const BLOCKS = 1 << 22;

export const uidBase = UID_FLOOR + randomInt(0, BLOCKS) * UID_BLOCK;

const free: number[] = Array.from({ length: UID_BLOCK }, (_, i) => i);
const waiting: ((slot: number) => void)[] = [];

/** Waits for a free slot when UID_BLOCK sandboxes are already running in this process. */
export function acquireSlot(): Promise<number> {
  const slot = free.pop();
  if (slot !== undefined) return Promise.resolve(slot);
  return new Promise((resolve) => waiting.push(resolve));
}

/** Only call once every process of the slot's uid is gone. */
export function releaseSlot(slot: number): void {
  const next = waiting.shift();
  if (next) next(slot);
  else free.push(slot);
}
