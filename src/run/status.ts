/**
 * A run's state as read from its store: progress, each archive's coverage / QD score /
 * best elite, the best elites, where the time went, the final models, and whether a live
 * process is working on it. Read-only: safe while the run is in progress.
 */
import {
  type LockInfo,
  type RunStatus,
  RunStore,
  type Scores,
  TIMING_KEYS,
  type Timings,
} from "./store.ts";

export interface ArchiveStatus {
  skill: string;
  filled: number;
  cells: number;
  coverage: number;
  qdScore: number;
  /** The best elite: id and its scores on every skill. */
  best: { id: number; quality: number; scores: Scores } | null;
}

export interface TimingSummary {
  /** Mean milliseconds per child of each step. */
  meanMs: Timings;
  /** Share of a child's time spent outside generation and grading (target ≤ 10%). */
  overheadShare: number;
}

/**
 * A run's state (`runStatus`). Scores are pass rates in [0, 1] by skill name, measured on
 * the opt split except a final model's `scoresTest`; ids are seeds 0..K−1 and child g is
 * K + g − 1.
 */
export interface RunStatusReport {
  /** Absolute path of the run directory. */
  dir: string;
  status: RunStatus;
  /** A live process holds the run's lock. */
  inProgress: boolean;
  /** The lock's holder (pid, host, since), live or left by a dead process, or null. */
  holder: LockInfo | null;
  /** When the run was created, ISO 8601. */
  created: string;
  /** The message of the error that failed the run, if it failed. */
  error: string | null;
  skills: string[];
  /** N, the children the run makes in all. */
  generations: number;
  /** Children finished and committed. */
  finished: number;
  workers: number;
  seed: number;
  /** Each seed expert's scores, once evaluated. */
  seeds: { skill: string; scores: Scores }[];
  /** One per skill, in task order. */
  archives: ArchiveStatus[];
  /** The elite with the best mean score over all skills. */
  bestMean: { id: number; mean: number; scores: Scores } | null;
  /** Mean step times over the finished children, or null before the first. */
  timings: TimingSummary | null;
  /** Children with answers re-run alone after a grading lane broke, and those answers. */
  gradingFallbacks: { children: number[]; answers: number };
  /** The final models ("aggregate", "best-mean") once the run finished; `model` is a path. */
  finals: {
    name: string;
    sources: number[];
    scoresOpt: Scores | null;
    scoresTest: Scores | null;
    model: string | null;
  }[];
  /** A queue run: its Redis (password hidden) and the run's queue id; null otherwise. */
  queue: { url: string; runId: string | null } | null;
}

/** Steps that are not evaluation proper (generation and grading). */
export const OVERHEAD_KEYS: readonly (keyof Timings)[] = [
  "select",
  "crossover",
  "mutate",
  "materialise",
  "load",
  "tell",
];

export function summariseTimings(rows: readonly Timings[]): TimingSummary | null {
  if (rows.length === 0) return null;
  const meanMs = Object.fromEntries(
    TIMING_KEYS.map((k) => [k, rows.reduce((s, r) => s + (r[k] ?? 0), 0) / rows.length]),
  ) as unknown as Timings;
  const overhead = OVERHEAD_KEYS.reduce((s, k) => s + meanMs[k], 0);
  const total = overhead + meanMs.generate + meanMs.grade;
  return { meanMs, overheadShare: total > 0 ? overhead / total : 0 };
}

/**
 * Reads the state of the run in `dir`, read-only (safe while a process runs it). Throws when
 * `dir` holds no run.db or one of another schema.
 */
export async function runStatus(dir: string): Promise<RunStatusReport> {
  const store = await RunStore.open(dir, { readonly: true });
  try {
    const config = store.config;
    const K = config.skills.length;
    const seeds = store.seeds();
    const children = store.children({ withGenomes: false });
    const scoresById = new Map<number, Scores>();
    for (const s of seeds) scoresById.set(s.seed, s.scores);
    for (const c of children) scoresById.set(c.id, c.scores);
    const cells = config.archive.bins ** (K - 1);
    const elites = store.elites();
    const archives: ArchiveStatus[] = config.skills.map((skill, k) => {
      const mine = elites.filter((e) => e.archive === k);
      let best: ArchiveStatus["best"] = null;
      for (const e of mine) {
        if (!best || e.quality > best.quality) {
          best = { id: e.id, quality: e.quality, scores: scoresById.get(e.id) ?? {} };
        }
      }
      return {
        skill,
        filled: mine.length,
        cells,
        coverage: mine.length / cells,
        qdScore: mine.reduce((s, e) => s + e.quality, 0),
        best,
      };
    });
    let bestMean: RunStatusReport["bestMean"] = null;
    for (const id of [...new Set(elites.map((e) => e.id))].sort((a, b) => a - b)) {
      const scores = scoresById.get(id);
      if (!scores) continue;
      const mean = config.skills.reduce((s, n) => s + scores[n].score, 0) / K;
      if (!bestMean || mean > bestMean.mean) bestMean = { id, mean, scores };
    }
    const holder = store.lockInfo();
    return {
      dir: store.dir,
      status: store.status,
      inProgress: holder?.alive ?? false,
      holder,
      created: store.getMeta("created") ?? "",
      error: store.getMeta("error") ?? null,
      skills: config.skills,
      generations: config.generations,
      finished: children.length,
      workers: config.workers,
      seed: config.seed,
      seeds: seeds.map((s) => ({ skill: s.task, scores: s.scores })),
      archives,
      bestMean,
      timings: summariseTimings(children.map((c) => c.timings)),
      gradingFallbacks: {
        children: children.filter((c) => c.gradingFallbacks > 0).map((c) => c.index),
        answers: children.reduce((s, c) => s + c.gradingFallbacks, 0),
      },
      finals: store.finals().map((f) => ({
        name: f.name,
        sources: f.sources.ids,
        scoresOpt: f.scoresOpt,
        scoresTest: f.scoresTest,
        model: f.model,
      })),
      queue: config.queue
        ? { url: config.queue, runId: store.getMeta("queue_run_id") ?? null }
        : null,
    };
  } finally {
    store.close();
  }
}
