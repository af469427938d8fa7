/**
 * Models out of a run: the aggregate of the archives' current best elites (docs/ALGORITHM.md,
 * "Model aggregation") or any single elite, rebuilt exactly from its genome and written as GGUF
 * (and as a Hugging Face safetensors folder when asked). Works on finished and on
 * interrupted runs, and while a run is in progress (it only reads).
 */
import { exportHfSafetensors, loadGguf } from "../llm/export.ts";
import type { SeedFactors } from "../materialise/factors.ts";
import { materialiseGguf } from "../materialise/materialise.ts";
import { softmax } from "../qd/aggregate.ts";
import { betterElite } from "../qd/archive.ts";
import { combineGenomes, decodeGenome, type Genome } from "../qd/genome.ts";
import { openGguf } from "../tensors/gguf.ts";
import { runFactors } from "./seed-factors.ts";
import { type EliteRow, RunStore } from "./store.ts";

export interface WriteModelOptions {
  /** Also write a Hugging Face folder (config.json + model.safetensors) here. */
  safetensors?: string;
}

/** A model written by `aggregateRun` or `exportElite`: where it went and what it merges. */
export interface WrittenModel {
  /** Path of the GGUF file written. */
  gguf: string;
  /** Path of the Hugging Face folder, when one was asked for. */
  safetensors?: string;
  /**
   * Individuals the model was built from: id (seeds 0..K−1, child g is K + g − 1), the
   * archive's skill name, and its weight (β_k for an aggregate, summing to 1; 1 for an elite).
   */
  sources: { id: number; archive?: string; weight: number }[];
}

/**
 * Writes `genome` as a GGUF model at `out` (the base at `basePath` plus its task vectors),
 * and as a Hugging Face folder at `hfDir` when given.
 */
export async function writeGenomeModel(
  genome: Genome,
  basePath: string,
  factors: SeedFactors,
  out: string,
  hfDir?: string,
): Promise<void> {
  const base = await openGguf(basePath);
  try {
    await materialiseGguf(out, genome, base, factors);
  } finally {
    await base.close();
  }
  if (hfDir) {
    const { config, params } = await loadGguf(out);
    await exportHfSafetensors(hfDir, config, params);
  }
}

/** A run opened read-only with what is needed to rebuild any of its individuals. */
class RunModels {
  private constructor(
    readonly store: RunStore,
    readonly base: string,
    readonly factors: SeedFactors,
  ) {}

  static async open(dir: string): Promise<RunModels> {
    const store = await RunStore.open(dir, { readonly: true });
    try {
      const config = store.config;
      const inputs = store.inputs();
      const path = (role: string) => {
        const row = inputs.find((r) => r.role === role);
        if (!row)
          throw new Error(`run ${dir} has not recorded its ${role} model yet; resume it first`);
        return row.gguf;
      };
      const factors = await runFactors(config, path("base"), config.skills.map(path));
      return new RunModels(store, path("base"), factors);
    } catch (e) {
      store.close();
      throw e;
    }
  }

  genome(id: number): Genome {
    const K = this.store.config.skills.length;
    const bytes =
      id < K
        ? this.store.seeds().find((s) => s.seed === id)?.genome
        : this.store.children().find((c) => c.id === id)?.genome;
    if (!bytes) throw new Error(`run ${this.store.dir} has no individual with id ${id}`);
    return decodeGenome(bytes, this.factors.layout);
  }

  private scoresById?: Map<number, number[]>;

  /** An individual's scores on every task, in task order. */
  scores(id: number): number[] {
    if (!this.scoresById) {
      const skills = this.store.config.skills;
      const all = [
        ...this.store.seeds().map((s) => [s.seed, s.scores] as const),
        ...this.store.children({ withGenomes: false }).map((c) => [c.id, c.scores] as const),
      ];
      this.scoresById = new Map(all.map(([i, sc]) => [i, skills.map((n) => sc[n].score)]));
    }
    const found = this.scoresById.get(id);
    if (!found) throw new Error(`run ${this.store.dir} has no individual with id ${id}`);
    return found;
  }

  async close(): Promise<void> {
    await this.factors.close();
    this.store.close();
  }
}

