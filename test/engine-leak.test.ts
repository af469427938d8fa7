import assert from "node:assert/strict";
import { copyFile, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { createLlamaCppEngine } from "../src/engine/llama-cpp.ts";
import { writeTinyLlamaGguf } from "./helpers/tiny-gguf.ts";

const MODELS = 200;
const WARM_UP = 40;

async function openFds(): Promise<number> {
  return (await readdir("/proc/self/fd")).length;
}

/** Memory mappings of files under `dir`: llama.cpp maps each live model's file. */
async function mappingsUnder(dir: string): Promise<number> {
  const maps = await readFile("/proc/self/maps", "utf8");
  return maps.split("\n").filter((line) => line.includes(dir)).length;
}

test(`loading, using and disposing ${MODELS} different model files leaks neither memory nor file handles`, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "cycleqd-engine-leak-"));
  const engine = await createLlamaCppEngine({ gpu: false, threads: 1, parallel: 4 });
  try {
    // ~0.5 MB per file, so that keeping the weights of every model would show as > 50 MiB.
    // Copies of one file are still different files to llama.cpp (each is opened and mapped).
    const first = join(dir, "m0.gguf");
    await writeTinyLlamaGguf(first, { seed: 100, nEmbd: 64, nLayer: 2, nFf: 128 });
    const paths = [first];
    for (let i = 1; i < MODELS; i++) {
      paths.push(join(dir, `m${i}.gguf`));
      await copyFile(first, paths[i]);
    }
    let baseRss = 0;
    let baseFds = 0;
    for (const [i, path] of paths.entries()) {
      if (i === WARM_UP) {
        baseRss = process.memoryUsage().rss;
        baseFds = await openFds();
      }
      const model = await engine.loadModel(path);
      if (i === 0) assert.ok((await mappingsUnder(dir)) > 0, "a loaded model maps its file");
      const out = await model.generate(
        Array.from({ length: 4 }, (_, j) => ({ prompt: `p${j}`, maxTokens: 4 })),
      );
      assert.equal(out.length, 4);
      const [s] = await model.score([{ prompt: "a", continuation: "bc" }]);
      assert.ok(s.sum <= 0);
      await model.dispose();
    }
    const growth = (process.memoryUsage().rss - baseRss) / 2 ** 20;
    t.diagnostic(`RSS growth after warm-up: ${growth.toFixed(1)} MiB`);
    assert.ok(growth < 50, `RSS grew by ${growth.toFixed(1)} MiB over ${MODELS - WARM_UP} models`);
    assert.equal(await openFds(), baseFds, "open file descriptors after the last dispose");
    assert.equal(await mappingsUnder(dir), 0, "model files still mapped after dispose");
  } finally {
    await engine.dispose();
    await rm(dir, { recursive: true, force: true });
  }
});
