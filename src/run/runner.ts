/**
 * The CycleQD run loop: ask → materialise → evaluate → tell, steady-state with W
 * evaluations in flight, every finished child committed to the run store at once.
 *
 * - Child g (g = 1…N) is made when it is dispatched, from the archives as they are at that
 *   moment, with draws from its own generator (seed, g); the counter counts finished
 *   children. With one worker a run is a pure function of its config.
 * - Resume rebuilds the archives by replaying the finished children in commit order and
 *   dispatches the missing indices, so an interrupted child is redone with its own draws.
 *
 * See docs/ALGORITHM.md, "The cycle" (and "Model aggregation" for `finalise`).
 */
import { randomUUID } from "node:crypto";
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { hashPath, type SeedFactors } from "../materialise/index.ts";
import {
  type Archive,
  type Ask,
  CycleQD,
  type CycleQDConfig,
  decodeGenome,
  encodeGenome,
  type Genome,
  type GenomeLayout,
  type OfferOutcome,
  seedGenome,
} from "../qd/index.ts";
import { parseQueueUrl } from "../queue/url.ts";
import { type RunConfig, resolveGenome } from "./config.ts";
import { createEvaluator, type EvalOutcome, type Evaluator } from "./evaluator.ts";
import { writeGenomeModel } from "./export.ts";
import { checkInputs, type Inputs, prepareInputs } from "./inputs.ts";
import { type EvalJob, type EvaluatorSetup, evaluatorSetup } from "./model-evaluator.ts";
import { runFactors } from "./seed-factors.ts";
import { buildSkills, dataFiles } from "./skill-sources.ts";
import {
  type EliteRow,
  type FinalRecord,
  type RunStatus,
  RunStore,
  type Scores,
  type Timings,
} from "./store.ts";

export interface ArchiveSummary {
  skill: string;
  filled: number;
  cells: number;
  coverage: number;
  qdScore: number;
  best: number | null;
}

/**
 * Progress of a run, passed to `RunOptions.onEvent` in order: start, factors, one `seed` per
 * seed expert scored, archives (bin ranges in score units), replayed (on resume), one
 * `child` per finished child, stopping (after an abort), one `final` per final model, done.
 * `ms` fields are milliseconds, `seconds` wall seconds of this session; scores are pass
 * rates in [0, 1] by skill; ids are seeds 0..K−1 and child g is K + g − 1.
 */
export type RunEvent =
  | {
      type: "start";
      dir: string;
      resumed: boolean;
      generations: number;
      finished: number;
      workers: number;
      /** A queue run: its Redis, password hidden (the workers are wherever they run). */
      queue?: string;
    }
  | { type: "factors"; fromCache: boolean; ms: number; key: string }
  | {
      type: "skills";
      /** Each skill: where it comes from, its problems per split, records left out. */
      skills: {
        name: string;
        kind: string;
        opt: number;
        test: number;
        skipped: { file: string; line: number; reason: string }[];
      }[];
    }
  | { type: "seed"; seed: number; skill: string; scores: Scores; ms: number }
  | { type: "archives"; ranges: Record<string, [number, number]>; archives: ArchiveSummary[] }
  | { type: "replayed"; children: number }
  | {
      type: "child";
      index: number;
      /** Finished children so far, this one included. */
      finished: number;
      total: number;
      task: string;
      parents: [number, number];
      scores: Scores;
      /** What the child did in each archive, by skill. */
      outcomes: Record<string, OfferOutcome>;
      archives: ArchiveSummary[];
      timings: Timings;
      worker: number;
      /** Estimated seconds to the last child, from this session's throughput. */
      etaSeconds: number;
    }
  | { type: "stopping"; inFlight: number }
  | {
      type: "final";
      name: string;
      sources: number[];
      scoresOpt: Scores | null;
      scoresTest: Scores | null;
      model: string | null;
    }
  | { type: "done"; status: RunStatus; finished: number; generations: number; seconds: number };

/** How `run` and `resume` report and stop; every field is optional. */
export interface RunOptions {
  /** Called synchronously with each event; an exception it throws fails the run. */
  onEvent?: (e: RunEvent) => void;
  /** Aborting stops dispatching; evaluations in flight finish and are committed. */
  signal?: AbortSignal;
  /**
   * Makes the evaluator (default: in process for one worker, a process pool for more);
   * the place for other evaluation back ends, e.g. remote machines.
   */
  createEvaluator?: (setup: EvaluatorSetup, workers: number) => Promise<Evaluator>;
}

