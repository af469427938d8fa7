/**
 * The run config: what a CycleQD run searches with, read from YAML (or JSON, which YAML
 * includes) and checked field by field before any work starts. Relative model paths are
 * relative to the config file; omitted models default to the embedded zoo.
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname, isAbsolute, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parse as parseYaml } from "yaml";
import { parseQueueUrl } from "../queue/url.ts";
import type { ChatConfig } from "../skills/chat.ts";
import { MINI_SKILLS, SKILL_KINDS, type SkillKind, type SkillSource } from "./skill-sources.ts";

export const SKILL_NAMES = MINI_SKILLS;

/**
 * A checked run config with every default filled in (`validateConfig`, `defaultConfig`).
 * Model paths are absolute after checking; whether the files exist is checked by `run`.
 * Scores, and so bin ranges, are pass rates in [0, 1].
 */
export interface RunConfig {
  models: {
    /** GGUF file or Hugging Face safetensors folder of θ₀. */
    base: string;
    /** One fine-tune of the base per skill (skill name → GGUF file or safetensors folder). */
    experts: Record<string, string>;
  };
  /** Task names, in task-index order. */
  skills: string[];
  /**
   * Where each skill's problems come from, by name: the built-in miniature skills
   * (`kind: mini`, the default for code, os and db) or data files in a benchmark's format.
   */
  skillSources: Record<string, SkillSource>;
  /** Seed of the skills' problem generation. */
  skillSeed: number;
  /** Problems per skill in the optimisation and held-out test splits. */
  split: { opt: number; test: number };
  /**
   * G bins per BC axis (1..1000), and the bin ranges: "paper" (0.85 × lowest, 1.15 × highest
   * seed score) or a fixed [lo, hi] per skill, lo < hi, in score units.
   */
  archive: { bins: number; ranges: "paper" | Record<string, [number, number]> };
  /** Parent selection; α_low > 0 and α_high ≥ α_low weigh the worst and best scores. */
  sampling: { method: "elite" | "uniform"; alphaLow: number; alphaHigh: number };
  /** ω₁, ω₂ ~ N(mu, sigma²); mu ≠ 0, sigma ≥ 0. */
  crossover: { mu: number; sigma: number };
  /**
   * wMax: r_i ~ U(0, wMax) for SVD mutation; sigma: σ_m of Gaussian mutation in weight
   * units; rank: singular components kept per matrix ("full" or R ≥ 1).
   */
  mutation: {
    method: "svd" | "gaussian" | "none";
    wMax: number;
    sigma: number;
    rank: "full" | number;
  };
  /**
   * How a child reaches llama.cpp: "exact", a full model rebuilt bit for bit from its genome;
   * "lowrank", a LoRA adapter of rank K·R on a base loaded once per worker, with the residuals
   * dropped and the base's norm weights (needs mutation.rank: R and no Gaussian mutation;
   * README, "Models the paper's size"); "auto" (the default), decided when the run starts
   * (`resolveGenome`): lowrank from LOWRANK_ABOVE parameters, exact below.
   */
  genome: "auto" | "exact" | "lowrank";
  /**
   * N, the number of children the search evaluates after the seeds. As in the paper, a
   * generation makes exactly one child (the paper runs N = 1200, 400 per task), so this
   * counts children. Generation g (1…N) has active task ((g − 1) div flipInterval) mod K.
   */
  generations: number;
  /** Generations per active task before the roles rotate (≥ 1). */
  flipInterval: number;
  /** Evaluations running at once (1: in-process; more: a pool of worker processes). */
  workers: number;
  /** Run seed (integer ≥ 0): child g's draws depend only on it and g. */
  seed: number;
  /**
   * llama.cpp settings: CPU threads per evaluation (default: 1 on ≤ 4 cores, else half the
   * cores), sequences decoded at once (1..1024), tokens per sequence (16..2^20; default: the
   * model's training context capped at 2048).
   */
  engine: { threads?: number; parallel: number; contextSize?: number };
  /** Grade model output without a sandbox when none works (dangerous). */
  unsafe: boolean;
  /**
   * "batch": answers run one after another in a few long-lived sandboxes (the default);
   * "single": one sandbox per answer. Verdicts are the same.
   */
  grading: "batch" | "single";
  /**
   * Prompts through the model's chat template (`tokenizer.chat_template` in its GGUF):
   * "auto" uses it when there is one (instruct models) and raw prompts otherwise (the tiny
   * zoo); "none" always raw. `system` is the system prompt (needs a template).
   */
  chat: ChatConfig;
  /** Also record each skill's mean log-likelihood of its reference answers (not used by the search). */
  likelihood: boolean;
  /** After the search: evaluate the final models on opt and test, write the merged model. */
  final: { evaluate: boolean; writeModel: boolean };
  /** Directory of the seed-factor cache (default ~/.cache/cycleqd/factors). */
  cacheDir?: string;
  /**
   * Evaluate on `cycleqd worker` processes through a BullMQ queue on this Redis
   * (redis://HOST:PORT; off loopback with a password) instead of local workers.
   */
  queue?: string;
}

