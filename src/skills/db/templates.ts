/**
 * Templates of the miniature DB skill: an English question about a small table, answered by
 * one SQL statement. Queries are judged by their result set, changes by the table they leave.
 */
import type { Rng } from "../../util/rng.ts";
import { pick } from "../splits.ts";
import { NAMES, WORDS } from "../vocab.ts";

/** Table shapes: a text key, a number 0-99 and a text group column. */
export const TABLES = [
  { name: "pets", key: "name", num: "age", group: "owner" },
  { name: "books", key: "title", num: "pages", group: "author" },
  { name: "cars", key: "model", num: "price", group: "color" },
  { name: "staff", key: "name", num: "salary", group: "dept" },
  { name: "songs", key: "title", num: "plays", group: "artist" },
  { name: "cities", key: "name", num: "size", group: "country" },
  { name: "players", key: "name", num: "score", group: "team" },
  { name: "plants", key: "name", num: "height", group: "garden" },
  { name: "movies", key: "title", num: "rating", group: "genre" },
  { name: "robots", key: "model", num: "power", group: "maker" },
  { name: "fruits", key: "name", num: "weight", group: "farm" },
  { name: "boats", key: "name", num: "speed", group: "port" },
] as const;

export type TableShape = (typeof TABLES)[number];
export type Values = Record<string, string | number>;

export interface DbTemplate {
  id: string;
  kind: "select" | "mutation";
  /** Result order matters (ORDER BY ... LIMIT questions). */
  ordered: boolean;
  /** Values beyond the table: constants, names, groups. */
  draw(rng: Rng): Values;
  phrasings: ((t: TableShape, v: Values) => string)[];
  sql(t: TableShape, v: Values): string;
  /** Which values must (or must not) be present in the rows for the question to make sense. */
  needs?: { key?: "present" | "absent"; group?: true; threshold?: true };
}

const num = (rng: Rng) => rng.int(100);
const name = (rng: Rng) => pick(rng, NAMES);
const group = (rng: Rng) => pick(rng, WORDS);

