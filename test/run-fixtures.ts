/**
 * Fixtures of the run tests: a tiny random base with three experts (the base plus small
 * noise), a config for them, and a dump of a run's store without timings, for equality.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { stringify } from "yaml";
import { RunStore } from "../src/run/store.ts";
import { openGguf } from "../src/tensors/gguf.ts";
import { Rng } from "../src/util/rng.ts";
import { writeNoisyCopy, writeTinyLlamaGguf } from "./helpers/tiny-gguf.ts";

export const SKILLS = ["code", "os", "db"];

/** base.gguf and code/os/db.gguf in `dir`. */
export async function writeTinyZoo(dir: string): Promise<void> {
  await writeTinyLlamaGguf(join(dir, "base.gguf"), { seed: 3, contextLength: 256 });
  const base = await openGguf(join(dir, "base.gguf"));
  try {
    for (const [k, skill] of SKILLS.entries()) {
      await writeNoisyCopy(base, join(dir, `${skill}.gguf`), new Rng(100 + k));
    }
  } finally {
    await base.close();
  }
}

/** A small, fast config for the tiny zoo in `dir` (paths relative to it). */
export function tinyConfig(
  dir: string,
  over: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    models: {
      base: "base.gguf",
      experts: { code: "code.gguf", os: "os.gguf", db: "db.gguf" },
    },
    split: { opt: 4, test: 2 },
    generations: 6,
    workers: 1,
    seed: 7,
    cacheDir: join(dir, "cache"),
    // One sequence at a time: parallel ones share llama.cpp's KV cache and vary in the last bits.
    engine: { threads: 1, parallel: 1 },
    mutation: { rank: 8 },
    ...over,
  };
}

export async function writeConfig(path: string, config: Record<string, unknown>): Promise<void> {
  await writeFile(path, stringify(config));
}

/** Everything a run decided and measured, minus timings, clocks and worker slots. */
export async function dumpRun(dir: string) {
  const store = await RunStore.open(dir, { readonly: true });
  try {
    const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
    return {
      status: store.status,
      ranges: store.ranges(),
      seeds: store.seeds().map((s) => ({ ...s, genome: hex(s.genome), timings: 0, finishedAt: 0 })),
      children: store.children().map((c) => ({
        ...c,
        genome: hex(c.genome),
        mutationR: c.mutationR ? Array.from(c.mutationR) : null,
        timings: 0,
        finishedAt: 0,
        worker: 0,
      })),
      elites: store.elites(),
      finals: store
        .finals()
        .map((f) => ({ ...f, genome: hex(f.genome), model: f.model !== null, finishedAt: 0 })),
    };
  } finally {
    store.close();
  }
}
