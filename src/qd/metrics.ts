/**
 * Per-generation metrics of the archives and of one child's insertions
 * (docs/ALGORITHM.md, "Metrics").
 */
import type { Archive, OfferOutcome, OfferResult } from "./archive.ts";

/** The state of one archive A_k after a child (`archiveMetrics`, `CycleQD.metrics`). */
export interface ArchiveMetrics {
  /** k, the archive's quality task (0-based). */
  task: number;
  /** Filled cells. */
  filled: number;
  /** G^(K−1). */
  cells: number;
  /** filled / cells, in [0, 1]. */
  coverage: number;
  /** Sum of the elites' qualities (score units; not normalised). */
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

/** One child's insertions across the K archives (`childMetrics`, `Tell.metrics`). */
export interface ChildMetrics {
  /** Outcome in each archive, by task index. */
  outcomes: OfferOutcome[];
  /** Archives the child entered (new cell or improved). */
  entered: number;
  /** Archives where it took an empty cell. */
  newCells: number;
  /** Archives where it replaced an elite of lower quality. */
  improved: number;
}

export function childMetrics(results: readonly OfferResult[]): ChildMetrics {
  const outcomes = results.map((r) => r.outcome);
  const newCells = outcomes.filter((o) => o === "new-cell").length;
  const improved = outcomes.filter((o) => o === "improved").length;
  return { outcomes, entered: newCells + improved, newCells, improved };
}