/** The project root: the zoo lives under it. */
export const PACKAGE_ROOT = resolve(fileURLToPath(new URL("../../", import.meta.url)));

export function zooPath(name: string): string {
  return resolve(PACKAGE_ROOT, "zoo", name);
}

/** A fresh config with every field at its default (the embedded zoo, the paper's values). */
export function defaultConfig(): RunConfig {
  return {
    models: {
      base: zooPath("base.gguf"),
      experts: Object.fromEntries(SKILL_NAMES.map((s) => [s, zooPath(`${s}.gguf`)])),
    },
    skills: [...SKILL_NAMES],
    skillSources: Object.fromEntries(SKILL_NAMES.map((s) => [s, { kind: "mini", strict: false }])),
    skillSeed: 1,
    split: { opt: 48, test: 96 },
    archive: { bins: 15, ranges: "paper" },
    sampling: { method: "elite", alphaLow: 0.5, alphaHigh: 0.8 },
    crossover: { mu: 1, sigma: 0.01 },
    mutation: { method: "svd", wMax: 0.1, sigma: 3e-4, rank: "full" },
    genome: "auto",
    generations: 60,
    flipInterval: 1,
    workers: 1,
    seed: 0,
    engine: { parallel: 8 },
    unsafe: false,
    grading: "batch",
    likelihood: false,
    chat: { template: "auto" },
    final: { evaluate: true, writeModel: true },
  };
}

/**
 * The search a small CPU budget can afford (the demo's, and the paper bench's default): 32
 * children with SVD mutation at w_max = 0.5 (the paper's 0.1 stays the run default). Within
 * 40 children, 0.1 left every archive's best elite a seed expert (the aggregate was the plain
 * average, 0.54 on opt); 0.5 let elites overtake their seeds (0.57 on opt). Chosen on opt.
 */
export function smallBudgetConfig(): RunConfig {
  const base = defaultConfig();
  return { ...base, mutation: { ...base.mutation, wMax: 0.5 }, generations: 32 };
}

/** Base parameters from which `genome: auto` runs children as adapters (README, bench:scale). */
export const LOWRANK_ABOVE = 1e9;

/** The rank `genome: auto` gives a low-rank run whose mutation.rank is "full". */
export const AUTO_LOWRANK_RANK = 64;

/**
 * The config a run is made with: `genome: auto` decided by the base's size (low-rank from
 * LOWRANK_ABOVE parameters, at mutation.rank or AUTO_LOWRANK_RANK; exact below, and with
 * Gaussian mutation, which has no adapter form). Other configs are returned as they are.
 */
export function resolveGenome(config: RunConfig, baseParameters: number): RunConfig {
  if (config.genome !== "auto") return config;
  if (baseParameters < LOWRANK_ABOVE || config.mutation.method === "gaussian") {
    return { ...config, genome: "exact" };
  }
  const { rank } = config.mutation;
  return {
    ...config,
    genome: "lowrank",
    mutation: { ...config.mutation, rank: rank === "full" ? AUTO_LOWRANK_RANK : rank },
  };
}

