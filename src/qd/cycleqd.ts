/**
 * The CycleQD search as an ask/tell object, in the shape of pyribs' schedulers: `ask` picks
 * the active task, selects parents in its archive and makes a child genome; the caller
 * evaluates the child on all K tasks and hands the scores to `tell`, which offers the child
 * to every archive. No I/O and no clock: randomness comes only from the Rng passed in, so a
 * run with one worker is a pure function of its seed and its scores.
 */
import type { Rng } from "../util/rng.ts";
import { type Aggregation, aggregate } from "./aggregate.ts";
import {
  Archive,
  type ArchiveJson,
  type BinRange,
  checkRanges,
  type OfferResult,
  type PaperRangeOptions,
  paperBinRanges,
} from "./archive.ts";
import { activeTask } from "./cycle.ts";
import {
  checkGenome,
  type Genome,
  type GenomeJson,
  type GenomeLayout,
  genomeFromJSON,
  genomeToJSON,
  seedGenome,
} from "./genome.ts";
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

export interface CycleQDConfig {
  /** Task names, one per seed expert, in the seeds' order (K ≥ 2). */
  tasks: readonly string[];
  /** The genome layout of the seed factors (its seeds must equal K). */
  layout: GenomeLayout;
  /** G, bins per BC axis (default 15). */
  bins?: number;
  /** Fixed [lo, hi] per task; default: the paper's rule from the seeds' scores. */
  ranges?: readonly BinRange[];
  /** Margins of the paper's rule (0.85 / 1.15). */
  rangeOptions?: PaperRangeOptions;
  /** Generations per active task before the roles rotate (default 1). */
  flipInterval?: number;
  sampling?: SamplingOptions;
  crossover?: CrossoverOptions;
  mutation?: MutationOptions;
}

export interface Ask {
  /** Id the child will have in the archives. */
  id: number;
  generation: number;
  /** Active task index q and its name. */
  task: number;
  taskName: string;
  parents: [number, number];
  fallback: SelectionFallback;
  genome: Genome;
  draws: { crossover: CrossoverDraws; mutation: MutationDraws };
}

export interface Tell {
  id: number;
  /** Outcome in each archive, by task index. */
  outcomes: OfferResult[];
  metrics: ChildMetrics;
}

export interface CycleQDState {
  layout: string;
  tasks: string[];
  nextId: number;
  archives: ArchiveJson[];
}

export class CycleQD {
  readonly tasks: readonly string[];
  readonly layout: GenomeLayout;
  readonly bins: number;
  readonly flipInterval: number;
  private archiveList: Archive<Genome>[] = [];
  private nextId = 0;

  constructor(
    private readonly config: CycleQDConfig,
    private readonly rng: Rng,
  ) {
    const { tasks, layout, bins = 15, flipInterval = 1 } = config;
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
    if (!(Number.isInteger(bins) && bins >= 1))
      throw new Error(`CycleQD: bins must be a positive integer, got ${bins}`);
    if (!(Number.isInteger(flipInterval) && flipInterval >= 1)) {
      throw new Error(`CycleQD: flipInterval must be a positive integer, got ${flipInterval}`);
    }
    if (config.ranges) checkRanges("CycleQD", config.ranges, tasks.length);
    if (typeof rng?.uniform !== "function") throw new Error("CycleQD: pass a seeded Rng");
    this.tasks = [...tasks];
    this.layout = layout;
    this.bins = bins;
    this.flipInterval = flipInterval;
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
    this.nextId = K;
    return seedScores.map((scores, k) => this.offerAll(k, seedGenome(this.layout, k), scores));
  }

  /** Selects parents in the active task's archive and returns the child genome to evaluate. */
  ask(generation: number): Ask {
    if (!this.initialised)
      throw new Error("CycleQD.ask: call initialise with the seeds' scores first");
    const q = activeTask(generation, this.tasks.length, this.flipInterval);
    const { parents, fallback } = selectParents(
      this.archiveList,
      q,
      this.rng,
      this.config.sampling,
    );
    const x = crossover(parents[0].payload, parents[1].payload, this.rng, this.config.crossover);
    const m = mutate(x.child, this.layout, q, this.rng, this.config.mutation);
    return {
      id: this.nextId++,
      generation,
      task: q,
      taskName: this.tasks[q],
      parents: [parents[0].id, parents[1].id],
      fallback,
      genome: m.child,
      draws: { crossover: x.draws, mutation: m.draws },
    };
  }

  /** Offers an evaluated child (scores on every task, by index) to all K archives. */
  tell(child: { id: number; genome: Genome }, scores: readonly number[]): Tell {
    if (!this.initialised) throw new Error("CycleQD.tell: call initialise first");
    if (!(Number.isSafeInteger(child?.id) && child.id >= 0))
      throw new Error("CycleQD.tell: the child needs its id from ask");
    checkGenome("CycleQD.tell", child.genome, this.layout);
    const outcomes = this.offerAll(child.id, child.genome, scores);
    return { id: child.id, outcomes, metrics: childMetrics(outcomes) };
  }

  metrics(): ArchiveMetrics[] {
    return this.archiveList.map(archiveMetrics);
  }

  /** The final model: softmax-weighted merge of each archive's best elite. */
  aggregate(): Aggregation {
    if (!this.initialised)
      throw new Error("CycleQD.aggregate: nothing to aggregate before initialise");
    return aggregate(this.archiveList);
  }

  /** The archives and id counter as JSON (genomes exact, as base64 float64). */
  toJSON(): CycleQDState {
    return {
      layout: this.layout.id,
      tasks: [...this.tasks],
      nextId: this.nextId,
      archives: this.archiveList.map((a) => a.toJSON((g) => genomeToJSON(g, this.layout))),
    };
  }

  /** A search continued from `toJSON`; the Rng's state is the caller's to restore. */
  static restore(config: CycleQDConfig, rng: Rng, state: CycleQDState): CycleQD {
    const s = new CycleQD(config, rng);
    if (state?.layout !== config.layout.id) {
      throw new Error(
        "CycleQD.restore: the saved search used another genome layout (seeds, tensors or rank)",
      );
    }
    if (JSON.stringify(state.tasks) !== JSON.stringify(s.tasks)) {
      throw new Error(
        `CycleQD.restore: the saved search has tasks ${state.tasks.join(", ")}, not ${s.tasks.join(", ")}`,
      );
    }
    s.archiveList = state.archives.map((a) =>
      Archive.fromJSON(a, (p) => genomeFromJSON(p as GenomeJson, config.layout)),
    );
    s.archiveList.forEach((a, k) => {
      if (a.task !== k || a.bins !== s.bins)
        throw new Error(`CycleQD.restore: archive ${k} does not match the config`);
    });
    s.nextId = state.nextId;
    return s;
  }

  private offerAll(id: number, genome: Genome, scores: readonly number[]): OfferResult[] {
    return this.archiveList.map((a) => a.offer({ id, scores, payload: genome }));
  }
}
