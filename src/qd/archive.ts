/**
 * MAP-Elites grid archive A_k of CycleQD: quality is the score on task k, the behaviour
 * characteristics (BCs) are the scores on the other K−1 tasks, each cut into G equal bins
 * (docs/ALGORITHM.md, "Archives").
 *
 * Cells are flat indices in [0, G^(K−1)): row-major over the BC axes in increasing task
 * order, so for K = 3 and A_0 the cell of bins (b₁, b₂) is b₁·G + b₂. `cellKey` gives the
 * same cell as the string "b₁,b₂" for display and logs.
 */

/** [lo, hi] of one task's score axis. */
export type BinRange = readonly [lo: number, hi: number];

/** One evaluated model: its id, its score on every task (index = task), and what it is. */
export interface Individual<T> {
  id: number;
  scores: readonly number[];
  payload: T;
}

/** An individual that holds a cell. */
export interface Elite<T> extends Individual<T> {
  cell: number;
}

/**
 * What `Archive.offer` did with an individual: `new-cell` (it took an empty cell),
 * `improved` (it replaced an incumbent of strictly lower quality) or `rejected` (the
 * incumbent's quality was at least as high; the archive is unchanged).
 */
export type OfferOutcome = "new-cell" | "improved" | "rejected";

/** The result of one `Archive.offer`: the outcome, the cell, and the incumbent, if any. */
export interface OfferResult {
  outcome: OfferOutcome;
  /** Flat cell index in [0, G^(K−1)) that the individual's BCs fall in (see `Archive`). */
  cell: number;
  /** Id of the elite that was replaced ("improved") or that kept its cell ("rejected"). */
  incumbent?: number;
}

export interface ArchiveConfig {
  /** Index of the task whose score is the quality. */
  task: number;
  /** K, the number of tasks. */
  numTasks: number;
  /** G, bins per BC axis (paper: 15). */
  bins: number;
  /** One range per task (index = task); the archive uses those of its BC axes. */
  ranges: readonly BinRange[];
}

export interface PaperRangeOptions {
  /** lo = lowFactor × the weakest seed's score (paper: 0.85). */
  lowFactor?: number;
  /** hi = highFactor × the strongest seed's score (paper: 1.15). */
  highFactor?: number;
}

/**
 * The paper's bin ranges from the seed experts' scores (`seedScores[seed][task]`):
 * lo_j = 0.85 × min over seeds, hi_j = 1.15 × max over seeds. For negative scores the
 * margins are taken on |score| so lo stays below and hi above. When every seed scores the
 * same on a task (for scores in [0, 1] that means all 0) the range would be empty; hi is
 * then lo + 1, the width of the whole score scale, so the axis still splits children.
 */
export function paperBinRanges(
  seedScores: readonly (readonly number[])[],
  opts: PaperRangeOptions = {},
): BinRange[] {
  const { lowFactor = 0.85, highFactor = 1.15 } = opts;
  if (!(lowFactor > 0 && lowFactor <= 1)) {
    throw new Error(`paperBinRanges: lowFactor must be in (0, 1], got ${lowFactor}`);
  }
  if (!(highFactor >= 1 && Number.isFinite(highFactor))) {
    throw new Error(`paperBinRanges: highFactor must be a finite number ≥ 1, got ${highFactor}`);
  }
  if (!Array.isArray(seedScores) || seedScores.length === 0) {
    throw new Error(
      "paperBinRanges: pass the scores of at least one seed (seedScores[seed][task])",
    );
  }
  const k = seedScores[0].length;
  seedScores.forEach((row, s) => {
    checkScores(`paperBinRanges: seed ${s}`, row, k);
  });
  const ranges: BinRange[] = [];
  for (let j = 0; j < k; j++) {
    const col = seedScores.map((row) => row[j]);
    const min = Math.min(...col);
    const max = Math.max(...col);
    const lo = min - (1 - lowFactor) * Math.abs(min);
    let hi = max + (highFactor - 1) * Math.abs(max);
    if (!(hi > lo)) hi = lo + 1;
    ranges.push([lo, hi]);
  }
  return ranges;
}