/** How a `run` or `resume` call ended. */
export interface RunResult {
  /** Absolute path of the run directory. */
  dir: string;
  /** "finished", or "interrupted" when aborted before the last child (resume it later). */
  status: RunStatus;
  /** Children finished and committed, in 0..generations. */
  finished: number;
  /** N, the children the run makes in all. */
  generations: number;
}

/**
 * Starts a new run in `out` (created; must not hold a run yet) with a checked config (from
 * `loadConfig`, `parseConfig` or `validateConfig`; `run` does not check its fields). Before
 * creating anything it checks the models and throws when one is missing, the formats
 * differ, an expert's tensors or shapes differ from the base's, or the tokenizers differ.
 * Throws when `out` already holds a run. Later failures (evaluation, llama.cpp, sandbox,
 * disk) mark the run "failed" and are rethrown; it can then be resumed. Resolves with
 * status "interrupted" when `signal` aborts before the last child.
 */
export async function run(
  config: RunConfig,
  opts: RunOptions & { out: string },
): Promise<RunResult> {
  // Everything that can be checked is checked before the run directory exists. The store
  // keeps the config as decided (genome: auto resolved), so a resume runs it the same way.
  const { baseParameters } = await checkInputs(config);
  const store = await RunStore.create(opts.out, resolveGenome(config, baseParameters));
  try {
    store.acquireLock();
  } catch (e) {
    store.close();
    throw e;
  }
  return execute(store, false, opts);
}

/**
 * Continues a run that was interrupted or failed (or finishes its last steps), replaying
 * its committed children and redoing the missing ones with their own draws; a finished
 * run returns at once. Throws when `dir` is not a run (or has another schema), RunLockedError
 * when another live process holds the run, and an Error when an input model changed since
 * the run started or replaying the store does not give the recorded archives. Otherwise
 * as `run`.
 */
export async function resume(dir: string, opts: RunOptions = {}): Promise<RunResult> {
  const store = await RunStore.open(dir);
  try {
    store.acquireLock();
  } catch (e) {
    store.close();
    throw e;
  }
  if (store.status === "finished") {
    const n = store.childCount();
    const generations = store.config.generations;
    store.close();
    opts.onEvent?.({ type: "done", status: "finished", finished: n, generations, seconds: 0 });
    return { dir: store.dir, status: "finished", finished: n, generations };
  }
  return execute(store, true, opts);
}

