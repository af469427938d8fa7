/**
 * The engine's two decode loops side by side: node-llama-cpp's per-sequence `evaluate`
 * generators (the earlier path) and the batch loop (greedy-batch.ts, the default), on the
 * zoo's code expert and all 144 opt prompts. Prints both times, the ratio, and whether every
 * output equals the one-sequence-at-a-time output (the ground truth: no batching at all).
 *
 *   node --import tsx bench/engine-loop.ts [SEQUENCES]
 */
import { createLlamaCppEngine } from "../src/engine/llama-cpp.ts";
import type { GenerateRequest } from "../src/engine/types.ts";
import { zooPath } from "../src/run/config.ts";
import { createMiniSkills } from "../src/skills/index.ts";

const P = Number(process.argv[2] ?? 8);
if (!(Number.isInteger(P) && P >= 1))
  throw new Error("usage: bench/engine-loop.ts [SEQUENCES ≥ 1]");
const path = zooPath("code.gguf");
const skills = createMiniSkills({ seed: 1, sizes: { opt: 48 } });
const reqs: GenerateRequest[] = skills.flatMap((s) =>
  s.problems("opt").map((p) => ({ prompt: s.format(p), maxTokens: s.maxTokens, stop: s.stop })),
);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Outputs and the median of 3 timed runs (after a warm-up) of one decode loop. */
async function measure(decodeLoop: "batch" | "evaluate", parallel: number) {
  const engine = await createLlamaCppEngine({ gpu: false, threads: 1, decodeLoop });
  try {
    const m = await engine.loadModel(path, { parallel });
    await m.generate(reqs.slice(0, 16));
    const ms: number[] = [];
    let texts: string[] = [];
    for (let i = 0; i < 3; i++) {
      const t = performance.now();
      texts = (await m.generate(reqs)).map((r) => r.text);
      ms.push(performance.now() - t);
    }
    return { texts, ms: median(ms) };
  } finally {
    await engine.dispose();
  }
}

const truth = (await measure("evaluate", 1)).texts;
const old = await measure("evaluate", P);
const now = await measure("batch", P);
const same = (a: string[]) => a.filter((x, i) => x === truth[i]).length;
console.log(
  `${reqs.length} prompts (the zoo's code expert on opt), ${P} sequences, 1 thread; median of 3`,
);
console.log(`evaluate loop (node-llama-cpp)   ${old.ms.toFixed(0).padStart(6)} ms`);
console.log(`batch loop (default)             ${now.ms.toFixed(0).padStart(6)} ms`);
console.log(`evaluate / batch                 ${(old.ms / now.ms).toFixed(2)}×`);
console.log(
  `outputs equal to one sequence at a time: evaluate ${same(old.texts)}/${reqs.length}, batch ${same(now.texts)}/${reqs.length}`,
);
