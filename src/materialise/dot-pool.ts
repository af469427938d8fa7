/**
 * Worker threads that run the low-rank dot kernel, so that materialisation builds several
 * tensors at once on a machine whose cores are otherwise idle while a child is being made.
 * The workers run `dotKernel` from its own source text, so they need no loader, and every
 * result is the kernel's exact output.
 */
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { dotKernel } from "./lowrank.ts";

export interface DotPool {
  /** out + coef·vxᵀ, as dotKernel computes it; `out` is not changed. */
  dot(
    out: Float64Array,
    coef: Float64Array,
    vx: Float64Array,
    rows: number,
    cols: number,
    n: number,
  ): Promise<Float64Array>;
  dispose(): Promise<void>;
}

const WORKER = `
const { parentPort } = require("node:worker_threads");
const dotKernel = ${dotKernel.toString()};
parentPort.on("message", ({ id, out, coef, vx, rows, cols, n }) => {
  dotKernel(out, coef, vx, rows, cols, n);
  parentPort.postMessage({ id, out }, [out.buffer]);
});
`;

export function createDotPool(size = availableParallelism()): DotPool {
  if (!(Number.isInteger(size) && size >= 1))
    throw new Error(`dot pool: size must be a positive integer, got ${size}`);
  const workers = Array.from({ length: size }, () => new Worker(WORKER, { eval: true }));
  const busy = new Array<number>(size).fill(0);
  const pending = new Map<
    number,
    { resolve: (a: Float64Array) => void; reject: (e: Error) => void }
  >();
  let next = 0;
  workers.forEach((w, k) => {
    w.unref();
    w.on("message", ({ id, out }: { id: number; out: Float64Array }) => {
      busy[k]--;
      pending.get(id)?.resolve(out);
      pending.delete(id);
    });
    w.on("error", (e) => {
      for (const p of pending.values()) p.reject(e);
      pending.clear();
    });
  });
  return {
    dot(out, coef, vx, rows, cols, n) {
      // The least busy worker; copies of out go over, coef and vx are handed over.
      const k = busy.indexOf(Math.min(...busy));
      busy[k]++;
      const id = next++;
      const copy = Float64Array.from(out);
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        workers[k].postMessage({ id, out: copy, coef, vx, rows, cols, n }, [
          copy.buffer as ArrayBuffer,
          coef.buffer as ArrayBuffer,
          vx.buffer as ArrayBuffer,
        ]);
      });
    },
    async dispose() {
      await Promise.all(workers.map((w) => w.terminate()));
    },
  };
}
