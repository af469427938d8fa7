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

export interface RunStatusReport {
  dir: string;
  status: RunStatus;
  /** A live process holds the run's lock. */
  inProgress: boolean;
  holder: LockInfo | null;
  created: string;
  error: string | null;
  skills: string[];
  generations: number;
  finished: number;
  workers: number;
  seed: number;
  seeds: { skill: string; scores: Scores }[];
  archives: ArchiveStatus[];
  /** The elite with the best mean score over all skills. */
  bestMean: { id: number; mean: number; scores: Scores } | null;
  timings: TimingSummary | null;
  finals: {
    name: string;
    sources: number[];
    scoresOpt: Scores | null;
    scoresTest: Scores | null;
    model: string | null;
  }[];
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
      finals: store.finals().map((f) => ({
        name: f.name,
        sources: f.sources.ids,
        scoresOpt: f.scoresOpt,
        scoresTest: f.scoresTest,
        model: f.model,
      })),
    };
  } finally {
    store.close();
  }
}
