/**
 * The engine's generation against a plain greedy loop over node-llama-cpp's internal batch
 * calls (initBatch, addToBatch, decodeBatch, sampleToken: what bench/engine-native.c does in
 * C), on the zoo's code expert and all 144 opt prompts, 8 sequences. Prints both times, the
 * ratio, and whether every output is the same as the engine's with one sequence (the
 * ground truth: no batching at all). The loop skips node-llama-cpp's per-token machinery
 * (locks, sampler config, promise chains per sequence): this measures what the engine could
 * gain by driving the batch itself.
 *
 *   node --import tsx bench/engine-loop.ts [SEQUENCES]
 */
import { getLlama, type LlamaModel } from "node-llama-cpp";
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

// Internal, version-specific (node-llama-cpp 3.21.1): the native context and sampler.
interface NativeContext {
  initBatch(size: number): void;
  addToBatch(seq: number, first: number, tokens: Uint32Array, logits: Uint32Array): Uint32Array;
  decodeBatch(): Promise<void>;
  sampleToken(logitIndex: number, sampler: unknown): Promise<number>;
  removeTokenCellsFromSequence(seq: number, start: number, end: number): boolean;
}
const { LlamaSampler } = (await import(
  "../node_modules/node-llama-cpp/dist/evaluator/LlamaContext/LlamaSampler.js" as string
)) as { LlamaSampler: new (m: LlamaModel) => { applyConfig(c: object): void; _sampler: unknown } };

async function greedyLoop(model: LlamaModel, native: NativeContext, seqIds: number[]) {
  const bos =
    model.tokens.shouldPrependBosToken && model.tokens.bos != null ? model.tokens.bos : null;
  // One sampler per sequence: a sampler's candidate buffer is not safe to share across the
  // thread pool's jobs.
  const samplers = seqIds.map(() => {
    const s = new LlamaSampler(model);
    s.applyConfig({ temperature: 0 });
    return s;
  });
  const outs = new Array<string>(reqs.length);
  type Slot = { req: number; pos: number; pending: number[]; gen: number[] } | null;
  const slots: Slot[] = seqIds.map(() => null);
  let next = 0;
  const take = (k: number) => {
    if (next >= reqs.length) {
      slots[k] = null;
      return;
    }
    const i = next++;
    native.removeTokenCellsFromSequence(seqIds[k], 0, 1 << 30);
    const prompt = model.tokenize(reqs[i].prompt, false) as number[];
    slots[k] = { req: i, pos: 0, pending: bos == null ? prompt : [bos, ...prompt], gen: [] };
  };
  for (let k = 0; k < seqIds.length; k++) take(k);
  for (;;) {
    const active = slots.flatMap((s, k) => (s ? [[s, k] as const] : []));
    if (active.length === 0) break;
    native.initBatch(active.reduce((n, [s]) => n + s.pending.length, 0));
    const rows = active.map(([s, k]) => {
      const idx = native.addToBatch(
        seqIds[k],
        s.pos,
        Uint32Array.from(s.pending),
        Uint32Array.from([s.pending.length - 1]),
      );
      s.pos += s.pending.length;
      return idx[0];
    });
    await native.decodeBatch();
    // The first read of a reordered batch's logits sorts them in place: read it alone.
    const first = await native.sampleToken(rows[0], samplers[active[0][1]]._sampler);
    const rest = await Promise.all(
      active.slice(1).map(([, k], j) => native.sampleToken(rows[j + 1], samplers[k]._sampler)),
    );
    [first, ...rest].forEach((t, j) => {
      const [s, k] = active[j];
      const r = reqs[s.req];
      let text: string | null = null;
      if (model.isEogToken(t as never)) text = model.detokenize(s.gen as never, false);
      else {
        s.gen.push(t);
        const all = model.detokenize(s.gen as never, false);
        const at = Math.min(...(r.stop ?? []).map((x) => all.indexOf(x)).filter((x) => x >= 0));
        if (Number.isFinite(at)) text = all.slice(0, at);
        else if (s.gen.length >= r.maxTokens) text = all;
      }
      if (text === null) s.pending = [t];
      else {
        outs[s.req] = text;
        take(k);
      }
    });
  }
  return outs;
}

const timed = async <T>(f: () => Promise<T>): Promise<[T, number]> => {
  const t = performance.now();
  const r = await f();
  return [r, performance.now() - t];
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const engine = await createLlamaCppEngine({ gpu: false, threads: 1 });
const truth = await (async () => {
  const m = await engine.loadModel(path, { parallel: 1 });
  const r = (await m.generate(reqs)).map((x) => x.text);
  await m.dispose();
  return r;
})();
const m = await engine.loadModel(path, { parallel: P });
await m.generate(reqs.slice(0, 16));
const engineMs: number[] = [];
let engineOut: string[] = [];
for (let i = 0; i < 3; i++) {
  const [r, ms] = await timed(() => m.generate(reqs));
  engineOut = r.map((x) => x.text);
  engineMs.push(ms);
}
await m.dispose();
await engine.dispose();

const llama = await getLlama({ build: "never", gpu: false });
const model = await llama.loadModel({ modelPath: path });
const context = await model.createContext({
  contextSize: 256,
  batchSize: 256 * P,
  sequences: P,
  threads: 1,
  flashAttention: false,
});
const seqIds = Array.from(
  { length: P },
  () => (context.getSequence() as unknown as { _sequenceId: number })._sequenceId,
);
const native = (context as unknown as { _ctx: NativeContext })._ctx;
await greedyLoop(model, native, seqIds);
const loopMs: number[] = [];
let loopOut: string[] = [];
for (let i = 0; i < 3; i++) {
  const [r, ms] = await timed(() => greedyLoop(model, native, seqIds));
  loopOut = r;
  loopMs.push(ms);
}
await context.dispose();
await model.dispose();

const same = (a: string[]) => a.filter((x, i) => x === truth[i]).length;
console.log(
  `${reqs.length} prompts (the zoo's code expert on opt), ${P} sequences, 1 thread; median of 3`,
);
console.log(`engine (node-llama-cpp's evaluate)   ${median(engineMs).toFixed(0).padStart(6)} ms`);
console.log(`greedy loop over the batch calls     ${median(loopMs).toFixed(0).padStart(6)} ms`);
console.log(
  `engine / loop                        ${(median(engineMs) / median(loopMs)).toFixed(2)}×`,
);
console.log(
  `outputs equal to one sequence's: engine ${same(engineOut)}/${reqs.length}, loop ${same(loopOut)}/${reqs.length}`,
);