async function execute(store: RunStore, resumed: boolean, opts: RunOptions): Promise<RunResult> {
  const emit = opts.onEvent ?? (() => {});
  const config = store.config;
  const K = config.skills.length;
  const N = config.generations;
  const started = performance.now();
  const tmpDir = join(store.dir, "tmp");
  let evaluator: Evaluator | undefined;
  let factors: SeedFactors | undefined;
  let stopping = false;
  const onAbort = () => {
    stopping = true;
  };
  opts.signal?.addEventListener("abort", onAbort);
  if (opts.signal?.aborted) stopping = true;
  try {
    store.setStatus(store.ranges() ? "running" : "initialising");
    // Leftovers of a killed run: temporary models are never reused.
    await rm(tmpDir, { recursive: true, force: true });
    await mkdir(tmpDir, { recursive: true });
    const inputs = await prepareInputs(config, join(store.dir, "inputs"));
    await checkInputHashes(store, inputs);
    emit({
      type: "start",
      dir: store.dir,
      resumed,
      generations: N,
      finished: store.childCount(),
      workers: config.workers,
      ...(config.queue ? { queue: parseQueueUrl(config.queue).display } : {}),
    });
    emit({
      type: "skills",
      skills: buildSkills(config).map((s) => ({
        name: s.name,
        kind: config.skillSources[s.name]?.kind ?? "mini",
        opt: s.problems("opt").length,
        test: s.problems("test").length,
        skipped: [...(s.skipped ?? [])],
      })),
    });

    const tf = performance.now();
    factors = await runFactors(
      config,
      inputs.base.gguf,
      inputs.experts.map((e) => e.gguf),
    );
    emit({
      type: "factors",
      fromCache: factors.fromCache,
      ms: performance.now() - tf,
      key: factors.key,
    });
    const layout = factors.layout;
    const savedLayout = store.getMeta("layout");
    if (savedLayout === undefined) store.setMeta("layout", layout.id);
    else if (savedLayout !== layout.id) {
      throw new Error(
        `the seed factors now give genome layout ${layout.id}, but the run was made with ${savedLayout}; the inputs or rank changed`,
      );
    }

    const setup = evaluatorSetup(config, tmpDir, inputs.base.gguf, factors.dir);
    const queue = config.queue;
    const make =
      opts.createEvaluator ??
      (queue ? (s: EvaluatorSetup) => queueEvaluator(store, queue, s, inputs) : createEvaluator);
    evaluator = await make(setup, config.workers);
    const ev = evaluator;

    // Initialise: each seed expert scored on every task, once: as its own file, or in
    // low-rank mode as the adapter its genome gives (that is the seed the search holds).
    const have = new Set(store.seeds().map((s) => s.seed));
    await Promise.all(
      inputs.experts.map(async (e, k) => {
        if (have.has(k) || stopping) return;
        const genome = encodeGenome(seedGenome(layout, k), layout);
        const r = await ev.evaluate({
          name: `seed-${k}`,
          target:
            config.genome === "lowrank"
              ? { kind: "genome", genome }
              : { kind: "file", path: e.gguf },
          split: "opt",
        });
        store.putSeed({
          seed: k,
          task: config.skills[k],
          genome,
          scores: r.scores,
          timings: r.timings,
        });
        emit({
          type: "seed",
          seed: k,
          skill: config.skills[k],
          scores: r.scores,
          ms: r.timings.evaluate,
        });
      }),
    );
    const seeds = store.seeds();
    if (seeds.length < K) return await interrupted(store, emit, started);

    const cycle = new CycleQD(searchConfig(config, layout));
    const scoreVector = (s: Scores) => config.skills.map((n) => s[n].score);
    const seedOutcomes = cycle.initialise(seeds.map((s) => scoreVector(s.scores)));
    const ranges = cycle.archives[0].ranges.map(([lo, hi]) => [lo, hi] as [number, number]);
    const savedRanges = store.ranges();
    if (savedRanges === null) {
      store.initArchives(ranges, seedOutcomes, eliteRows(cycle.archives, 0));
    } else if (JSON.stringify(savedRanges) !== JSON.stringify(ranges)) {
      throw inconsistent(store, "the seeds' scores no longer give the recorded bin ranges");
    }
    const scoresById = new Map<number, Scores>(seeds.map((s) => [s.seed, s.scores]));
    emit({
      type: "archives",
      ranges: Object.fromEntries(config.skills.map((s, k) => [s, ranges[k]])),
      archives: summaries(cycle, config),
    });

    // Rebuild the archives from the finished children, checking each recorded effect.
    const done = store.children();
    for (const c of done) {
      const t = cycle.replay(c.index, decodeGenome(c.genome, layout), scoreVector(c.scores));
      if (JSON.stringify(t.outcomes) !== JSON.stringify(c.outcomes)) {
        throw inconsistent(store, `replaying child ${c.index} gave other archive outcomes`);
      }
      scoresById.set(c.id, c.scores);
    }
    const stored = store.elites().map((e) => [e.archive, e.cell, e.id].join(":"));
    const rebuilt = eliteRows(cycle.archives, 0).map((e) => [e.archive, e.cell, e.id].join(":"));
    if (JSON.stringify(stored) !== JSON.stringify(rebuilt)) {
      throw inconsistent(store, "the recorded elites differ from the replayed archives");
    }
    if (done.length) emit({ type: "replayed", children: done.length });

    const finishedSet = new Set(done.map((c) => c.index));
    const pending: number[] = [];
    for (let g = 1; g <= N; g++) if (!finishedSet.has(g)) pending.push(g);
    // Children a killed process had handed to a queue are taken back as they were asked.
    const takenBack = new Map<number, Ask>();
    for (const d of store.dispatched()) {
      takenBack.set(d.index, askFromRecord(d.ask, decodeGenome(d.genome, layout)));
    }
    const finished = await evolve(
      { cycle, ev, store, emit, stopping: () => stopping, scoresById, takenBack },
      pending,
      done.length,
    );
    if (finished < N) return await interrupted(store, emit, started);

    await finalise(store, config, cycle, inputs, factors, ev, scoresById, emit);
    emit({ type: "done", status: "finished", finished, generations: N, seconds: secs(started) });
    return { dir: store.dir, status: "finished", finished, generations: N };
  } catch (e) {
    try {
      store.setStatus("failed", (e as Error).message);
    } catch {
      // the store itself failed; the error below says why
    }
    throw e;
  } finally {
    opts.signal?.removeEventListener("abort", onAbort);
    await evaluator?.close().catch(() => {});
    await factors?.close().catch(() => {});
    await rm(tmpDir, { recursive: true, force: true }).catch(() => {});
    store.close();
  }
}

