/**
 * Inference throughput of the llama.cpp engine on the default ~0.9M-parameter tiny config:
 * generated tokens/s with 1, 8 and 32 sequences side by side, the time to load a model and
 * create its context, and (where a C compiler and git are present) the same batched greedy
 * decoding written directly against the libllama that node-llama-cpp ships.
 *
 * node-llama-cpp runs each decode and each sequence's sampling as separate jobs on libuv's
 * thread pool; on a 2-core machine `UV_THREADPOOL_SIZE=1` (set before node starts) measured
 * ~35% more tokens/s with 8–32 sequences, so compare both settings there.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { createLlamaCppEngine } from "../src/engine/llama-cpp.ts";
import { parameterCount, TINY_CONFIG } from "../src/llm/config.ts";
import { exportGguf } from "../src/llm/export.ts";
import { initParams } from "../src/llm/model.ts";
import { EOS_ID } from "../src/llm/tokenizer.ts";
import { Rng } from "../src/util/rng.ts";

const run = promisify(execFile);
const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

export interface InferenceBenchOptions {
  /** Sequence counts to measure (default 1, 8, 32). */
  parallel?: number[];
  /** Tokens generated per sequence (default 128). */
  tokens?: number;
  threads?: number;
  /** Load/dispose repetitions (default 20). */
  loads?: number;
  log?: (line: string) => void;
}

export interface InferenceBenchResult {
  backend: string;
  threads: number;
  /** Generated tokens/s per sequence count; `native` is null where it could not be measured. */
  throughput: { parallel: number; tokensPerSecond: number; native: number | null }[];
  loadMs: number;
  disposeMs: number;
  nativeNote: string;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function benchInference(
  opts: InferenceBenchOptions = {},
): Promise<InferenceBenchResult> {
  const log = opts.log ?? console.log;
  const parallels = opts.parallel ?? [1, 8, 32];
  const tokens = opts.tokens ?? 128;
  const loads = opts.loads ?? 20;
  const config = TINY_CONFIG;
  const dir = await mkdtemp(join(tmpdir(), "cycleqd-bench-engine-"));
  const engine = await createLlamaCppEngine({ gpu: false, threads: opts.threads });
  try {
    // Random weights; EOS's output row is zero so its logit (0) never beats the others' maximum
    // and every sequence generates exactly `tokens` tokens.
    const params = initParams(config, new Rng(7), { std: 0.02 });
    (params.get("output.weight") as Float32Array).fill(
      0,
      EOS_ID * config.dim,
      (EOS_ID + 1) * config.dim,
    );
    const path = join(dir, "tiny.gguf");
    await exportGguf(path, config, params);
    const info = engine.info();
    const maxParallel = Math.max(...parallels);

    const model = await engine.loadModel(path, { parallel: maxParallel });
    const throughput: InferenceBenchResult["throughput"] = [];
    let promptTokens = 0;
    for (const parallel of parallels) {
      const requests = Array.from({ length: parallel }, (_, i) => ({
        prompt: `Prompt ${String(i).padStart(2, "0")}`,
        maxTokens: tokens,
      }));
      promptTokens = model.tokenize(requests[0].prompt).length + 1;
      await model.generate(requests.slice(0, Math.min(parallel, 2)));
      const rates: number[] = [];
      for (let rep = 0; rep < 3; rep++) {
        const t0 = performance.now();
        const results = await model.generate(requests, { parallel });
        const seconds = (performance.now() - t0) / 1000;
        const generated = results.reduce((s, r) => s + r.tokens, 0);
        if (results.some((r) => r.finish !== "length")) throw new Error("a sequence stopped early");
        rates.push(generated / seconds);
      }
      throughput.push({ parallel, tokensPerSecond: median(rates), native: null });
    }
    await model.dispose();

    const loadTimes: number[] = [];
    const disposeTimes: number[] = [];
    for (let i = 0; i < loads; i++) {
      const t0 = performance.now();
      const m = await engine.loadModel(path, { parallel: 8 });
      const t1 = performance.now();
      await m.dispose();
      loadTimes.push(t1 - t0);
      disposeTimes.push(performance.now() - t1);
    }

    const native = await nativeThroughput(dir, path, parallels, tokens, promptTokens, info.threads);
    for (const [i, rate] of (native.rates ?? []).entries()) throughput[i].native = rate;

    const result: InferenceBenchResult = {
      backend: info.backend,
      threads: info.threads,
      throughput,
      loadMs: median(loadTimes),
      disposeMs: median(disposeTimes),
      nativeNote: native.note,
    };
    printResult(result, {
      implementation: info.implementation,
      params: parameterCount(config),
      tokens,
      promptTokens,
      loads,
      log,
    });
    return result;
  } finally {
    await engine.dispose();
    await rm(dir, { recursive: true, force: true });
  }
}

function printResult(
  r: InferenceBenchResult,
  ctx: {
    implementation: string;
    params: number;
    tokens: number;
    promptTokens: number;
    loads: number;
    log: (line: string) => void;
  },
): void {
  const { log } = ctx;
  log(
    `\ninference — ${ctx.implementation}, ${r.backend}, ${r.threads} thread(s); ` +
      `${(ctx.params / 1e6).toFixed(2)}M-param F32 model, greedy, ` +
      `${ctx.tokens} tokens per sequence after a ${ctx.promptTokens}-token prompt; ` +
      `UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE ?? "4 (default)"}`,
  );
  const head = ["sequences", "engine tok/s", "libllama tok/s", "engine/libllama"];
  const rows = r.throughput.map((t) => [
    String(t.parallel),
    t.tokensPerSecond.toFixed(0),
    t.native === null ? "—" : t.native.toFixed(0),
    t.native === null ? "—" : (t.tokensPerSecond / t.native).toFixed(2),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i])).join("  ");
  log(line(head));
  log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const row of rows) log(line(row));
  log(
    `load model + context (8 sequences): median ${r.loadMs.toFixed(1)} ms of ${ctx.loads}; ` +
      `dispose: ${r.disposeMs.toFixed(1)} ms`,
  );
  log(`libllama column: ${r.nativeNote}`);
}

