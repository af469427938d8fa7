/**
 * The CycleQD search as an ask/tell object, in the shape of pyribs' schedulers: `ask` picks
 * the active task, selects parents in its archive and makes a child genome; the caller
 * evaluates the child on all K tasks, outside, and hands the scores to `tell`, which offers
 * the child to every archive (docs/ALGORITHM.md, "The cycle").
 *
 * Contract:
 * - generations count from 1; child g has id K + g − 1 (the seeds are 0…K−1);
 * - child g's draws come from its own generator (the run seed and g only), so a child asked
 *   again after a crash is the same child, whatever else ran meanwhile;
 * - several children may be asked before any is told (W evaluations in flight), and told
 *   in any order; each asked child is told at most once, and a child can only be told if it
 *   was asked (`replay` re-offers a child recorded by an earlier process);
 * - no I/O: given the same asks and scores in the same order, the archives are the same.
 */
import { type Aggregation, aggregate } from "./aggregate.ts";
import {
  Archive,
  type BinRange,
  checkRanges,
  type Elite,
  type OfferResult,
  type PaperRangeOptions,
  paperBinRanges,
} from "./archive.ts";
import { childRng } from "./child-rng.ts";
import { activeTask } from "./cycle.ts";
import { checkGenome, type Genome, type GenomeLayout, seedGenome } from "./genome.ts";
import { type ArchiveMetrics, archiveMetrics, type ChildMetrics, childMetrics } from "./metrics.ts";
import {
  type CrossoverDraws,
  type CrossoverOptions,
  crossover,
  type MutationDraws,
  type MutationOptions,
  mutate,
} from "./operators.ts";
import { type SamplingOptions, type SelectionFallback, selectParents } from "./sampling.ts";

/**
 * Settings of a CycleQD search; the optional ones default to the paper's values
 * (docs/ALGORITHM.md). The `CycleQD` constructor checks them.
 */
export interface CycleQDConfig {
  /** Task names, one per seed expert, in the seeds' order (K ≥ 2). */
  tasks: readonly string[];
  /** The genome layout of the seed factors (its seeds must equal K). */
  layout: GenomeLayout;
  /** The run seed: child g draws from its own generator, a function of (seed, g). */
  seed: number;
  /** G, bins per BC axis (default 15). */
  bins?: number;
  /**
   * Fixed [lo, hi] per task (index = task, in score units); default: the paper's rule from
   * the seeds' scores.
   */
  ranges?: readonly BinRange[];
  /** Margins of the paper's rule (0.85 / 1.15). */
  rangeOptions?: PaperRangeOptions;
  /** Generations per active task before the roles rotate (default 1). */
  flipInterval?: number;
  /** Elite sampling of parents (checked at `ask`). */
  sampling?: SamplingOptions;
  /** Crossover weights ω ~ N(μ, σ²) (checked at `ask`). */
  crossover?: CrossoverOptions;
  /** SVD, Gaussian or no mutation (checked at `ask`). */
  mutation?: MutationOptions;
}

/** One child made by `CycleQD.ask`: its genome and every draw that made it, to evaluate. */
export interface Ask {
  /** Id the child will have in the archives: K + generation − 1. */
  id: number;
  /** 1-based. */
  generation: number;
  /** Active task index q (0-based) and its name. */
  task: number;
  taskName: string;
  /** Ids of the two parents (equal when the only individual was paired with itself). */
  parents: [number, number];
  /** How the second parent was found: `none` (both from A_q) or a fallback. */
  fallback: SelectionFallback;
  /** The child's genome, over the config's layout. */
  genome: Genome;
  /** Crossover ω and mutation draws, as recorded in the run store. */
  draws: { crossover: CrossoverDraws; mutation: MutationDraws };
  /** Milliseconds spent in each step (measured only; they never affect the search). */
  ms: { select: number; crossover: number; mutate: number };
}

/** What `CycleQD.tell` (or `replay`) did with a child: its outcome in every archive. */
export interface Tell {
  /** The child's id, K + generation − 1. */
  id: number;
  /** Outcome in each archive, by task index. */
  outcomes: OfferResult[];
  /** The outcomes again, with counts: archives entered, new cells, improvements. */
  metrics: ChildMetrics;
}