/** Bin of `x` on an axis [lo, hi] cut into `bins` equal parts; outside values clamp. */
export function binIndex(x: number, range: BinRange, bins: number): number {
  if (!Number.isFinite(x)) throw new Error(`binIndex: score must be finite, got ${x}`);
  const [lo, hi] = range;
  const b = Math.floor(((x - lo) / (hi - lo)) * bins);
  return Math.min(bins - 1, Math.max(0, b));
}

/** Checks `ranges` (one per task) and returns clean copies. */
export function checkRanges(where: string, ranges: readonly BinRange[], k: number): BinRange[] {
  if (!Array.isArray(ranges) || ranges.length !== k) {
    throw new Error(
      `${where}: ranges must list one [lo, hi] per task (${k}), got ${String(ranges?.length)}`,
    );
  }
  return ranges.map((r, j) => {
    if (!Array.isArray(r) || r.length !== 2) {
      throw new Error(`${where}: range of task ${j} must be [lo, hi]`);
    }
    const [lo, hi] = r;
    if (!(Number.isFinite(lo) && Number.isFinite(hi) && hi > lo)) {
      throw new Error(
        `${where}: range of task ${j} must be finite with hi > lo, got [${lo}, ${hi}]`,
      );
    }
    return [lo, hi] as const;
  });
}

function checkScores(where: string, scores: readonly number[], k: number): void {
  if (!Array.isArray(scores) || scores.length !== k) {
    throw new Error(
      `${where}: needs a score for each of the ${k} tasks, got ${String(scores?.length)}`,
    );
  }
  const bad = scores.findIndex((x) => typeof x !== "number" || !Number.isFinite(x));
  if (bad >= 0)
    throw new Error(`${where}: score of task ${bad} is ${scores[bad]}, not a finite number`);
}

/**
 * Whether `a` is a better elite than `b` for task `task`: a higher score on the task, or an
 * equal one and a higher mean score over all tasks, or both equal and a lower id. Scores on a
 * split of a few dozen problems tie often, and the final model merges one best elite per
 * archive, so a tie goes to the elite that holds more of the other skills.
 */
export function betterElite(
  a: { id: number; scores: readonly number[] },
  b: { id: number; scores: readonly number[] },
  task: number,
): boolean {
  if (a.scores[task] !== b.scores[task]) return a.scores[task] > b.scores[task];
  const mean = (s: readonly number[]) => s.reduce((x, y) => x + y, 0) / s.length;
  const ma = mean(a.scores);
  const mb = mean(b.scores);
  return ma !== mb ? ma > mb : a.id < b.id;
}

/**
 * One MAP-Elites grid A_k over K tasks: at most one elite per cell, the cell given by the
 * K − 1 BC scores and the elite kept by quality (the score on `task`). `T` is the payload
 * each individual carries (a `Genome` in a run). Scores are any finite numbers (pass rates
 * in [0, 1] in a run); scores outside a BC axis's range fall into its first or last bin.
 * The constructor throws when `numTasks` is not an integer ≥ 2, `task` is not in
 * 0..K−1, `bins` is not a positive integer, the grid would exceed 2^32 cells, or `ranges`
 * does not give one finite [lo, hi] with hi > lo per task. Methods taking scores throw
 * unless they are K finite numbers; methods taking a cell throw for an index outside the
 * grid.
 */
export class Archive<T> {
  /** k: index (0-based) of the task whose score is the quality. */
  readonly task: number;
  readonly numTasks: number;
  readonly bins: number;
  readonly ranges: readonly BinRange[];
  /** Task indices of the BC axes, in cell-index order. */
  readonly bcTasks: readonly number[];
  /** G^(K−1), the number of cells. */
  readonly numCells: number;
  private readonly cells = new Map<number, Elite<T>>();

