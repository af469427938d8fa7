/**
 * Where a run's skills come from: the built-in miniature skills (`mini`, generated from
 * templates) or data files in a benchmark's own format (MBPP / EvalPlus, AgentBench DB,
 * AgentBench OS, or the generic JSONL kind). Sources are plain data, so they travel to
 * worker processes with the evaluator's setup; `buildSkills` turns them into skills there.
 */
import { createHash } from "node:crypto";
import { createMiniSkills } from "../skills/index.ts";
import { loadDbBenchSkill } from "../skills/loaders/dbbench.ts";
import { loadJsonlSkill } from "../skills/loaders/generic.ts";
import { loadMbppSkill, mbppSplitOf } from "../skills/loaders/mbpp.ts";
import { loadOsInteractionSkill } from "../skills/loaders/os-interaction.ts";
import { readRecords, type SourceRecord } from "../skills/loaders/records.ts";
import type { SplitSources } from "../skills/loaders/splits.ts";
import type { Skill, Split } from "../skills/types.ts";

/** Skill kinds a run config can name. */
export const SKILL_KINDS = [
  "mini",
  "mbpp",
  "evalplus",
  "dbbench",
  "os-interaction",
  "jsonl",
] as const;
export type SkillKind = (typeof SKILL_KINDS)[number];

/** The built-in miniature skills (`kind: mini`). */
export const MINI_SKILLS = ["code", "os", "db"] as const;

export interface SkillSource {
  kind: SkillKind;
  /** Data files per split (absolute paths). */
  files?: Partial<Record<Split, string[]>>;
  /** One pool of files divided into splits: by `poolSplit` counts, else the format's own rule. */
  pool?: string[];
  /** How many pool records go to opt and to test, drawn with the run's skill seed. */
  poolSplit?: { opt: number; test: number };
  /** A malformed record fails the run (default: it is skipped and listed). */
  strict: boolean;
  /** Most tokens per answer (default: the kind's own). */
  maxTokens?: number;
  /** os-interaction: where check scripts named by the records live (default: the file's folder). */
  scriptDir?: string;
  /** os-interaction, dbbench: judge as multi-turn episodes of at most this many model turns. */
  turns?: number;
}

export interface SkillsSetup {
  skills: readonly string[];
  skillSources: Readonly<Record<string, SkillSource>>;
  skillSeed: number;
  /** Problems per split of the built-in skills (data files bring their own). */
  split: { opt: number; test: number };
}

/** Every data file a skill reads (none for the built-in skills). */
export function dataFiles(src: SkillSource): string[] {
  return [...Object.values(src.files ?? {}).flat(), ...(src.pool ?? [])];
}

/**
 * The configured skills, in config order. Throws a DataError for an unreadable or empty
 * data file, a problem in two splits, or (strict) a malformed record.
 */
export function buildSkills(setup: SkillsSetup): Skill[] {
  let mini: Skill[] | undefined;
  return setup.skills.map((name) => {
    const src = setup.skillSources[name] ?? { kind: "mini", strict: false };
    if (src.kind === "mini") {
      mini ??= createMiniSkills({
        seed: setup.skillSeed,
        sizes: { opt: setup.split.opt, test: setup.split.test },
      });
      const s = mini.find((x) => x.name === name);
      if (!s) throw new Error(`unknown built-in skill "${name}"; known: ${MINI_SKILLS.join(", ")}`);
      return s;
    }
    return loadSkill(name, src, setup.skillSeed);
  });
}

function loadSkill(name: string, src: SkillSource, seed: number): Skill {
  const sources = splitSources(src, seed);
  const common = { name, strict: src.strict, maxTokens: src.maxTokens };
  switch (src.kind) {
    case "mbpp":
    case "evalplus":
      return loadMbppSkill(sources, common) as unknown as Skill;
    case "dbbench":
      return loadDbBenchSkill(sources, { ...common, turns: src.turns }) as unknown as Skill;
    case "os-interaction":
      return loadOsInteractionSkill(sources, {
        ...common,
        scriptDir: src.scriptDir,
        turns: src.turns,
      }) as unknown as Skill;
    case "jsonl":
      return loadJsonlSkill(sources, common) as unknown as Skill;
    default:
      throw new Error(`unknown skill kind "${src.kind}"`);
  }
}

function splitSources(src: SkillSource, seed: number): SplitSources {
  if (!src.pool?.length) return { files: src.files };
  if (src.poolSplit) return { all: src.pool, assign: seededAssign(src.pool, seed, src.poolSplit) };
  if (src.kind === "mbpp" || src.kind === "evalplus") return { all: src.pool, assign: mbppSplitOf };
  throw new Error(
    `a ${src.kind} pool needs split counts (pool split: {opt: N, test: M}); it has no split rule of its own`,
  );
}

/**
 * A seeded split of a pool: records ordered by a hash of (seed, content), the first `opt` to
 * opt, the next `test` to test, the rest left out. Content-keyed, so reordering the files
 * or adding records elsewhere does not move a record between opt and test.
 */
function seededAssign(
  files: readonly string[],
  seed: number,
  counts: { opt: number; test: number },
): (rec: SourceRecord) => Split | null {
  const key = (r: SourceRecord) => `${r.file}:${r.line}`;
  const hash = (r: SourceRecord) =>
    createHash("sha256")
      .update(`${seed}\n${JSON.stringify(r.value)}`)
      .digest("hex");
  const all = files.flatMap((f) => readRecords(f, () => {}));
  const order = all.map((r) => ({ r, h: hash(r) })).sort((a, b) => (a.h < b.h ? -1 : 1));
  const split = new Map<string, Split>();
  order.forEach(({ r }, i) => {
    if (i < counts.opt) split.set(key(r), "opt");
    else if (i < counts.opt + counts.test) split.set(key(r), "test");
  });
  return (r) => split.get(key(r)) ?? null;
}
