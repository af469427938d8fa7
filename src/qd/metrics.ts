/**
 * Per-generation metrics of the archives and of one child's insertions
 * (docs/ALGORITHM.md, "Metrics").
 */
import type { Archive, OfferOutcome, OfferResult } from "./archive.ts";

export interface ArchiveMetrics {
  task: number;
  /** Filled cells. */
  filled: number;
  /** G^(K−1). */
  cells: number;
  /** filled / cells. */
  coverage: number;
  /** Sum of the elites' qualities. */
  qdScore: number;
  /** Highest quality, or null for an empty archive. */
  bestQuality: number | null;
}

export function archiveMetrics<T>(archive: Archive<T>): ArchiveMetrics {
  let qdScore = 0;
  let best: number | null = null;
  for (const e of archive.elites()) {
    const q = archive.quality(e);
    qdScore += q;
    if (best === null || q > best) best = q;
  }
  return {
    task: archive.task,
    filled: archive.size,
    cells: archive.numCells,
    coverage: archive.size / archive.numCells,
    qdScore,
    bestQuality: best,
  };
}

export interface ChildMetrics {
  /** Outcome in each archive, by task index. */
  outcomes: OfferOutcome[];
  /** Archives the child entered (new cell or improved). */
  entered: number;
  newCells: number;
  improved: number;
}

export function childMetrics(results: readonly OfferResult[]): ChildMetrics {
  const outcomes = results.map((r) => r.outcome);
  const newCells = outcomes.filter((o) => o === "new-cell").length;
  const improved = outcomes.filter((o) => o === "improved").length;
  return { outcomes, entered: newCells + improved, newCells, improved };
}
