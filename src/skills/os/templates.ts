/**
 * Templates of the miniature OS skill: an English request about files in a seeded directory,
 * answered by one bash command. Queries are judged by their output, changes by the final
 * state of the directory.
 */
import type { Rng } from "../../util/rng.ts";
import { pick } from "../splits.ts";
import { DIRS, FILES, LOG_WORDS, WORDS } from "../vocab.ts";
import {
  ensureDir,
  lines,
  type OsTree,
  parentOf,
  putFile,
  randomDir,
  randomPath,
  removePath,
} from "./tree.ts";

export type Values = Record<string, string | number>;

export interface OsTemplate {
  id: string;
  /** What decides a pass: the command's output or the directory it leaves behind. */
  judge: "stdout" | "state";
  draw(rng: Rng): Values;
  phrasings: ((v: Values) => string)[];
  command(v: Values): string;
  /** Adjusts a random tree so the request makes sense (the file exists, the target does not...). */
  prepare(t: OsTree, v: Values, rng: Rng): void;
}

const withFile =
  (minLines = 3, word?: (v: Values) => string) =>
  (t: OsTree, v: Values, rng: Rng) => {
    const n = Math.max(minLines, Number(v.n ?? 0) + 2) + rng.int(6);
    putFile(t, String(v.p), lines(rng, n, word?.(v)));
  };

const withDir = (t: OsTree, v: Values, rng: Rng) => {
  const d = String(v.d);
  ensureDir(t, d);
  if (!Object.keys(t.files).some((p) => parentOf(p) === d)) {
    putFile(t, `${d}/${pick(rng, FILES)}`, lines(rng, 3));
  }
};