interface Search {
  cycle: CycleQD;
  ev: Evaluator;
  store: RunStore;
  emit: (e: RunEvent) => void;
  /** True once the run was asked to stop: nothing new is dispatched. */
  stopping: () => boolean;
  scoresById: Map<number, Scores>;
  /** Children asked by an earlier process and still in a durable evaluator's hands. */
  takenBack: Map<number, Ask>;
}

/**
 * The steady-state loop: ask → evaluate (the evaluator materialises the genome) → tell →
 * commit, with up to W children in flight. Returns the number of finished children.
 */
async function evolve(s: Search, pending: number[], finishedBefore: number): Promise<number> {
  const inFlight = new Map<number, Promise<Evaluated>>();
  let finished = finishedBefore;
  const started = performance.now();
  let announced = false;
  for (;;) {
    while (!s.stopping() && inFlight.size < s.ev.concurrency && pending.length) {
      const g = pending.shift() as number;
      const ask = s.takenBack.get(g) ?? s.cycle.ask(g);
      const bytes = encodeGenome(ask.genome, s.cycle.layout);
      // Recorded before it is sent, so a resumed run never asks a child it may get back.
      if (s.ev.durable && !s.takenBack.has(g)) s.store.putDispatched(g, askRecord(ask), bytes);
      const job = { name: `child-${ask.generation}`, split: "opt" as const };
      const p = s.ev
        .evaluate({ ...job, target: { kind: "genome", genome: bytes } })
        .then((r) => ({ ask, bytes, r }));
      p.catch(() => {}); // raced below; a late failure after an error is not unhandled
      inFlight.set(ask.generation, p);
    }
    if (s.stopping() && !announced && inFlight.size) {
      announced = true;
      s.emit({ type: "stopping", inFlight: inFlight.size });
    }
    if (inFlight.size === 0) return finished;
    const done = await Promise.race(inFlight.values());
    inFlight.delete(done.ask.generation);
    // A result that arrives twice (a retried queue job) is committed once.
    if (s.store.hasChild(done.ask.generation)) continue;
    finished++;
    commitChild(s, done, finished, (performance.now() - started) / (finished - finishedBefore));
  }
}

interface Evaluated {
  ask: Ask;
  /** The genome as stored. */
  bytes: Uint8Array;
  r: EvalOutcome;
}