export const DB_TEMPLATES: DbTemplate[] = [
  {
    id: "gt",
    kind: "select",
    ordered: false,
    draw: (rng) => ({ k: rng.int(99) }),
    phrasings: [
      (t, v) => `List the ${t.key}s with ${t.num} above ${v.k}.`,
      (t, v) => `Which ${t.key}s have ${t.num} greater than ${v.k}?`,
      (t, v) => `Show every ${t.key} whose ${t.num} is over ${v.k}.`,
    ],
    sql: (t, v) => `SELECT ${t.key} FROM ${t.name} WHERE ${t.num} > ${v.k};`,
    needs: { threshold: true },
  },
  {
    id: "lt",
    kind: "select",
    ordered: false,
    draw: (rng) => ({ k: 1 + rng.int(99) }),
    phrasings: [
      (t, v) => `List the ${t.key}s with ${t.num} below ${v.k}.`,
      (t, v) => `Which ${t.key}s have ${t.num} less than ${v.k}?`,
      (t, v) => `Show every ${t.key} whose ${t.num} is under ${v.k}.`,
    ],
    sql: (t, v) => `SELECT ${t.key} FROM ${t.name} WHERE ${t.num} < ${v.k};`,
    needs: { threshold: true },
  },
  {
    id: "ingroup",
    kind: "select",
    ordered: false,
    draw: (rng) => ({ g: group(rng) }),
    phrasings: [
      (t, v) => `Which ${t.key}s have ${t.group} ${v.g}?`,
      (t, v) => `List the ${t.key}s whose ${t.group} is ${v.g}.`,
    ],
    sql: (t, v) => `SELECT ${t.key} FROM ${t.name} WHERE ${t.group} = '${v.g}';`,
    needs: { group: true },
  },
  {
    id: "count",
    kind: "select",
    ordered: false,
    draw: () => ({}),
    phrasings: [
      (t) => `How many rows are in ${t.name}?`,
      (t) => `Count the ${t.name}.`,
      (t) => `How many ${t.name} are there?`,
    ],
    sql: (t) => `SELECT COUNT(*) FROM ${t.name};`,
  },
  {
    id: "countgroup",
    kind: "select",
    ordered: false,
    draw: (rng) => ({ g: group(rng) }),
    phrasings: [
      (t, v) => `How many ${t.name} have ${t.group} ${v.g}?`,
      (t, v) => `Count the ${t.name} whose ${t.group} is ${v.g}.`,
    ],
    sql: (t, v) => `SELECT COUNT(*) FROM ${t.name} WHERE ${t.group} = '${v.g}';`,
    needs: { group: true },
  },
  {
    id: "max",
    kind: "select",
    ordered: false,
    draw: () => ({}),
    phrasings: [
      (t) => `What is the highest ${t.num}?`,
      (t) => `Find the largest ${t.num} in ${t.name}.`,
      (t) => `What is the maximum ${t.num}?`,
    ],
    sql: (t) => `SELECT MAX(${t.num}) FROM ${t.name};`,
  },
  {
    id: "min",
    kind: "select",
    ordered: false,
    draw: () => ({}),
    phrasings: [
      (t) => `What is the lowest ${t.num}?`,
      (t) => `Find the smallest ${t.num} in ${t.name}.`,
      (t) => `What is the minimum ${t.num}?`,
    ],
    sql: (t) => `SELECT MIN(${t.num}) FROM ${t.name};`,
  },
  {
    id: "sum",
    kind: "select",
    ordered: false,
    draw: () => ({}),
    phrasings: [
      (t) => `What is the total ${t.num}?`,
      (t) => `Add up the ${t.num} of all ${t.name}.`,
      (t) => `What is the sum of ${t.num}?`,
    ],
    sql: (t) => `SELECT SUM(${t.num}) FROM ${t.name};`,
  },
  {
    id: "top",
    kind: "select",
    ordered: true,
    draw: (rng) => ({ n: 1 + rng.int(5) }),
    phrasings: [
      (t, v) => `List the top ${v.n} ${t.key}s by ${t.num}, highest first.`,
      (t, v) => `Show the ${v.n} ${t.key}s with the most ${t.num}, in order.`,
    ],
    sql: (t, v) => `SELECT ${t.key} FROM ${t.name} ORDER BY ${t.num} DESC LIMIT ${v.n};`,
  },
  {
    id: "bottom",
    kind: "select",
    ordered: true,
    draw: (rng) => ({ n: 1 + rng.int(5) }),
    phrasings: [
      (t, v) => `List the bottom ${v.n} ${t.key}s by ${t.num}, lowest first.`,
      (t, v) => `Show the ${v.n} ${t.key}s with the least ${t.num}, in order.`,
    ],
    sql: (t, v) => `SELECT ${t.key} FROM ${t.name} ORDER BY ${t.num} ASC LIMIT ${v.n};`,
  },
  {
    id: "lookup",
    kind: "select",
    ordered: false,
    draw: (rng) => ({ v: name(rng) }),
    phrasings: [
      (t, v) => `What is the ${t.num} of ${v.v}?`,
      (t, v) => `Find the ${t.num} where the ${t.key} is ${v.v}.`,
    ],
    sql: (t, v) => `SELECT ${t.num} FROM ${t.name} WHERE ${t.key} = '${v.v}';`,
    needs: { key: "present" },
  },
  {
    id: "insert",
    kind: "mutation",
    ordered: false,
    draw: (rng) => ({ v: name(rng), k: num(rng), g: group(rng) }),
    phrasings: [
      (t, v) => `Add ${v.v} with ${t.num} ${v.k} and ${t.group} ${v.g}.`,
      (t, v) => `Insert a row: ${t.key} ${v.v}, ${t.num} ${v.k}, ${t.group} ${v.g}.`,
    ],
    sql: (t, v) => `INSERT INTO ${t.name} VALUES ('${v.v}', ${v.k}, '${v.g}');`,
    needs: { key: "absent" },
  },
  {
    id: "update",
    kind: "mutation",
    ordered: false,
    draw: (rng) => ({ v: name(rng), k: num(rng) }),
    phrasings: [
      (t, v) => `Set the ${t.num} of ${v.v} to ${v.k}.`,
      (t, v) => `Change ${v.v}'s ${t.num} to ${v.k}.`,
    ],
    sql: (t, v) => `UPDATE ${t.name} SET ${t.num} = ${v.k} WHERE ${t.key} = '${v.v}';`,
    needs: { key: "present" },
  },
  {
    id: "delete",
    kind: "mutation",
    ordered: false,
    draw: (rng) => ({ v: name(rng) }),
    phrasings: [(t, v) => `Delete ${v.v} from ${t.name}.`, (_t, v) => `Remove the row for ${v.v}.`],
    sql: (t, v) => `DELETE FROM ${t.name} WHERE ${t.key} = '${v.v}';`,
    needs: { key: "present" },
  },
  {
    id: "deletelt",
    kind: "mutation",
    ordered: false,
    draw: (rng) => ({ k: 1 + rng.int(99) }),
    phrasings: [
      (t, v) => `Delete the ${t.name} with ${t.num} below ${v.k}.`,
      (t, v) => `Remove every row whose ${t.num} is under ${v.k}.`,
    ],
    sql: (t, v) => `DELETE FROM ${t.name} WHERE ${t.num} < ${v.k};`,
    needs: { threshold: true },
  },
];