export const OS_TEMPLATES: OsTemplate[] = [
  {
    id: "lines",
    judge: "stdout",
    draw: (rng) => ({ p: randomPath(rng) }),
    phrasings: [
      (v) => `Count the lines in ${v.p}.`,
      (v) => `How many lines does ${v.p} have?`,
      (v) => `Print the number of lines in ${v.p}.`,
    ],
    command: (v) => `wc -l < ${v.p}`,
    prepare: withFile(),
  },
  {
    id: "head",
    judge: "stdout",
    draw: (rng) => ({ p: randomPath(rng), n: 1 + rng.int(9) }),
    phrasings: [
      (v) => `Print the first ${v.n} lines of ${v.p}.`,
      (v) => `Show the top ${v.n} lines of ${v.p}.`,
      (v) => `Output the first ${v.n} lines in ${v.p}.`,
    ],
    command: (v) => `head -n ${v.n} ${v.p}`,
    prepare: withFile(),
  },
  {
    id: "tail",
    judge: "stdout",
    draw: (rng) => ({ p: randomPath(rng), n: 1 + rng.int(9) }),
    phrasings: [
      (v) => `Print the last ${v.n} lines of ${v.p}.`,
      (v) => `Show the final ${v.n} lines of ${v.p}.`,
      (v) => `Output the last ${v.n} lines in ${v.p}.`,
    ],
    command: (v) => `tail -n ${v.n} ${v.p}`,
    prepare: withFile(),
  },
  {
    id: "grep",
    judge: "stdout",
    draw: (rng) => ({ p: randomPath(rng), w: pick(rng, LOG_WORDS) }),
    phrasings: [
      (v) => `Show lines of ${v.p} containing ${v.w}.`,
      (v) => `Print the lines in ${v.p} that mention ${v.w}.`,
      (v) => `Find lines with ${v.w} in ${v.p}.`,
    ],
    command: (v) => `grep ${v.w} ${v.p}`,
    prepare: withFile(4, (v) => String(v.w)),
  },
  {
    id: "grepc",
    judge: "stdout",
    draw: (rng) => ({ p: randomPath(rng), w: pick(rng, LOG_WORDS) }),
    phrasings: [
      (v) => `How many lines of ${v.p} contain ${v.w}?`,
      (v) => `Count the lines in ${v.p} that mention ${v.w}.`,
    ],
    command: (v) => `grep -c ${v.w} ${v.p}`,
    prepare: withFile(4, (v) => String(v.w)),
  },
  {
    id: "cat",
    judge: "stdout",
    draw: (rng) => ({ p: randomPath(rng) }),
    phrasings: [
      (v) => `Show the contents of ${v.p}.`,
      (v) => `Print the file ${v.p}.`,
      (v) => `Display everything in ${v.p}.`,
    ],
    command: (v) => `cat ${v.p}`,
    prepare: withFile(),
  },
  {
    id: "sort",
    judge: "stdout",
    draw: (rng) => ({ p: randomPath(rng) }),
    phrasings: [
      (v) => `Print the lines of ${v.p} in sorted order.`,
      (v) => `Sort the lines of ${v.p} and print them.`,
      (v) => `Show ${v.p} sorted.`,
    ],
    command: (v) => `sort ${v.p}`,
    prepare: withFile(),
  },
  {
    id: "countfiles",
    judge: "stdout",
    draw: (rng) => ({ d: randomDir(rng) }),
    phrasings: [
      (v) => `How many files are in ${v.d}?`,
      (v) => `Count the files in ${v.d}.`,
      (v) => `Print the number of entries in ${v.d}.`,
    ],
    command: (v) => `ls ${v.d} | wc -l`,
    prepare: withDir,
  },
  {
    id: "ls",
    judge: "stdout",
    draw: (rng) => ({ d: randomDir(rng) }),
    phrasings: [
      (v) => `List the files in ${v.d}.`,
      (v) => `Show what is inside ${v.d}.`,
      (v) => `Print the names of the files in ${v.d}.`,
    ],
    command: (v) => `ls ${v.d}`,
    prepare: withDir,
  },
  {
    id: "mkdir",
    judge: "state",
    draw: (rng) => ({ d: randomDir(rng) }),
    phrasings: [
      (v) => `Make a directory named ${v.d}.`,
      (v) => `Create a folder called ${v.d}.`,
      (v) => `Create the directory ${v.d}.`,
    ],
    command: (v) => `mkdir ${v.d}`,
    prepare: (t, v) => {
      removePath(t, String(v.d));
      ensureDir(t, parentOf(String(v.d)));
    },
  },
  {
    id: "cp",
    judge: "state",
    draw: (rng) => {
      const p = randomPath(rng);
      let d: string = pick(rng, DIRS);
      while (parentOf(p) === d) d = pick(rng, DIRS);
      return { p, d };
    },
    phrasings: [
      (v) => `Copy ${v.p} into ${v.d}.`,
      (v) => `Put a copy of ${v.p} in ${v.d}.`,
      (v) => `Duplicate ${v.p} into the ${v.d} folder.`,
    ],
    command: (v) => `cp ${v.p} ${v.d}/`,
    prepare: (t, v, rng) => {
      withFile()(t, v, rng);
      ensureDir(t, String(v.d));
    },
  },
  {
    id: "mv",
    judge: "state",
    draw: (rng) => {
      const p = randomPath(rng);
      let q = randomPath(rng);
      while (q === p || q.startsWith(`${p}/`)) q = randomPath(rng);
      return { p, q };
    },
    phrasings: [(v) => `Move ${v.p} to ${v.q}.`, (v) => `Rename ${v.p} to ${v.q}.`],
    command: (v) => `mv ${v.p} ${v.q}`,
    prepare: (t, v, rng) => {
      withFile()(t, v, rng);
      removePath(t, String(v.q));
      ensureDir(t, parentOf(String(v.q)));
    },
  },
  {
    id: "rm",
    judge: "state",
    draw: (rng) => ({ p: randomPath(rng) }),
    phrasings: [
      (v) => `Delete ${v.p}.`,
      (v) => `Remove the file ${v.p}.`,
      (v) => `Erase ${v.p} from the disk.`,
    ],
    command: (v) => `rm ${v.p}`,
    prepare: withFile(),
  },
  {
    id: "touch",
    judge: "state",
    draw: (rng) => ({ p: randomPath(rng) }),
    phrasings: [
      (v) => `Create an empty file named ${v.p}.`,
      (v) => `Make an empty file ${v.p}.`,
      (v) => `Add a new empty file ${v.p}.`,
    ],
    command: (v) => `touch ${v.p}`,
    prepare: (t, v) => {
      removePath(t, String(v.p));
      ensureDir(t, parentOf(String(v.p)));
    },
  },
  {
    id: "write",
    judge: "state",
    draw: (rng) => ({ p: randomPath(rng), w: pick(rng, WORDS) }),
    phrasings: [
      (v) => `Write the word ${v.w} into ${v.p}.`,
      (v) => `Overwrite ${v.p} with the word ${v.w}.`,
      (v) => `Replace the contents of ${v.p} with ${v.w}.`,
    ],
    command: (v) => `echo ${v.w} > ${v.p}`,
    prepare: withFile(),
  },
  {
    id: "append",
    judge: "state",
    draw: (rng) => ({ p: randomPath(rng), w: pick(rng, WORDS) }),
    phrasings: [
      (v) => `Append the word ${v.w} to ${v.p}.`,
      (v) => `Add a line ${v.w} at the end of ${v.p}.`,
    ],
    command: (v) => `echo ${v.w} >> ${v.p}`,
    prepare: withFile(),
  },
];