/** Tells the search a child's scores and commits the child and its archive changes at once. */
function commitChild(
  s: Search,
  { ask, bytes, r }: Evaluated,
  finished: number,
  msPerChild: number,
) {
  const { cycle, store } = s;
  const skills = store.config.skills;
  const N = store.config.generations;
  const tt = performance.now();
  const scores = skills.map((n) => r.scores[n].score);
  // A child taken back from an earlier process was never asked here: it is offered as recorded.
  const tell = s.takenBack.has(ask.generation)
    ? cycle.replay(ask.generation, ask.genome, scores)
    : cycle.tell(ask, scores);
  const metrics = cycle.metrics();
  const timings: Timings = { ...ask.ms, ...r.timings, tell: performance.now() - tt };
  const changed = tell.outcomes.flatMap((o, k) =>
    o.outcome === "rejected"
      ? []
      : [{ archive: k, cell: o.cell, id: ask.id, quality: r.scores[skills[k]].score, seq: 0 }],
  );
  const d = ask.draws.mutation;
  store.commitChild(
    {
      index: ask.generation,
      id: ask.id,
      task: ask.task,
      taskName: ask.taskName,
      parents: ask.parents,
      fallback: ask.fallback,
      crossover: ask.draws.crossover,
      mutation: d.kind === "svd" ? { kind: "svd", task: d.task, summary: d.summary } : d,
      mutationR: d.kind === "svd" ? d.r : null,
      genome: bytes,
      scores: r.scores,
      outcomes: tell.outcomes,
      entered: tell.metrics.entered,
      metrics,
      timings,
      worker: r.worker,
      attempts: r.attempts,
      gradingFallbacks: r.gradingFallbacks ?? 0,
    },
    changed,
  );
  s.scoresById.set(ask.id, r.scores);
  s.emit({
    type: "child",
    index: ask.generation,
    finished,
    total: N,
    task: ask.taskName,
    parents: ask.parents,
    scores: r.scores,
    outcomes: Object.fromEntries(skills.map((n, k) => [n, tell.outcomes[k].outcome])),
    archives: summaries(cycle, store.config),
    timings,
    worker: r.worker,
    etaSeconds: (msPerChild / 1000) * (N - finished),
  });
}

/** An ask as the run store keeps a dispatched child (JSON; the genome is stored apart). */
function askRecord(ask: Ask): string {
  const { genome: _genome, draws, ...rest } = ask;
  const m = draws.mutation;
  const mutation = m.kind === "svd" ? { ...m, r: Array.from(m.r) } : m;
  return JSON.stringify({ ...rest, draws: { crossover: draws.crossover, mutation } });
}

function askFromRecord(text: string, genome: Genome): Ask {
  const a = JSON.parse(text);
  const m = a.draws.mutation;
  const mutation = m.kind === "svd" ? { ...m, r: Float64Array.from(m.r) } : m;
  return { ...a, genome, draws: { crossover: a.draws.crossover, mutation } };
}

/**
 * The queue evaluator of a run with `queue:` (src/queue/, loaded only then). The run's
 * queue id is kept in the store, so that a resumed run finds the jobs it dispatched.
 */
async function queueEvaluator(
  store: RunStore,
  url: string,
  setup: EvaluatorSetup,
  inputs: Inputs,
): Promise<Evaluator> {
  const { createQueueEvaluator, parseQueueUrl } = await import("../queue/index.ts");
  let runId = store.getMeta("queue_run_id");
  if (!runId) {
    runId = randomUUID();
    store.setMeta("queue_run_id", runId);
  }
  const experts = inputs.experts.map((e) => e.gguf);
  return createQueueEvaluator({ url: parseQueueUrl(url), runId, setup, experts });
}

/** The search's settings from the run config: the one place where the two are mapped. */
export function searchConfig(config: RunConfig, layout: GenomeLayout): CycleQDConfig {
  const ranges = config.archive.ranges;
  return {
    tasks: config.skills,
    layout,
    seed: config.seed,
    bins: config.archive.bins,
    ranges: ranges === "paper" ? undefined : config.skills.map((s) => ranges[s]),
    flipInterval: config.flipInterval,
    sampling: config.sampling,
    crossover: config.crossover,
    mutation: {
      kind: config.mutation.method,
      wMax: config.mutation.wMax,
      sigma: config.mutation.sigma,
    },
  };
}

const secs = (since: number) => (performance.now() - since) / 1000;

async function interrupted(
  store: RunStore,
  emit: (e: RunEvent) => void,
  started: number,
): Promise<RunResult> {
  store.setStatus("interrupted");
  const finished = store.childCount();
  const generations = store.config.generations;
  emit({ type: "done", status: "interrupted", finished, generations, seconds: secs(started) });
  return { dir: store.dir, status: "interrupted", finished, generations };
}

function inconsistent(store: RunStore, what: string): Error {
  return new Error(`run ${store.dir} is inconsistent: ${what}; it cannot be resumed safely`);
}