/**
 * The CycleQD search over K archives, ask/tell (contract in this file's header). The
 * constructor throws when `tasks` has fewer than two or repeated names, the layout's seed
 * count differs from K, `seed` is not a safe integer, `bins` or `flipInterval` is not a
 * positive integer, or `ranges` is not one finite [lo, hi] with hi > lo per task.
 */
export class CycleQD {
  readonly tasks: readonly string[];
  readonly layout: GenomeLayout;
  readonly bins: number;
  readonly flipInterval: number;
  readonly seed: number;
  private archiveList: Archive<Genome>[] = [];
  /** Asked and not yet told, by id. */
  private readonly asked = new Map<number, Genome>();
  /** Told or replayed ids. */
  private readonly told = new Set<number>();

  constructor(private readonly config: CycleQDConfig) {
    const { tasks, layout, seed, bins = 15, flipInterval = 1 } = config;
    if (!Array.isArray(tasks) || tasks.length < 2 || !tasks.every((t) => typeof t === "string")) {
      throw new Error("CycleQD: tasks must list at least two task names");
    }
    if (new Set(tasks).size !== tasks.length)
      throw new Error("CycleQD: task names must be distinct");
    if (layout?.seeds !== tasks.length) {
      throw new Error(
        `CycleQD: the layout has ${layout?.seeds} seed experts but there are ${tasks.length} tasks; pass one expert per task, in task order`,
      );
    }
    if (!Number.isSafeInteger(seed))
      throw new Error(`CycleQD: seed must be an integer, got ${seed}`);
    if (!(Number.isInteger(bins) && bins >= 1))
      throw new Error(`CycleQD: bins must be a positive integer, got ${bins}`);
    if (!(Number.isInteger(flipInterval) && flipInterval >= 1)) {
      throw new Error(`CycleQD: flipInterval must be a positive integer, got ${flipInterval}`);
    }
    if (config.ranges) checkRanges("CycleQD", config.ranges, tasks.length);
    this.tasks = [...tasks];
    this.layout = layout;
    this.bins = bins;
    this.flipInterval = flipInterval;
    this.seed = seed;
  }

  get archives(): readonly Archive<Genome>[] {
    return this.archiveList;
  }

  get initialised(): boolean {
    return this.archiveList.length > 0;
  }

  /**
   * Builds the archives (bin ranges from the seeds' scores unless fixed in the config) and
   * offers seed k (id k, genome e_k) to every archive. `seedScores[k][j]` = f_j(θ_k).
   * Returns each seed's outcome per archive. Throws when already initialised, when
   * `seedScores` is not K rows of K finite scores, or (paper's rule) when `rangeOptions` is
   * out of range (lowFactor in (0, 1], highFactor ≥ 1).
   */
  initialise(seedScores: readonly (readonly number[])[]): OfferResult[][] {
    if (this.initialised) throw new Error("CycleQD.initialise: already initialised");
    const K = this.tasks.length;
    if (!Array.isArray(seedScores) || seedScores.length !== K) {
      throw new Error(
        `CycleQD.initialise: needs the scores of all ${K} seed experts, got ${seedScores?.length}`,
      );
    }
    const ranges = this.config.ranges ?? paperBinRanges(seedScores, this.config.rangeOptions);
    this.archiveList = this.tasks.map(
      (_, task) => new Archive<Genome>({ task, numTasks: K, bins: this.bins, ranges }),
    );
    return seedScores.map((scores, k) => this.offerAll(k, seedGenome(this.layout, k), scores));
  }

  /** Id of child `generation` (1-based): K + generation − 1. Throws for generation < 1. */
  idOf(generation: number): number {
    if (!(Number.isSafeInteger(generation) && generation >= 1)) {
      throw new Error(`CycleQD: generations count from 1, got ${generation}`);
    }
    return this.tasks.length + generation - 1;
  }