/**
 * A config is invalid: `problems` lists every problem, one per entry; the message shows
 * them one per line under `source` (the file name, or "config").
 */
export class ConfigError extends Error {
  constructor(
    readonly problems: string[],
    source = "config",
  ) {
    super(`${source} is invalid:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => v !== null && typeof v === "object" && !Array.isArray(v);
const show = (v: unknown): string => (v === undefined ? "nothing" : JSON.stringify(v));

/** Collects problems while reading fields with defaults. */
class Reader {
  readonly problems: string[] = [];

  constructor(private readonly baseDir: string) {}

  section(obj: unknown, path: string, allowed: readonly string[]): Obj {
    if (obj === undefined || obj === null) return {};
    if (!isObj(obj)) {
      this.problems.push(`${path} must be a mapping with ${allowed.join(", ")}; got ${show(obj)}`);
      return {};
    }
    for (const k of Object.keys(obj)) {
      if (!allowed.includes(k)) {
        this.problems.push(
          `${path ? `${path}.` : ""}${k} is not a field here; allowed: ${allowed.join(", ")}`,
        );
      }
    }
    return obj;
  }

  int(v: unknown, path: string, def: number, lo: number, hi = Number.MAX_SAFE_INTEGER): number {
    if (v === undefined) return def;
    if (typeof v !== "number" || !Number.isInteger(v) || v < lo || v > hi) {
      const range = hi === Number.MAX_SAFE_INTEGER ? `≥ ${lo}` : `in ${lo}..${hi}`;
      this.problems.push(`${path} must be an integer ${range}; got ${show(v)}`);
      return def;
    }
    return v;
  }

  num(
    v: unknown,
    path: string,
    def: number,
    test: (x: number) => boolean,
    allowed: string,
  ): number {
    if (v === undefined) return def;
    if (typeof v !== "number" || !Number.isFinite(v) || !test(v)) {
      this.problems.push(`${path} must be ${allowed}; got ${show(v)}`);
      return def;
    }
    return v;
  }

  oneOf<T extends string>(v: unknown, path: string, def: T, allowed: readonly T[]): T {
    if (v === undefined) return def;
    if (typeof v !== "string" || !allowed.includes(v as T)) {
      this.problems.push(
        `${path} must be one of ${allowed.map((a) => `"${a}"`).join(", ")}; got ${show(v)}`,
      );
      return def;
    }
    return v as T;
  }

  bool(v: unknown, path: string, def: boolean): boolean {
    if (v === undefined) return def;
    if (typeof v !== "boolean") {
      this.problems.push(`${path} must be true or false; got ${show(v)}`);
      return def;
    }
    return v;
  }

  /** One path or a list of paths to data files that must exist. */
  files(v: unknown, path: string): string[] {
    const list = typeof v === "string" ? [v] : v;
    if (
      !Array.isArray(list) ||
      list.length === 0 ||
      !list.every((x) => typeof x === "string" && x)
    ) {
      this.problems.push(`${path} must be a data file or a list of data files; got ${show(v)}`);
      return [];
    }
    return list.map((f) => {
      const abs = isAbsolute(f) ? f : resolve(this.baseDir, f);
      if (!existsSync(abs)) this.problems.push(`${path}: no file at ${abs}`);
      return abs;
    });
  }

  path(v: unknown, path: string, def: string): string {
    if (v === undefined) return def;
    if (typeof v !== "string" || v === "") {
      this.problems.push(`${path} must be a path to a GGUF file or a model folder; got ${show(v)}`);
      return def;
    }
    return isAbsolute(v) ? v : resolve(this.baseDir, v);
  }
}

/** `skills` names with `skillSources` beside them, as the entries of a config file. */
function withSources(names: unknown, sources: unknown): unknown {
  if (!Array.isArray(names) || !isObj(sources)) return names;
  return names.map((n) => {
    const src = typeof n === "string" ? sources[n] : undefined;
    if (!isObj(src) || src.kind === "mini" || src.kind === undefined) return n;
    const { poolSplit, ...rest } = src;
    return { name: n, ...rest, ...(poolSplit === undefined ? {} : { split: poolSplit }) };
  });
}

/**
 * `skills`: a list whose entries are built-in skill names (code, os, db) or mappings that
 * load a skill from data files: {name, kind, files: {opt, test, train}, pool, split: {opt,
 * test}, strict, maxTokens, scriptDir}. Undefined when the list has problems (recorded).
 */
function readSkills(
  raw: unknown,
  r: Reader,
): { skills: string[]; skillSources: Record<string, SkillSource> } | undefined {
  const before = r.problems.length;
  if (!Array.isArray(raw)) {
    r.problems.push(
      `skills must be a list of skill names (${SKILL_NAMES.join(", ")}) or skill mappings {name, kind, files}; got ${show(raw)}`,
    );
    return undefined;
  }
  const skills: string[] = [];
  const skillSources: Record<string, SkillSource> = {};
  raw.forEach((entry, i) => {
    const at = `skills[${i}]`;
    if (typeof entry === "string") {
      if (!(SKILL_NAMES as readonly string[]).includes(entry)) {
        r.problems.push(
          `skills: unknown skill "${entry}"; built-in skills are ${SKILL_NAMES.join(", ")}, or load one from files with {name, kind, files}`,
        );
      }
      skills.push(entry);
      skillSources[entry] = { kind: "mini", strict: false };
      return;
    }
    const e = r.section(entry, at, [
      "name",
      "kind",
      "files",
      "pool",
      "split",
      "strict",
      "maxTokens",
      "scriptDir",
      "turns",
    ]);
    if (typeof e.name !== "string" || !/^[A-Za-z][\w-]*$/.test(e.name)) {
      r.problems.push(
        `${at}.name must be a skill name (letters, digits, - or _); got ${show(e.name)}`,
      );
      return;
    }
    const name = e.name;
    const kind = r.oneOf(e.kind, `${at}.kind`, "mini" as SkillKind, SKILL_KINDS);
    if (e.kind === undefined)
      r.problems.push(`${at}.kind is missing; one of ${SKILL_KINDS.join(", ")}`);
    const src: SkillSource = { kind, strict: r.bool(e.strict, `${at}.strict`, false) };
    if (kind === "mini") {
      if (!(SKILL_NAMES as readonly string[]).includes(name)) {
        r.problems.push(`${at}: the built-in skills are ${SKILL_NAMES.join(", ")}, not "${name}"`);
      }
    } else if ((e.files === undefined) === (e.pool === undefined)) {
      r.problems.push(`${at} needs either files (per split: {opt, test, train}) or a pool`);
    } else if (e.files !== undefined) {
      const files = r.section(e.files, `${at}.files`, ["train", "opt", "test"]);
      src.files = {};
      for (const [split, v] of Object.entries(files)) {
        (src.files as Record<string, string[]>)[split] = r.files(v, `${at}.files.${split}`);
      }
      if (files.opt === undefined) r.problems.push(`${at}.files needs an opt split to search on`);
    } else {
      src.pool = r.files(e.pool, `${at}.pool`);
      if (e.split !== undefined) {
        const sp = r.section(e.split, `${at}.split`, ["opt", "test"]);
        src.poolSplit = {
          opt: r.int(sp.opt, `${at}.split.opt`, 0, 1),
          test: r.int(sp.test, `${at}.split.test`, 0, 0),
        };
      } else if (kind !== "mbpp" && kind !== "evalplus") {
        r.problems.push(`${at}.split {opt: N, test: M} is needed to divide a ${kind} pool`);
      }
    }
    if (e.maxTokens !== undefined) src.maxTokens = r.int(e.maxTokens, `${at}.maxTokens`, 256, 1);
    if (e.scriptDir !== undefined) src.scriptDir = r.path(e.scriptDir, `${at}.scriptDir`, "");
    if (e.turns !== undefined) {
      if (kind !== "os-interaction" && kind !== "dbbench") {
        r.problems.push(
          `${at}.turns: multi-turn episodes exist for os-interaction and dbbench skills only`,
        );
      } else src.turns = r.int(e.turns, `${at}.turns`, 1, 1, 100);
    }
    skills.push(name);
    skillSources[name] = src;
  });
  if (new Set(skills).size !== skills.length) {
    r.problems.push(`skills must not repeat a skill; got ${show(skills)}`);
  } else if (skills.length < 2) {
    r.problems.push(
      `skills must list at least two skills (CycleQD needs two or more experts); got ${show(skills)}`,
    );
  }
  return r.problems.length === before ? { skills, skillSources } : undefined;
}

/**
 * Checks a parsed config object and fills in defaults. `baseDir` anchors relative paths
 * (the config file's folder). Throws a ConfigError listing every problem.
 */
export function validateConfig(
  raw: unknown,
  baseDir = process.cwd(),
  source = "config",
): RunConfig {
  const d = defaultConfig();
  const r = new Reader(baseDir);
  const top = r.section(raw ?? {}, "", [
    "models",
    "skills",
    "skillSeed",
    "split",
    "archive",
    "sampling",
    "crossover",
    "mutation",
    "genome",
    "generations",
    "flipInterval",
    "workers",
    "seed",
    "engine",
    "unsafe",
    "grading",
    "likelihood",
    "chat",
    "final",
    "cacheDir",
    "skillSources",
    "queue",
  ]);

  let skills = d.skills;
  let skillSources = d.skillSources;
  // A RunConfig as a program builds it (defaultConfig() and changes) carries the skills'
  // sources beside their names; read them as the config file's entries.
  const rawSkills =
    top.skillSources === undefined ? top.skills : withSources(top.skills, top.skillSources);
  if (rawSkills !== undefined) {
    const read = readSkills(rawSkills, r);
    if (read) ({ skills, skillSources } = read);
  }

  const models = r.section(top.models, "models", ["base", "experts"]);
  const base = r.path(models.base, "models.base", d.models.base);
  const experts: Record<string, string> = {};
  if (models.experts === undefined) {
    for (const s of skills) experts[s] = d.models.experts[s] ?? zooPath(`${s}.gguf`);
  } else if (!isObj(models.experts)) {
    r.problems.push(
      `models.experts must map each skill to its expert model, e.g. {code: code.gguf}; got ${show(models.experts)}`,
    );
  } else {
    const given = Object.keys(models.experts);
    if (given.length < 2) {
      r.problems.push(
        `models.experts lists ${given.length} expert; CycleQD needs at least two (one per skill)`,
      );
    }
    for (const s of skills) {
      if (!(s in models.experts)) {
        r.problems.push(`models.experts has no expert for skill "${s}"; give one per skill`);
      } else {
        experts[s] = r.path(models.experts[s], `models.experts.${s}`, "");
      }
    }
    for (const k of given) {
      if (!skills.includes(k)) {
        r.problems.push(
          `models.experts.${k}: "${k}" is not among skills (${skills.join(", ")}); remove it or add the skill`,
        );
      }
    }
  }

  const split = r.section(top.split, "split", ["opt", "test"]);
  const archive = r.section(top.archive, "archive", ["bins", "ranges"]);
  let ranges: RunConfig["archive"]["ranges"] = "paper";
  if (archive.ranges !== undefined && archive.ranges !== "paper") {
    if (!isObj(archive.ranges)) {
      r.problems.push(
        `archive.ranges must be "paper" or a [lo, hi] per skill, e.g. {code: [0, 1]}; got ${show(archive.ranges)}`,
      );
    } else {
      const out: Record<string, [number, number]> = {};
      for (const s of skills) {
        const v = archive.ranges[s];
        const ok =
          Array.isArray(v) &&
          v.length === 2 &&
          v.every((x) => typeof x === "number" && Number.isFinite(x)) &&
          v[1] > v[0];
        if (!ok) {
          r.problems.push(`archive.ranges.${s} must be [lo, hi] with lo < hi; got ${show(v)}`);
        } else out[s] = [v[0], v[1]];
      }
      for (const k of Object.keys(archive.ranges)) {
        if (!skills.includes(k)) r.problems.push(`archive.ranges.${k}: "${k}" is not among skills`);
      }
      ranges = out;
    }
  }

  const sampling = r.section(top.sampling, "sampling", ["method", "alphaLow", "alphaHigh"]);
  const alphaLow = r.num(
    sampling.alphaLow,
    "sampling.alphaLow",
    d.sampling.alphaLow,
    (x) => x > 0,
    "a number > 0",
  );
  const alphaHigh = r.num(
    sampling.alphaHigh,
    "sampling.alphaHigh",
    d.sampling.alphaHigh,
    (x) => x >= alphaLow,
    `a number ≥ sampling.alphaLow (${alphaLow})`,
  );
  const crossover = r.section(top.crossover, "crossover", ["mu", "sigma"]);
  const mutation = r.section(top.mutation, "mutation", ["method", "wMax", "sigma", "rank"]);
  let rank: "full" | number = "full";
  if (mutation.rank !== undefined && mutation.rank !== "full") {
    if (
      typeof mutation.rank === "number" &&
      Number.isInteger(mutation.rank) &&
      mutation.rank >= 1
    ) {
      rank = mutation.rank;
    } else {
      r.problems.push(`mutation.rank must be "full" or an integer ≥ 1; got ${show(mutation.rank)}`);
    }
  }
  const engine = r.section(top.engine, "engine", ["threads", "parallel", "contextSize"]);
  const final = r.section(top.final, "final", ["evaluate", "writeModel"]);
  const chat = r.section(top.chat, "chat", ["template", "system"]);

  const config: RunConfig = {
    models: { base, experts },
    skills,
    skillSources,
    skillSeed: r.int(top.skillSeed, "skillSeed", d.skillSeed, -(2 ** 31), 2 ** 31 - 1),
    split: {
      opt: r.int(split.opt, "split.opt", d.split.opt, 1, 100_000),
      test: r.int(split.test, "split.test", d.split.test, 0, 100_000),
    },
    archive: { bins: r.int(archive.bins, "archive.bins", d.archive.bins, 1, 1000), ranges },
    sampling: {
      method: r.oneOf(sampling.method, "sampling.method", d.sampling.method, ["elite", "uniform"]),
      alphaLow,
      alphaHigh,
    },
    crossover: {
      mu: r.num(crossover.mu, "crossover.mu", d.crossover.mu, (x) => x !== 0, "a non-zero number"),
      sigma: r.num(
        crossover.sigma,
        "crossover.sigma",
        d.crossover.sigma,
        (x) => x >= 0,
        "a number ≥ 0",
      ),
    },
    mutation: {
      method: r.oneOf(mutation.method, "mutation.method", d.mutation.method, [
        "svd",
        "gaussian",
        "none",
      ]),
      wMax: r.num(mutation.wMax, "mutation.wMax", d.mutation.wMax, (x) => x >= 0, "a number ≥ 0"),
      sigma: r.num(
        mutation.sigma,
        "mutation.sigma",
        d.mutation.sigma,
        (x) => x >= 0,
        "a number ≥ 0",
      ),
      rank,
    },
    genome: r.oneOf(top.genome, "genome", d.genome, ["auto", "exact", "lowrank"] as const),
    generations: r.int(top.generations, "generations", d.generations, 0, 10_000_000),
    flipInterval: r.int(top.flipInterval, "flipInterval", d.flipInterval, 1, 10_000_000),
    workers: r.int(top.workers, "workers", d.workers, 1, 256),
    seed: r.int(top.seed, "seed", d.seed, 0, Number.MAX_SAFE_INTEGER),
    engine: {
      parallel: r.int(engine.parallel, "engine.parallel", d.engine.parallel, 1, 1024),
    },
    unsafe: r.bool(top.unsafe, "unsafe", d.unsafe),
    grading: r.oneOf(top.grading, "grading", d.grading, ["batch", "single"] as const),
    likelihood: r.bool(top.likelihood, "likelihood", d.likelihood),
    chat: {
      template: r.oneOf(chat.template, "chat.template", d.chat.template, ["auto", "none"] as const),
    },
    final: {
      evaluate: r.bool(final.evaluate, "final.evaluate", d.final.evaluate),
      writeModel: r.bool(final.writeModel, "final.writeModel", d.final.writeModel),
    },
  };
  if (config.genome === "lowrank") {
    if (config.mutation.rank === "full") {
      r.problems.push(
        "genome: lowrank needs a rank: set mutation.rank to an integer R (children are adapters of rank K·R; 16–64 keeps the zoo experts' scores, see the README)",
      );
    }
    if (config.mutation.method === "gaussian") {
      r.problems.push(
        "genome: lowrank cannot carry Gaussian mutation (full-rank noise has no adapter form); use mutation.method svd or none, or genome: exact",
      );
    }
  }
  if (engine.threads !== undefined) {
    config.engine.threads = r.int(engine.threads, "engine.threads", 1, 1, 1024);
  }
  if (engine.contextSize !== undefined) {
    config.engine.contextSize = r.int(engine.contextSize, "engine.contextSize", 2048, 16, 1 << 20);
  }
  if (chat.system !== undefined) {
    if (typeof chat.system !== "string")
      r.problems.push(`chat.system must be text; got ${show(chat.system)}`);
    else if (config.chat.template === "none") {
      r.problems.push(
        'chat.system needs a chat template; remove it or set chat.template to "auto"',
      );
    } else config.chat.system = chat.system;
  }
  if (top.cacheDir !== undefined) config.cacheDir = r.path(top.cacheDir, "cacheDir", "");
  if (top.queue !== undefined) {
    try {
      if (typeof top.queue !== "string")
        throw new Error(`queue must be a redis:// URL; got ${show(top.queue)}`);
      parseQueueUrl(top.queue);
      config.queue = top.queue;
    } catch (e) {
      r.problems.push((e as Error).message);
    }
  }
  if (r.problems.length) throw new ConfigError(r.problems, source);
  return config;
}

