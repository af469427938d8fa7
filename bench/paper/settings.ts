/**
 * What the paper bench runs with: one settings object built from the run config's defaults,
 * the zoo, an optional `--settings FILE.json` (a partial run config merged over it) and the
 * flags; and the cumulative ablation of the paper as config changes.
 */
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import {
  defaultConfig,
  type RunConfig,
  smallBudgetConfig,
  validateConfig,
} from "../../src/run/config.ts";
import { createMiniSkills } from "../../src/skills/index.ts";
import { BASE_NAME, modelPath, type ZooCard } from "../../src/zoo/card.ts";

export const USAGE = `Usage: npm run bench:paper -- [--out DIR] [--zoo DIR] [--seeds 0,1,2] [--children N]
                             [--test N] [--settings FILE.json] [--quick]

The CycleQD paper's main table and ablations in miniature, on a zoo (default: the shipped one).
Every row is scored on the held-out test split; the search optimises on opt.

  --out DIR         where runs, models and the report go (default bench-out/paper); a rerun
                    continues unfinished runs and reuses finished ones
  --zoo DIR         the zoo: a base and one expert per skill, with zoo.json (default zoo/)
  --seeds LIST      seeds of the searches and of DARE's drop masks (default 0,1,2)
  --children N      children per search, the same for every variant (default 32, the demo's)
  --test N          test problems per skill (default 192, or as many as the skills have)
  --settings FILE   a partial run config (JSON) merged over the defaults: crossover sigma,
                    mutation wMax, archive ranges and bins, split.opt, engine, ...
  --quick           checks that every row is produced: 1 seed, 3 children, 8 problems per
                    skill, a few updates of mixed fine-tuning`;

/** A mistake in the flags or the settings file: printed without a stack trace. */
export class UsageError extends Error {}

export interface PaperArgs {
  out: string;
  zoo: string;
  quick: boolean;
  seeds?: number[];
  children?: number;
  test?: number;
  settingsFile?: string;
  help: boolean;
}

const parse = (argv: string[]) =>
  parseArgs({
    args: argv,
    options: {
      out: { type: "string" },
      zoo: { type: "string" },
      seeds: { type: "string" },
      children: { type: "string" },
      test: { type: "string" },
      settings: { type: "string" },
      quick: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });

export function parsePaperArgs(argv: string[]): PaperArgs {
  let values: ReturnType<typeof parse>["values"];
  try {
    values = parse(argv).values;
  } catch (e) {
    throw new UsageError(`${(e as Error).message}\n\n${USAGE}`);
  }
  const int = (name: string, v: string | undefined, min: number) => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!(Number.isInteger(n) && n >= min)) {
      throw new UsageError(`--${name} must be an integer ≥ ${min}, got "${v}"`);
    }
    return n;
  };
  let seeds: number[] | undefined;
  if (values.seeds !== undefined) {
    seeds = values.seeds.split(",").map((s) => int("seeds", s.trim(), 0) as number);
    if (seeds.length === 0 || new Set(seeds).size !== seeds.length) {
      throw new UsageError(`--seeds must list distinct seeds, e.g. 0,1,2; got "${values.seeds}"`);
    }
  }
  return {
    out: resolve(values.out ?? "bench-out/paper"),
    zoo: values.zoo === undefined ? "" : resolve(values.zoo),
    quick: values.quick ?? false,
    seeds,
    children: int("children", values.children, 1),
    test: int("test", values.test, 1),
    settingsFile: values.settings,
    help: values.help ?? false,
  };
}

export interface PaperSettings {
  quick: boolean;
  seeds: number[];
  /** Test problems per skill, for every row. */
  testSize: number;
  testSizeRequested: number;
  /** The config every search starts from; a variant and a seed are applied on top. */
  run: RunConfig;
  /** Updates of the mixed-data fine-tune; null: the experts' summed updates. */
  mixedSteps: number | null;
  /** Resamples and seed of the paired bootstrap. */
  bootstrap: { resamples: number; seed: number };
}

const QUICK = { seeds: [0], children: 3, opt: 8, test: 8, mixedSteps: 4 };
export const DEFAULT_SEEDS = [0, 1, 2];
export const DEFAULT_TEST = 192;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === "object" && !Array.isArray(v);

/** `over` merged into `base`: mappings recursively, anything else replaced. */
export function deepMerge(base: unknown, over: unknown): unknown {
  if (!(isObj(base) && isObj(over))) return over === undefined ? base : over;
  const out: Obj = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = deepMerge(base[k], v);
  return out;
}

/** The largest test split (≤ requested) every skill can draw distinct problems for. */
export function availableTestSize(requested: number, skillSeed: number, skills: string[]): number {
  const fits = (n: number) =>
    createMiniSkills({ seed: skillSeed, sizes: { test: n } })
      .filter((s) => skills.includes(s.name))
      .every((s) => {
        try {
          s.problems("test");
          return true;
        } catch {
          return false;
        }
      });
  if (fits(requested)) return requested;
  let lo = 0;
  let hi = requested;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (fits(mid)) lo = mid;
    else hi = mid;
  }
  return lo;
}

