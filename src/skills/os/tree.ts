/** A small seeded directory tree that an OS problem's command runs in. */
import type { Rng } from "../../util/rng.ts";
import { pick, sample } from "../splits.ts";
import { DIRS, FILES, LOG_WORDS, WORDS } from "../vocab.ts";

export interface OsTree {
  /** Relative path → content. */
  files: Record<string, string>;
  /** Every directory, parents first (some may be empty). */
  dirs: string[];
}

/** A log-like line, e.g. "error piano 42". */
function line(rng: Rng, must?: string, avoid?: string): string {
  let w = must ?? pick(rng, LOG_WORDS);
  while (avoid && w === avoid) w = pick(rng, LOG_WORDS);
  return `${w} ${pick(rng, WORDS)} ${rng.int(100)}`;
}

/** `n` lines; when `word` is given, some contain it and some do not. */
export function lines(rng: Rng, n: number, word?: string): string {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(line(rng, undefined, word));
  if (word) {
    const hits = 1 + rng.int(Math.max(1, n - 2));
    for (const i of sample(
      rng,
      out.map((_, j) => j),
      Math.min(hits, n - 1),
    )) {
      out[i] = line(rng, word);
    }
  }
  return `${out.join("\n")}\n`;
}

export function randomTree(rng: Rng): OsTree {
  const files: Record<string, string> = {};
  const dirs = sample(rng, DIRS, 2 + rng.int(2));
  for (const f of sample(rng, FILES, 2 + rng.int(3))) files[f] = lines(rng, 3 + rng.int(8));
  for (const d of dirs) {
    for (const f of sample(rng, FILES, 1 + rng.int(4)))
      files[`${d}/${f}`] = lines(rng, 3 + rng.int(8));
  }
  return { files, dirs };
}

export function parentOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i < 0 ? "" : path.slice(0, i);
}

/** Makes sure a directory and its parents exist. */
export function ensureDir(t: OsTree, dir: string): void {
  if (dir === "") return;
  ensureDir(t, parentOf(dir));
  removePath(t, dir, true);
  if (!t.dirs.includes(dir)) t.dirs.push(dir);
}

/** Puts a file at `path` (replacing whatever was there). */
export function putFile(t: OsTree, path: string, content: string): void {
  ensureDir(t, parentOf(path));
  removePath(t, path);
  t.files[path] = content;
}

/** Removes a file or a directory (with its contents); with `filesOnly` only a file. */
export function removePath(t: OsTree, path: string, filesOnly = false): void {
  delete t.files[path];
  if (filesOnly) return;
  for (const p of Object.keys(t.files)) if (p.startsWith(`${path}/`)) delete t.files[p];
  t.dirs = t.dirs.filter((d) => d !== path && !d.startsWith(`${path}/`));
}

/** A path in the vocabulary: "notes.txt" or "logs/notes.txt". */
export function randomPath(rng: Rng): string {
  const f = pick(rng, FILES);
  return rng.uniform() < 0.4 ? f : `${pick(rng, DIRS)}/${f}`;
}

/** A directory in the vocabulary: "logs" or "logs/old". */
export function randomDir(rng: Rng): string {
  const d: string = pick(rng, DIRS);
  if (rng.uniform() < 0.5) return d;
  let parent: string = pick(rng, DIRS);
  while (parent === d) parent = pick(rng, DIRS);
  return `${parent}/${d}`;
}
