/**
 * The zoo card (`zoo.json`): which files make up the zoo, their checksums, how each model
 * scores on each skill, how the build went and what the task vectors look like.
 */
import { createHash } from "node:crypto";
import { createReadStream, existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { LlamaConfig } from "../llm/config.ts";
import type { ZooRecipe } from "./recipe.ts";
import type { TaskVectorStats } from "./taskvectors.ts";

export const CARD_FILE = "zoo.json";
export const CARD_FORMAT = "cycleqd-zoo-v1";
export const BASE_NAME = "base";

/** The zoo shipped with the package (`zoo/` at the package root). */
export const SHIPPED_ZOO_DIR = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "zoo");

export interface SplitScores {
  opt: number;
  test: number;
}

export interface ZooModelEntry {
  file: string;
  sha256: string;
  bytes: number;
  /** Pass rate per skill on the `opt` and `test` splits, measured on this very file. */
  scores: Record<string, SplitScores>;
}

export interface StageRecord {
  seconds: number;
  steps: number;
  /** Tokens the stage trained on (B·T per update, padding included). */
  tokens: number;
  finalLoss: number;
  [extra: string]: unknown;
}

export interface ZooCard {
  format: typeof CARD_FORMAT;
  seed: number;
  config: LlamaConfig;
  /** Skill names, in order; an expert is named after its skill. */
  skills: string[];
  recipe: ZooRecipe;
  models: Record<string, ZooModelEntry>;
  build: {
    /** Training and measuring time summed over the stages (a resumed build adds its parts). */
    seconds: number;
    stages: Record<string, StageRecord>;
    loadAverage?: number;
  };
  taskVectors: TaskVectorStats;
}

export async function sha256File(path: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest("hex");
}

/** Reads and checks `DIR/zoo.json`; the message says what to do when it is missing or bad. */
export async function readCard(dir: string): Promise<ZooCard> {
  const path = join(dir, CARD_FILE);
  if (!existsSync(path)) {
    throw new Error(`${path} not found: build a zoo there with \`cycleqd zoo build --out ${dir}\``);
  }
  let card: ZooCard;
  try {
    card = JSON.parse(await readFile(path, "utf8")) as ZooCard;
  } catch (e) {
    throw new Error(`${path} is not valid JSON (${(e as Error).message}); rebuild the zoo`);
  }
  if (card?.format !== CARD_FORMAT) {
    throw new Error(`${path} is not a cycleqd zoo card (format ${String(card?.format)})`);
  }
  if (!card.models?.[BASE_NAME] || !Array.isArray(card.skills)) {
    throw new Error(`${path} lacks the base model or the skill list; rebuild the zoo`);
  }
  for (const s of card.skills) {
    if (!card.models[s]) throw new Error(`${path} lists skill ${s} but no expert for it`);
  }
  return card;
}

/** Absolute path of a model of the zoo in `dir`. */
export function modelPath(dir: string, card: ZooCard, name: string): string {
  const m = card.models[name];
  if (!m) {
    throw new Error(
      `the zoo has no model "${name}"; it has ${Object.keys(card.models).join(", ")}`,
    );
  }
  return join(dir, m.file);
}

const fmt = (x: number | undefined) => (x === undefined ? "-" : x.toFixed(2));

/** Rows of "model, then opt/test per skill", for `zoo info` and the benches. */
export function scoreRows(
  skills: string[],
  rows: { name: string; scores: Record<string, Partial<SplitScores>> }[],
): { header: string[]; rows: string[][] } {
  const header = ["model", ...skills.flatMap((s) => [`${s} opt`, `${s} test`]), "mean test"];
  return {
    header,
    rows: rows.map((r) => {
      const tests = skills.map((s) => r.scores[s]?.test);
      const known = tests.filter((x): x is number => x !== undefined);
      const mean = known.length ? known.reduce((a, b) => a + b, 0) / known.length : undefined;
      return [
        r.name,
        ...skills.flatMap((s) => [fmt(r.scores[s]?.opt), fmt(r.scores[s]?.test)]),
        fmt(mean),
      ];
    }),
  };
}