export async function resolveSettings(
  args: PaperArgs,
  zooDir: string,
  card: ZooCard,
): Promise<PaperSettings> {
  let file: unknown = {};
  if (args.settingsFile) {
    const text = await readFile(args.settingsFile, "utf8");
    try {
      file = JSON.parse(text);
    } catch (e) {
      throw new UsageError(`${args.settingsFile} is not valid JSON: ${(e as Error).message}`);
    }
    if (!isObj(file)) throw new UsageError(`${args.settingsFile} must hold a JSON object`);
    if ("models" in file) {
      throw new UsageError(`${args.settingsFile}: models come from the zoo; choose one with --zoo`);
    }
  }
  const defaults = args.quick ? defaultConfig() : smallBudgetConfig();
  let raw = deepMerge(
    {
      ...defaults,
      skills: card.skills,
      skillSeed: card.seed,
      ...(args.quick
        ? { generations: QUICK.children, split: { opt: QUICK.opt, test: QUICK.test } }
        : {}),
    },
    file,
  ) as Obj;
  const listed = Array.isArray(raw.skills) ? (raw.skills as unknown[]) : [];
  const skills = listed.filter(
    (s): s is string => typeof s === "string" && card.skills.includes(s),
  );
  if (skills.length === 0 || skills.length !== listed.length) {
    throw new UsageError(`skills must be among the zoo's: ${card.skills.join(", ")}`);
  }
  const requested =
    args.test ??
    (isObj(file) && isObj(file.split) && typeof file.split.test === "number"
      ? file.split.test
      : args.quick
        ? QUICK.test
        : DEFAULT_TEST);
  const testSize = availableTestSize(requested, raw.skillSeed as number, skills);
  if (testSize === 0) throw new Error("the skills cannot draw a single distinct test problem");
  raw = deepMerge(raw, {
    models: {
      base: modelPath(zooDir, card, BASE_NAME),
      experts: Object.fromEntries(skills.map((s) => [s, modelPath(zooDir, card, s)])),
    },
    generations: args.children ?? raw.generations,
    split: { test: testSize },
    // The bench scores the final models itself, keeping every problem's pass or fail.
    final: { evaluate: false, writeModel: true },
  }) as Obj;
  const run = validateConfig(raw, process.cwd(), args.settingsFile ?? "bench settings");
  return {
    quick: args.quick,
    seeds: args.seeds ?? (args.quick ? QUICK.seeds : DEFAULT_SEEDS),
    testSize,
    testSizeRequested: requested,
    run,
    mixedSteps: args.quick ? QUICK.mixedSteps : null,
    bootstrap: { resamples: 10_000, seed: 0 },
  };
}

export interface Variant {
  id: string;
  /** The paper's ablation step. */
  label: string;
  cycling: string;
  mutation: RunConfig["mutation"]["method"];
  sampling: RunConfig["sampling"]["method"];
  /** The paper's average score for this step (Llama-3-8B, %). */
  paperAverage: number;
}

/** The paper's cumulative ablation; the last is CycleQD itself. */
export const VARIANTS: readonly Variant[] = [
  {
    id: "fixed",
    label: "(a) fixed quality/BC roles",
    cycling: "none",
    mutation: "svd",
    sampling: "elite",
    paperAverage: 47.6,
  },
  {
    id: "no-mutation",
    label: "(b) cyclic, no mutation",
    cycling: "cyclic",
    mutation: "none",
    sampling: "uniform",
    paperAverage: 49.4,
  },
  {
    id: "gaussian",
    label: "(c) cyclic + Gaussian mutation",
    cycling: "cyclic",
    mutation: "gaussian",
    sampling: "uniform",
    paperAverage: 48.5,
  },
  {
    id: "svd",
    label: "(d) cyclic + SVD mutation",
    cycling: "cyclic",
    mutation: "svd",
    sampling: "uniform",
    paperAverage: 51.7,
  },
  {
    id: "full",
    label: "(e) + elite sampling = CycleQD",
    cycling: "cyclic",
    mutation: "svd",
    sampling: "elite",
    paperAverage: 52.4,
  },
];

/** The run config of one variant and seed. */
export function variantConfig(base: RunConfig, v: Variant, seed: number): RunConfig {
  return validateConfig({
    ...base,
    seed,
    // Fixed roles: the first task stays the quality for every child.
    flipInterval: v.cycling === "none" ? Math.max(1, base.generations) : base.flipInterval,
    mutation: { ...base.mutation, method: v.mutation },
    sampling: { ...base.sampling, method: v.sampling },
  });
}
