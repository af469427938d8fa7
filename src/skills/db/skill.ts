/** The miniature DB skill (stands in for AgentBench DB). */
import type { Rng } from "../../util/rng.ts";
import { lazySplits, MINI_FORMAT, type MiniOptions } from "../mini.ts";
import { comboKey, pick, sample } from "../splits.ts";
import { clip } from "../text.ts";
import type { Grade, Problem, Runner, Skill } from "../types.ts";
import { NAMES, WORDS } from "../vocab.ts";
import { runSql, type SqlOutcome, type SqlValue, sameRows, type TableSpec } from "./runner.ts";
import {
  DB_TEMPLATES,
  type DbTemplate,
  TABLES,
  type TableShape,
  type Values,
} from "./templates.ts";

export interface DbProblem extends Problem {
  kind: "select" | "mutation";
  ordered: boolean;
  tables: TableSpec[];
}

/** Rows for one problem: distinct keys, distinct numbers (so ORDER BY has no ties). */
function makeRows(rng: Rng, tpl: DbTemplate, v: Values): SqlValue[][] {
  const n = 4 + rng.int(4);
  const keys: string[] = sample(rng, NAMES, n);
  const nums = sample(
    rng,
    Array.from({ length: 100 }, (_, i) => i),
    n,
  );
  const groups: string[] = sample(rng, WORDS, 2 + rng.int(2));
  const rowGroups = keys.map(() => pick(rng, groups));
  const needs = tpl.needs ?? {};
  if (needs.key === "present" && !keys.includes(String(v.v))) keys[rng.int(n)] = String(v.v);
  if (needs.key === "absent") {
    const i = keys.indexOf(String(v.v));
    if (i >= 0) keys[i] = NAMES.find((x) => !keys.includes(x)) ?? keys[i];
  }
  if (needs.group && !rowGroups.includes(String(v.g))) {
    // Some rows, not all, get the asked-for group.
    for (const i of sample(
      rng,
      keys.map((_, j) => j),
      1 + rng.int(n - 1),
    )) {
      rowGroups[i] = String(v.g);
    }
  }
  if (needs.threshold) {
    const k = Number(v.k);
    const free = (lo: number, hi: number) => {
      for (let x = lo; x <= hi; x++) if (!nums.includes(x)) return x;
      return -1;
    };
    if (k < 99 && !nums.some((x) => x > k)) nums[0] = free(k + 1, 99);
    if (k > 0 && !nums.some((x) => x < k)) nums[n - 1] = free(0, k - 1);
  }
  return keys.map((key, i) => [key, nums[i], rowGroups[i]]);
}

function tableSpec(t: TableShape, rows: SqlValue[][]): TableSpec {
  return {
    name: t.name,
    columns: [
      { name: t.key, type: "TEXT" },
      { name: t.num, type: "INTEGER" },
      { name: t.group, type: "TEXT" },
    ],
    rows,
  };
}

const show = (rows: SqlValue[][]) => clip(JSON.stringify(rows), 50);

/** Judges an answer's outcome against the reference's: result set, or final tables. */
function judgeSql(
  want: SqlOutcome,
  got: SqlOutcome,
  kind: "select" | "mutation",
  ordered: boolean,
): Grade {
  if (got.error !== undefined) return { pass: false, reason: `SQL error: ${clip(got.error, 80)}` };
  if (kind === "mutation") {
    const bad = Object.keys(want.state).filter((name) => {
      const g = got.state[name];
      const w = want.state[name];
      return !(Array.isArray(g) && Array.isArray(w) && sameRows(g, w, false));
    });
    if (bad.length === 0) return { pass: true, reason: "ok" };
    return { pass: false, reason: `wrong table contents: ${bad.join(", ")}` };
  }
  if (sameRows(got.rows, want.rows, ordered)) return { pass: true, reason: "ok" };
  return {
    pass: false,
    reason: `wrong result: got ${show(got.rows)}, expected ${show(want.rows)}`,
  };
}

async function gradeSql(run: Runner, p: DbProblem, output: string): Promise<Grade> {
  if (output.trim() === "") return { pass: false, reason: "empty answer" };
  const res = await runSql(run, p.tables, [p.reference, output]);
  if ("failure" in res) return { pass: false, reason: res.failure };
  const [want, got] = res.outcomes;
  if (want.error !== undefined) {
    throw new Error(`db problem ${p.id}: the reference SQL failed: ${want.error}`);
  }
  return judgeSql(want, got, p.kind, p.ordered);
}

export function createDbSkill(opts: MiniOptions = {}): Skill<DbProblem> {
  const problems = lazySplits<DbProblem>("db", opts, (rng) => {
    const tpl = pick(rng, DB_TEMPLATES);
    const t = pick(rng, TABLES);
    const v = tpl.draw(rng);
    const key = comboKey(tpl.id, { table: t.name, ...v });
    return {
      key,
      build: (id, split) => ({
        id,
        split,
        template: tpl.id,
        key,
        instruction: `Table ${t.name}(${t.key}, ${t.num}, ${t.group}). ${pick(rng, tpl.phrasings)(t, v)}`,
        reference: tpl.sql(t, v),
        kind: tpl.kind,
        ordered: tpl.ordered,
        tables: [tableSpec(t, makeRows(rng, tpl, v))],
      }),
    };
  });
  return {
    name: "db",
    problems,
    ...MINI_FORMAT,
    grade: (p, output, ctx) => gradeSql(ctx.run, p, output),
  };
}
