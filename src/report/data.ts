/**
 * What a report shows, read from a run store: the run's settings, the seeds, every finished
 * child in commit order (scores, what it did in each archive, parents, crossover weights,
 * mutation, time), the archives' metrics after each child, and the final models. The page
 * replays the archives from the children's outcomes, so one snapshot serves every
 * generation of the slider. Read-only: safe while the run is in progress.
 */
import { basename } from "node:path";
import type { RunConfig } from "../run/config.ts";
import { type MutationRecord, type RunStatus, RunStore, type Timings } from "../run/store.ts";

export const REPORT_FORMAT = 1;

/** An individual's scores, by task index (the order of `skills`), each a pass rate in [0, 1]. */
export type ScoreVector = number[];

export interface ReportSeed {
  /** Id in the archives: the seed's task index. */
  id: number;
  skill: string;
  scores: ScoreVector;
  /** Cell each archive put it in (every seed is offered to every archive, in id order). */
  cells: number[];
  outcomes: ("new-cell" | "improved" | "rejected")[];
}

export interface ReportChild {
  /** Generation g, 1-based: the order children were asked in. */
  g: number;
  /** Commit order, 1-based: the order the archives saw them in (the slider's order). */
  seq: number;
  /** Id in the archives: K + g − 1. */
  id: number;
  /** Active task index q. */
  task: number;
  parents: [number, number];
  /** Normalised crossover weights of the two parents. */
  weights: [number, number];
  mutation: MutationRecord;
  scores: ScoreVector;
  cells: number[];
  outcomes: ("new-cell" | "improved" | "rejected")[];
  /** Every archive's metrics right after this child, by task index. */
  metrics: { filled: number; coverage: number; qdScore: number; best: number | null }[];
  /** Milliseconds per step; absent from reports made with `timings: false`. */
  timings?: Timings;
}

export interface ReportFinal {
  /** "aggregate" or "best-mean". */
  name: string;
  /** Ids of the elites it was made from. */
  sources: number[];
  /** Softmax weights β of the aggregate's elites. */
  beta?: number[];
  opt: ScoreVector | null;
  test: ScoreVector | null;
}

export interface ReportData {
  format: typeof REPORT_FORMAT;
  /** The run directory's name. */
  name: string;
  status: RunStatus;
  skills: string[];
  /** G, bins per BC axis. */
  bins: number;
  /** [lo, hi] of every task's score axis, by task index; null before the seeds are scored. */
  ranges: [number, number][] | null;
  /** N, children the run will make. */
  generations: number;
  seeds: ReportSeed[];
  children: ReportChild[];
  finals: ReportFinal[];
  config: RunConfig;
}

export interface ReportDataOptions {
  /** Include each child's time split (default true). Without it a report depends only on
   * the run's seed and results, so a resumed run's report equals an uninterrupted one's. */
  timings?: boolean;
}

/** The report's data for the run in `dir`; throws when `dir` holds no run store. */
export async function readReportData(
  dir: string,
  opts: ReportDataOptions = {},
): Promise<ReportData> {
  const store = await RunStore.open(dir, { readonly: true });
  try {
    return reportData(store, opts);
  } finally {
    store.close();
  }
}

export function reportData(store: RunStore, opts: ReportDataOptions = {}): ReportData {
  const config = store.config;
  const vector = (s: Record<string, { score: number }>) => config.skills.map((n) => s[n].score);
  const ranges = store.ranges();
  const children = store.children({ withGenomes: false }).sort((a, b) => a.seq - b.seq);
  return {
    format: REPORT_FORMAT,
    name: basename(store.dir),
    status: store.status,
    skills: [...config.skills],
    bins: config.archive.bins,
    ranges: ranges ? ranges.map(([lo, hi]) => [lo, hi]) : null,
    generations: config.generations,
    seeds: store.seeds().map((s) => ({
      id: s.seed,
      skill: s.task,
      scores: vector(s.scores),
      cells: s.outcomes?.map((o) => o.cell) ?? [],
      outcomes: s.outcomes?.map((o) => o.outcome) ?? [],
    })),
    children: children.map((c) => ({
      g: c.index,
      seq: c.seq,
      id: c.id,
      task: c.task,
      parents: c.parents,
      weights: c.crossover.weights,
      mutation: c.mutation,
      scores: vector(c.scores),
      cells: c.outcomes.map((o) => o.cell),
      outcomes: c.outcomes.map((o) => o.outcome),
      metrics: c.metrics.map((m) => ({
        filled: m.filled,
        coverage: m.coverage,
        qdScore: m.qdScore,
        best: m.bestQuality,
      })),
      ...(opts.timings === false ? {} : { timings: c.timings }),
    })),
    finals: store.finals().map((f) => ({
      name: f.name,
      sources: f.sources.ids,
      ...(f.sources.beta ? { beta: f.sources.beta } : {}),
      opt: f.scoresOpt ? vector(f.scoresOpt) : null,
      test: f.scoresTest ? vector(f.scoresTest) : null,
    })),
    config,
  };
}