/**
 * Builds (once, under .cache/) a small C program that decodes greedily in batches straight on
 * the libllama in node_modules, using headers from the llama.cpp source bundled with
 * node-llama-cpp, and runs it on the same file. Any missing piece yields a note, not an error.
 */
async function nativeThroughput(
  dir: string,
  modelPath: string,
  parallels: number[],
  tokens: number,
  promptTokens: number,
  threads: number,
): Promise<{ rates: number[] | null; note: string }> {
  const platform = `${process.platform}-${process.arch}`;
  const libDir = join(ROOT, "node_modules", "@node-llama-cpp", platform, "bins", platform);
  const bundle = join(ROOT, "node_modules", "node-llama-cpp", "llama", "gitRelease.bundle");
  if (!existsSync(libDir)) return { rates: null, note: `no prebuilt CPU libllama for ${platform}` };
  if (!existsSync(bundle))
    return { rates: null, note: "node-llama-cpp's llama.cpp source bundle is missing" };
  const cache = join(ROOT, ".cache", "engine-bench");
  const exe = join(cache, "engine-native");
  try {
    if (!existsSync(exe)) {
      const inc = join(cache, "include");
      await mkdir(inc, { recursive: true });
      const git = join(dir, "llama.git");
      await run("git", ["init", "-q", "--bare", git]);
      await run("git", ["-C", git, "fetch", "-q", bundle, "HEAD"]);
      const headers = [
        "include/llama.h",
        "ggml/include/ggml.h",
        "ggml/include/ggml-cpu.h",
        "ggml/include/ggml-backend.h",
        "ggml/include/ggml-alloc.h",
        "ggml/include/ggml-opt.h",
        "ggml/include/gguf.h",
      ];
      for (const h of headers) {
        const { stdout } = await run("git", ["-C", git, "show", `FETCH_HEAD:${h}`], {
          maxBuffer: 1 << 24,
        });
        await writeFile(join(inc, h.split("/").pop() as string), stdout);
      }
      const libs = (await readdir(libDir)).filter((f) =>
        /^lib(llama|ggml)(\.v[\d.]+)?\.so$|^libggml-base\.so$/.test(f),
      );
      await run("cc", [
        "-O2",
        "-o",
        exe,
        join(ROOT, "bench", "engine-native.c"),
        `-I${inc}`,
        `-L${libDir}`,
        ...libs.map((l) => `-l:${l}`),
        `-Wl,-rpath,${libDir}`,
      ]);
    }
    const rates: number[] = [];
    for (const p of parallels) {
      const args = [
        libDir,
        modelPath,
        String(p),
        String(tokens),
        String(promptTokens),
        String(threads),
      ];
      const { stdout } = await run(exe, args);
      rates.push(Number(stdout.trim()));
    }
    return {
      rates,
      note: `bench/engine-native.c on node_modules' libllama (same binary, F32 KV, no flash attention, best of 3)`,
    };
  } catch (e) {
    const why = (e instanceof Error ? e.message : String(e)).split("\n")[0];
    return { rates: null, note: `not measured (${why}); node-llama-cpp ships no llama-bench` };
  }
}