  constructor(config: ArchiveConfig) {
    const { task, numTasks, bins } = config;
    if (!(Number.isInteger(numTasks) && numTasks >= 2)) {
      throw new Error(`Archive: numTasks must be an integer ≥ 2, got ${numTasks}`);
    }
    if (!(Number.isInteger(task) && task >= 0 && task < numTasks)) {
      throw new Error(`Archive: task must be an integer in 0..${numTasks - 1}, got ${task}`);
    }
    if (!(Number.isInteger(bins) && bins >= 1)) {
      throw new Error(`Archive: bins must be a positive integer, got ${bins}`);
    }
    const numCells = bins ** (numTasks - 1);
    if (!Number.isSafeInteger(numCells) || numCells > 2 ** 32) {
      throw new Error(`Archive: ${bins}^${numTasks - 1} cells is too many; use fewer bins`);
    }
    this.task = task;
    this.numTasks = numTasks;
    this.bins = bins;
    this.ranges = checkRanges("Archive", config.ranges, numTasks);
    this.bcTasks = Array.from({ length: numTasks }, (_, j) => j).filter((j) => j !== task);
    this.numCells = numCells;
  }

  /** Number of filled cells. */
  get size(): number {
    return this.cells.size;
  }

  /** The cell an individual with these scores falls in. */
  cellOf(scores: readonly number[]): number {
    checkScores(`Archive ${this.task}`, scores, this.numTasks);
    let cell = 0;
    for (const j of this.bcTasks)
      cell = cell * this.bins + binIndex(scores[j], this.ranges[j], this.bins);
    return cell;
  }

  /** Bin per BC axis of a flat cell index. */
  cellCoords(cell: number): number[] {
    this.checkCell(cell);
    const out = new Array<number>(this.bcTasks.length);
    for (let i = out.length - 1; i >= 0; i--) {
      out[i] = cell % this.bins;
      cell = Math.floor(cell / this.bins);
    }
    return out;
  }

  /** The cell as "b₁,b₂,…" (bins of the BC axes in task order). */
  cellKey(cell: number): string {
    return this.cellCoords(cell).join(",");
  }

  /** The elite in a cell, or undefined when the cell is empty (no check of `cell`). */
  get(cell: number): Elite<T> | undefined {
    return this.cells.get(cell);
  }

  /** Elites in cell order. */
  elites(): Elite<T>[] {
    return [...this.cells.values()].sort((x, y) => x.cell - y.cell);
  }

  /**
   * The best elite: the highest quality; among equal qualities the highest mean score over
   * all tasks, then the lowest id (`betterElite`). Undefined for an empty archive.
   */
  best(): Elite<T> | undefined {
    let best: Elite<T> | undefined;
    for (const e of this.elites()) if (!best || betterElite(e, best, this.task)) best = e;
    return best;
  }

  /** The individual's quality in this archive: its score on `task`. */
  quality(ind: Individual<T>): number {
    return ind.scores[this.task];
  }

  /**
   * Offers an individual: it takes an empty cell, or replaces the incumbent only when its
   * quality is strictly higher (a tie keeps the incumbent). The archive stores a copy of
   * the scores and the payload by reference. Throws when `ind.id` is not a safe integer or
   * `ind.scores` is not K finite numbers; the archive is then unchanged.
   */
  offer(ind: Individual<T>): OfferResult {
    if (!Number.isSafeInteger(ind?.id))
      throw new Error("Archive.offer: individual needs an integer id");
    const cell = this.cellOf(ind.scores);
    const incumbent = this.cells.get(cell);
    const elite: Elite<T> = { id: ind.id, scores: [...ind.scores], payload: ind.payload, cell };
    if (!incumbent) {
      this.cells.set(cell, elite);
      return { outcome: "new-cell", cell };
    }
    if (this.quality(ind) > this.quality(incumbent)) {
      this.cells.set(cell, elite);
      return { outcome: "improved", cell, incumbent: incumbent.id };
    }
    return { outcome: "rejected", cell, incumbent: incumbent.id };
  }

  private checkCell(cell: number): void {
    if (!(Number.isInteger(cell) && cell >= 0 && cell < this.numCells)) {
      throw new Error(`Archive: cell must be an integer in 0..${this.numCells - 1}, got ${cell}`);
    }
  }
}