/**
 * Reads and checks a YAML or JSON config file; relative paths are taken from its folder.
 * Throws an Error when the file cannot be read, a ConfigError when it is invalid.
 */
export async function loadConfig(file: string): Promise<RunConfig> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    throw new Error(
      `cannot read config ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); ` +
        "write a starter with `cycleqd init FILE`",
    );
  }
  return parseConfig(text, dirname(resolve(file)), file);
}

/**
 * Parses config text (YAML or JSON) and checks it; `baseDir` anchors relative paths.
 * Throws a ConfigError when the text does not parse or the config is invalid.
 */
export function parseConfig(text: string, baseDir = process.cwd(), source = "config"): RunConfig {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (e) {
    throw new ConfigError([`not valid YAML/JSON: ${(e as Error).message}`], source);
  }
  return validateConfig(raw, baseDir, source);
}

/** A commented starter config with every field at its default. */
export function starterConfig(): string {
  return `# CycleQD run config (cycleqd run THIS_FILE). YAML; JSON works too.
# Relative paths are relative to this file. Every field is optional: the values shown
# are the defaults.

models:
  # The base model θ₀ and one fine-tune of it per skill: GGUF files (F32/F16/BF16) or
  # Hugging Face safetensors folders. Default: the embedded zoo of tiny models.
  # base: zoo/base.gguf
  # experts:
  #   code: zoo/code.gguf
  #   os: zoo/os.gguf
  #   db: zoo/db.gguf

# The tasks, in order; the active task cycles through them. Built-in: code, os, db
# (problems generated from templates). A skill can also come from data files in a
# benchmark's own format, with any name, and any number K ≥ 2 of skills works:
#   - name: py
#     kind: mbpp          # mbpp | evalplus | dbbench | os-interaction | jsonl
#     files: {opt: data/mbpp-opt.jsonl, test: data/mbpp-test.jsonl}
#   - name: sql
#     kind: dbbench
#     pool: data/dbbench.jsonl       # one pool, divided with skillSeed:
#     split: {opt: 100, test: 200}
#     strict: false       # true: a malformed record fails the run (default: left out, listed)
#     maxTokens: 256
#   - name: shell
#     kind: os-interaction
#     files: {opt: data/os-dev.json, test: data/os-test.json}
#     turns: 5            # multi-turn AgentBench episodes of at most 5 model turns
#                         # (os-interaction and dbbench)
skills: [code, os, db]
skillSeed: 1          # seed of the built-in skills' problems and of pool splits

split:
  opt: 48             # problems per skill the search optimises on
  test: 96            # held-out problems per skill, only for the final models

archive:
  bins: 15            # bins per behaviour axis (G)
  ranges: paper       # "paper" (0.85 × weakest seed .. 1.15 × strongest), or per skill:
  # ranges: {code: [0, 1], os: [0, 1], db: [0, 1]}

sampling:
  method: elite       # elite (the paper's rule) | uniform
  alphaLow: 0.5
  alphaHigh: 0.8

crossover:            # ω₁, ω₂ ~ N(mu, sigma²), child τ = (ω₁τ₁ + ω₂τ₂) / (ω₁ + ω₂)
  mu: 1
  sigma: 0.01

mutation:
  method: svd         # svd (the paper) | gaussian | none
  wMax: 0.1           # svd: r ~ U(0, wMax) per singular component
  sigma: 0.0003       # gaussian: standard deviation of the noise
  rank: full          # singular components kept per matrix: full | an integer

genome: auto          # exact: each child a full model, bit for bit | lowrank: each child a
                      # LoRA adapter on a base loaded once (needs mutation.rank) | auto: lowrank
                      # from 1B base parameters (rank 64 unless mutation.rank sets one), else exact

generations: 60       # N: one generation = one child (paper: 1200)
flipInterval: 1       # generations before the active task moves on
workers: 1            # evaluations at once; more than 1 runs a pool of worker processes
seed: 0               # a run with one worker is reproducible from this seed

engine:
  # threads: 1        # CPU threads per evaluation (default: 1 on small machines)
  parallel: 8         # sequences decoded side by side. Parallel sequences share llama.cpp's
                      # KV cache, which can change likelihoods in the last digits (and, on a
                      # near tie, a greedy token); parallel: 1 makes a one-worker run
                      # reproducible bit for bit
  # contextSize: 2048

unsafe: false         # true runs model output without a sandbox when none works (dangerous)
grading: batch        # batch: answers run one after another in a few long-lived sandboxes;
                      # single: one sandbox per answer (slower; the same verdicts)
likelihood: false     # also record each skill's mean log-likelihood of its reference answers:
                      # a diagnostic the search does not use, about doubles evaluation time

chat:
  template: auto      # auto: the model's chat template (tokenizer.chat_template) when its GGUF
                      # has one (instruct models), raw prompts otherwise (the tiny zoo) | none
  # system: "You are a helpful assistant."   # the system prompt (needs a chat template)

final:
  evaluate: true      # evaluate the merged model and the best elite on opt and test
  writeModel: true    # write the merged model to RUN/model.gguf

# cacheDir: /path/to/cache   # seed SVD factors (default: $XDG_CACHE_HOME or ~/.cache, /cycleqd/factors)
# queue: redis://127.0.0.1:6379   # evaluate on \`cycleqd worker\` processes on any machine
                                  # (off loopback: redis://:PASSWORD@HOST:6379)
`;
}