  /**
   * Child `generation`: selects parents in the active task's archive as it is now, crosses
   * them over and mutates the result, with the child's own draws. Asking a child again
   * before it is told returns the same child. Throws before `initialise`, for a generation
   * that is not an integer ≥ 1, for a child already told or replayed, and for invalid
   * sampling, crossover or mutation options.
   */
  ask(generation: number): Ask {
    if (!this.initialised)
      throw new Error("CycleQD.ask: call initialise with the seeds' scores first");
    const id = this.idOf(generation);
    if (this.told.has(id)) throw new Error(`CycleQD.ask: child ${generation} was already told`);
    const rng = childRng(this.seed, generation);
    const q = activeTask(generation, this.tasks.length, this.flipInterval);
    const t0 = performance.now();
    const { parents, fallback } = selectParents(this.archiveList, q, rng, this.config.sampling);
    const t1 = performance.now();
    const x = crossover(parents[0].payload, parents[1].payload, rng, this.config.crossover);
    const t2 = performance.now();
    const m = mutate(x.child, this.layout, q, rng, this.config.mutation);
    const t3 = performance.now();
    this.asked.set(id, m.child);
    return {
      id,
      generation,
      task: q,
      taskName: this.tasks[q],
      parents: [parents[0].id, parents[1].id],
      fallback,
      genome: m.child,
      draws: { crossover: x.draws, mutation: m.draws },
      ms: { select: t1 - t0, crossover: t2 - t1, mutate: t3 - t2 },
    };
  }

  /**
   * Offers an asked child, with its scores on every task (by index; pass rates in [0, 1] in
   * a run), to all K archives. Throws before `initialise`, for a child never asked or
   * already told, and when `scores` is not K finite numbers; the child then stays asked and
   * the archives unchanged.
   */
  tell(ask: Pick<Ask, "id">, scores: readonly number[]): Tell {
    if (!this.initialised) throw new Error("CycleQD.tell: call initialise first");
    const genome = this.asked.get(ask?.id);
    if (genome === undefined) {
      throw new Error(
        this.told.has(ask?.id)
          ? `CycleQD.tell: child ${ask.id} was already told`
          : `CycleQD.tell: child ${ask?.id} was never asked`,
      );
    }
    const outcomes = this.offerAll(ask.id, genome, scores);
    this.asked.delete(ask.id);
    this.told.add(ask.id);
    return { id: ask.id, outcomes, metrics: childMetrics(outcomes) };
  }

  /**
   * Re-offers child `generation` as an earlier process recorded it (its genome and scores),
   * to rebuild the archives on resume. Replays must come in the order the children were told.
   * Throws before `initialise`, for a generation < 1, for a child already asked, told or
   * replayed, for a genome that does not fit the layout, and for scores that are not K
   * finite numbers.
   */
  replay(generation: number, genome: Genome, scores: readonly number[]): Tell {
    if (!this.initialised) throw new Error("CycleQD.replay: call initialise first");
    const id = this.idOf(generation);
    if (this.told.has(id) || this.asked.has(id)) {
      throw new Error(`CycleQD.replay: child ${generation} is already in the search`);
    }
    checkGenome("CycleQD.replay", genome, this.layout);
    const outcomes = this.offerAll(id, genome, scores);
    this.told.add(id);
    return { id, outcomes, metrics: childMetrics(outcomes) };
  }

  /** Coverage, QD score and best quality of each archive, by task index. */
  metrics(): ArchiveMetrics[] {
    return this.archiveList.map(archiveMetrics);
  }

  /**
   * The final model: softmax-weighted merge of each archive's best elite (`aggregate`).
   * Throws before `initialise` (and, as seeds fill every archive, not after it).
   */
  aggregate(): Aggregation {
    if (!this.initialised)
      throw new Error("CycleQD.aggregate: nothing to aggregate before initialise");
    return aggregate(this.archiveList);
  }

  /**
   * The elite with the highest mean score over all tasks (lowest id on a tie). Throws when
   * the archives are empty, that is before `initialise`.
   */
  bestMeanElite(): Elite<Genome> {
    let best: Elite<Genome> | undefined;
    let bestMean = Number.NEGATIVE_INFINITY;
    for (const a of this.archiveList) {
      for (const e of a.elites()) {
        const mean = e.scores.reduce((s, x) => s + x, 0) / e.scores.length;
        if (mean > bestMean || (mean === bestMean && best && e.id < best.id)) {
          best = e;
          bestMean = mean;
        }
      }
    }
    if (!best) throw new Error("CycleQD.bestMeanElite: the archives are empty");
    return best;
  }

  private offerAll(id: number, genome: Genome, scores: readonly number[]): OfferResult[] {
    return this.archiveList.map((a) => a.offer({ id, scores, payload: genome }));
  }
}