/** A run continues only with the very inputs it started with. */
async function checkInputHashes(store: RunStore, inputs: Inputs): Promise<void> {
  const models = [inputs.base, ...inputs.experts];
  const rows = [];
  for (const m of models) rows.push({ ...m, sha256: await hashPath(m.gguf) });
  // The skills' data files too (role "data:SKILL:PATH"): changed problems change the scores.
  for (const [skill, src] of Object.entries(store.config.skillSources)) {
    for (const f of dataFiles(src)) {
      rows.push({ role: `data:${skill}:${f}`, source: f, gguf: f, sha256: await hashPath(f) });
    }
  }
  const saved = store.inputs();
  if (saved.length === 0) {
    store.setInputs(rows);
    return;
  }
  // A run stored before data files were recorded has no "data:" rows: they are recorded now.
  const hasData = saved.some((x) => x.role.startsWith("data:"));
  for (const r of rows) {
    const s = saved.find((x) => x.role === r.role);
    if (r.role.startsWith("data:") && !hasData) continue;
    if (!s || s.sha256 !== r.sha256) {
      const what = r.role.startsWith("data:")
        ? `the data file ${r.source} of skill ${r.role.split(":")[1]}`
        : `the ${r.role === "base" ? "base model" : `${r.role} expert`} (${r.source})`;
      throw new Error(
        `${what} changed since the run started; a run continues only with its own inputs`,
      );
    }
  }
  if (!hasData && rows.some((x) => x.role.startsWith("data:"))) store.setInputs(rows);
}

function eliteRows(archives: readonly Archive<Genome>[], seq: number): EliteRow[] {
  return archives.flatMap((a) =>
    a
      .elites()
      .map((e) => ({ archive: a.task, cell: e.cell, id: e.id, quality: a.quality(e), seq })),
  );
}

function summaries(cycle: CycleQD, config: RunConfig): ArchiveSummary[] {
  return cycle.metrics().map((m) => ({
    skill: config.skills[m.task],
    filled: m.filled,
    cells: m.cells,
    coverage: m.coverage,
    qdScore: m.qdScore,
    best: m.bestQuality,
  }));
}

/**
 * The final models: the aggregate θ₀ + Σ β_k τ_k* and the best-mean elite, each recorded
 * as a genome, evaluated on opt and test when asked, the aggregate written out
 * (docs/ALGORITHM.md, "Model aggregation").
 */
async function finalise(
  store: RunStore,
  config: RunConfig,
  cycle: CycleQD,
  inputs: Inputs,
  factors: SeedFactors,
  ev: Evaluator,
  scoresById: Map<number, Scores>,
  emit: (e: RunEvent) => void,
): Promise<void> {
  const layout = cycle.layout;
  const agg = cycle.aggregate();
  const best = cycle.bestMeanElite();
  const evaluate = async (name: string, genome: Genome, split: EvalJob["split"]) =>
    (
      await ev.evaluate({
        name: `${name}-${split}`,
        target: { kind: "genome", genome: encodeGenome(genome, layout) },
        split,
      })
    ).scores;
  const withTest = config.final.evaluate && config.split.test > 0;
  const records: Omit<FinalRecord, "finishedAt">[] = [];

  let model: string | null = null;
  if (config.final.writeModel) {
    model = join(store.dir, "model.gguf");
    const hf = inputs.base.format === "safetensors" ? join(store.dir, "model-hf") : undefined;
    await writeGenomeModel(agg.genome, inputs.base.gguf, factors, model, hf);
  }
  records.push({
    name: "aggregate",
    genome: encodeGenome(agg.genome, layout),
    sources: { ids: agg.elites.map((e) => e.id), beta: agg.beta },
    scoresOpt: config.final.evaluate ? await evaluate("aggregate", agg.genome, "opt") : null,
    scoresTest: withTest ? await evaluate("aggregate", agg.genome, "test") : null,
    model,
  });
  records.push({
    name: "best-mean",
    genome: encodeGenome(best.payload, layout),
    sources: { ids: [best.id] },
    scoresOpt: scoresById.get(best.id) ?? null,
    scoresTest: withTest ? await evaluate("best-mean", best.payload, "test") : null,
    model: null,
  });
  store.finish(records);
  for (const r of records) {
    emit({
      type: "final",
      name: r.name,
      sources: r.sources.ids,
      scoresOpt: r.scoresOpt,
      scoresTest: r.scoresTest,
      model: r.model,
    });
  }
}