/** The best elite of each archive (`betterElite`: as the run's own final aggregate). */
function bestElites(run: RunModels, K: number): EliteRow[] {
  const rows = run.store.elites();
  const best: EliteRow[] = [];
  for (let k = 0; k < K; k++) {
    const mine = rows.filter((r) => r.archive === k);
    if (mine.length === 0) throw new Error(`archive ${k} is empty; the run has not started yet`);
    const withScores = mine.map((r) => ({ row: r, id: r.id, scores: run.scores(r.id) }));
    best.push(withScores.reduce((x, y) => (betterElite(y, x, k) ? y : x)).row);
  }
  return best;
}

/**
 * θ_agg = θ₀ + Σ_k β_k τ_k*, β = softmax of each archive's best quality (`betterElite`),
 * of the run in `dir` as it is now, written to `out` (GGUF path). Only reads the run; the
 * seed factors come from the cache or are computed. Throws when `dir` is not a run, the run
 * has not recorded its models or any archive is empty yet, an input model is missing, or
 * writing fails.
 */
export async function aggregateRun(
  dir: string,
  out: string,
  opts: WriteModelOptions = {},
): Promise<WrittenModel> {
  const run = await RunModels.open(dir);
  try {
    const skills = run.store.config.skills;
    const elites = bestElites(run, skills.length);
    const beta = softmax(elites.map((e) => e.quality));
    const genome = combineGenomes(elites.map((e, k) => [beta[k], run.genome(e.id)] as const));
    await writeGenomeModel(genome, run.base, run.factors, out, opts.safetensors);
    return {
      gguf: out,
      safetensors: opts.safetensors,
      sources: elites.map((e, k) => ({ id: e.id, archive: skills[e.archive], weight: beta[k] })),
    };
  } finally {
    await run.close();
  }
}

/**
 * One elite, named `ARCHIVE:CELL` where ARCHIVE is a skill name or index and CELL is the
 * flat cell index or its bin coordinates ("3,7"), as `cycleqd status` shows them; written
 * like `aggregateRun`. Throws, besides `aggregateRun`'s cases, for a malformed spec, an
 * unknown archive, a cell outside the grid, or an empty cell.
 */
export async function exportElite(
  dir: string,
  spec: string,
  out: string,
  opts: WriteModelOptions = {},
): Promise<WrittenModel> {
  const run = await RunModels.open(dir);
  try {
    const { skills, archive } = run.store.config;
    const [archivePart, cellPart] = spec.split(":");
    if (archivePart === undefined || cellPart === undefined) {
      throw new Error(`--elite must look like ARCHIVE:CELL (e.g. code:3,7 or 0:52), got "${spec}"`);
    }
    const k = /^\d+$/.test(archivePart) ? Number(archivePart) : skills.indexOf(archivePart);
    if (!(k >= 0 && k < skills.length)) {
      throw new Error(
        `unknown archive "${archivePart}"; use one of ${skills.join(", ")} or 0–${skills.length - 1}`,
      );
    }
    const coords = cellPart.split(",").map(Number);
    // A flat index runs over the whole grid (bins^(K−1) cells); each coordinate over one axis.
    const limit = coords.length === 1 ? archive.bins ** (skills.length - 1) : archive.bins;
    if (coords.some((c) => !Number.isInteger(c) || c < 0 || c >= limit)) {
      throw new Error(
        `cell "${cellPart}" is not a cell index below ${archive.bins ** (skills.length - 1)} ` +
          `or bin coordinates below ${archive.bins}`,
      );
    }
    const cell =
      coords.length === 1 ? coords[0] : coords.reduce((acc, b) => acc * archive.bins + b, 0);
    const row = run.store.elites().find((r) => r.archive === k && r.cell === cell);
    if (!row)
      throw new Error(
        `archive ${skills[k]} has no elite in cell ${cellPart}; see \`cycleqd status ${dir}\``,
      );
    await writeGenomeModel(run.genome(row.id), run.base, run.factors, out, opts.safetensors);
    return {
      gguf: out,
      safetensors: opts.safetensors,
      sources: [{ id: row.id, archive: skills[k], weight: 1 }],
    };
  } finally {
    await run.close();
  }
}
