/**
 * AgentBench DB (THUDM/AgentBench data/dbbench/*.jsonl) as a one-turn skill: the model writes
 * one SQL statement, which runs on the problem's tables in SQLite inside the sandbox. Graded
 * as AgentBench does: a query's result against `label`; a change by a hash of the final table,
 * against the reference `sql.query` run the same way (or `answer_md5` without one).
 */
import { createHash } from "node:crypto";
import { runSql, type SqlOutcome, type SqlValue, type TableSpec } from "../db/runner.ts";
import { clip, extractAnswer } from "../text.ts";
import type { Grade, Problem, Runner, Skill, Split } from "../types.ts";
import { DataError, Fields, type SourceRecord } from "./records.ts";
import { type LoadOptions, loadSplits, type SplitSources } from "./splits.ts";

const MUTATIONS = ["INSERT", "UPDATE", "DELETE"];

export interface DbBenchProblem extends Problem {
  /** AgentBench's `type[0]`: SELECT-like kinds (other, counting, ranking...) or a mutation. */
  type: string;
  tables: TableSpec[];
  label: string[];
  answerMd5?: string;
  addDescription: string;
}

/** Declared column types mapped to SQLite types that keep MySQL's numeric comparisons. */
export function sqliteType(declared: string): string {
  const t = declared.toUpperCase();
  if (t.includes("INT")) return "INTEGER";
  if (/REAL|FLOA|DOUB|DEC|NUM/.test(t)) return "REAL";
  return "TEXT";
}

function parseTable(f: Fields, t: unknown, at: string): TableSpec {
  const bad = (what: string): never => {
    throw new DataError(`${f.where(at)} ${what}`);
  };
  if (t === null || typeof t !== "object" || Array.isArray(t)) bad("must be an object");
  const o = t as Record<string, unknown>;
  if (typeof o.table_name !== "string" || o.table_name === "") bad("needs a string table_name");
  const info = o.table_info as Record<string, unknown> | undefined;
  if (!info || typeof info !== "object") bad("needs a table_info object");
  const cols = (info as Record<string, unknown>).columns;
  if (!Array.isArray(cols) || cols.length === 0)
    bad("table_info.columns must be a non-empty array");
  const columns = (cols as unknown[]).map((c, i) => {
    const co = c as Record<string, unknown>;
    if (!co || typeof co.name !== "string") bad(`table_info.columns[${i}] needs a string name`);
    return {
      name: co.name as string,
      type: sqliteType(typeof co.type === "string" ? co.type : "TEXT"),
    };
  });
  const rows = (info as Record<string, unknown>).rows;
  if (!Array.isArray(rows)) bad("table_info.rows must be an array of rows");
  (rows as unknown[]).forEach((r, i) => {
    if (!Array.isArray(r) || r.length !== columns.length) {
      bad(`table_info.rows[${i}] must be an array of ${columns.length} values`);
    }
    for (const v of r as unknown[]) {
      if (v !== null && typeof v !== "string" && typeof v !== "number") {
        bad(`table_info.rows[${i}] holds a ${typeof v}; values must be strings, numbers or null`);
      }
    }
  });
  return { name: o.table_name as string, columns, rows: rows as SqlValue[][] };
}

function parseDbBenchRecord(rec: SourceRecord, id: string, split: Split): DbBenchProblem {
  const f = new Fields(rec);
  const description = f.string("description");
  const types = f.stringArray("type");
  if (types.length === 0) f.fail("type", 'is empty: expected e.g. ["SELECT"] or ["INSERT"]');
  const type = types[0];
  const rawTables = f.raw("table");
  if (rawTables === undefined) f.fail("table", "is missing");
  const tables = Array.isArray(rawTables)
    ? rawTables.map((t, i) => parseTable(f, t, `table[${i}]`))
    : [parseTable(f, rawTables, "table")];
  const sqlObj = f.has("sql") ? f.object("sql") : undefined;
  const query = sqlObj?.query;
  if (sqlObj && typeof query !== "string") f.fail("sql.query", "must be a string");
  const mutation = MUTATIONS.includes(type.toUpperCase());
  let label: string[] = [];
  const answerMd5 = f.optString("answer_md5");
  if (!mutation) {
    const raw = f.raw("label");
    if (raw === undefined) f.fail("label", "is missing: a query needs its expected answer");
    label = (Array.isArray(raw) ? raw : [raw]).map((x) => String(x));
  } else if (typeof query !== "string" && !answerMd5) {
    f.fail("sql", "is missing: a change needs sql.query or answer_md5 to compare the table with");
  }
  const addDescription = f.optString("add_description") ?? "";
  return {
    id,
    split,
    template: type,
    key: `dbbench:${createHash("sha1").update(`${addDescription}\n${description}`).digest("hex").slice(0, 16)}`,
    instruction: description,
    reference: typeof query === "string" ? query : "",
    type,
    tables,
    label,
    answerMd5,
    addDescription,
  };
}

// AgentBench's answer comparison (result_processor.py), re-implemented.
const SPECIAL = new Set([
  "none",
  "null",
  "undefined",
  "nan",
  "inf",
  "infinity",
  "-inf",
  "-infinity",
  "",
]);

function normalise(v: string): string {
  let s = v.trim().replace(/^['"]+|['"]+$/g, "");
  if (s.endsWith("%")) s = s.slice(0, -1).trim();
  if (s.includes(",") && !s.startsWith("[")) s = s.replaceAll(",", "");
  return SPECIAL.has(s.toLowerCase()) ? "0" : s;
}

const isFloat = (s: string) => s.trim() !== "" && Number.isFinite(Number(s));
const floatEq = (a: string, b: string) => Math.abs(Number(a) - Number(b)) <= 1e-2;

export function compareAnswers(answer: string[], truth: string[]): boolean {
  const a = answer.map(normalise);
  const t = truth.map(normalise);
  if (a.length === 1 && t.length === 1) {
    if (isFloat(a[0]) && isFloat(t[0])) return floatEq(a[0], t[0]);
    return a[0] === t[0];
  }
  if (a.every(isFloat) && t.every(isFloat)) {
    if (a.length !== t.length) return false;
    const used = t.map(() => false);
    return a.every((x) => {
      const j = t.findIndex((y, k) => !used[k] && floatEq(x, y));
      if (j < 0) return false;
      used[j] = true;
      return true;
    });
  }
  const sa = new Set(a);
  const st = new Set(t);
  return sa.size === st.size && [...sa].every((x) => st.has(x));
}

const text = (v: SqlValue) => (v === null ? null : String(v));

/** AgentBench's table hash: md5 over the sorted 5-hex-digit md5 prefixes of each row. */
function tableHash(rows: SqlValue[][]): string {
  const md5 = (s: string) => createHash("md5").update(s).digest("hex");
  const rowHashes = rows
    .map((r) =>
      md5(
        r
          .map(text)
          .filter((x) => x !== null)
          .join(","),
      ).slice(0, 5),
    )
    .sort();
  return md5(rowHashes.join(","));
}

function stateHash(o: SqlOutcome, tables: TableSpec[]): string {
  return tables
    .map((t) => {
      const rows = o.state[t.name];
      return Array.isArray(rows) ? tableHash(rows) : "missing";
    })
    .sort()
    .join("_");
}

async function gradeDbBench(run: Runner, p: DbBenchProblem, sql: string): Promise<Grade> {
  if (sql.trim() === "") return { pass: false, reason: "empty answer" };
  const mutation = MUTATIONS.includes(p.type.toUpperCase());
  const queries = mutation && p.reference ? [p.reference, sql] : [sql];
  const res = await runSql(run, p.tables, queries);
  if ("failure" in res) return { pass: false, reason: res.failure };
  const got = res.outcomes[res.outcomes.length - 1];
  if (got.error !== undefined) return { pass: false, reason: `SQL error: ${clip(got.error, 80)}` };
  if (mutation) {
    let want = p.answerMd5 ?? "";
    if (p.reference) {
      const ref = res.outcomes[0];
      if (ref.error !== undefined)
        throw new Error(`dbbench problem ${p.id}: the reference SQL failed: ${ref.error}`);
      want = stateHash(ref, p.tables);
    }
    return stateHash(got, p.tables) === want
      ? { pass: true, reason: "ok" }
      : { pass: false, reason: "wrong table contents (hash differs)" };
  }
  const values = got.rows.flat().map((v) => (v === null ? "None" : String(v)));
  if (compareAnswers(values, p.label)) return { pass: true, reason: "ok" };
  return {
    pass: false,
    reason: `wrong result: got ${clip(JSON.stringify(values), 50)}, expected ${clip(JSON.stringify(p.label), 50)}`,
  };
}

/** One-turn prompt: AgentBench's table description and question, then the SQL on one line. */
function dbBenchPrompt(p: DbBenchProblem): string {
  const info = p.addDescription ? `${p.addDescription}\n` : "";
  return `${info}Question: ${p.instruction}\nSQL: `;
}

export interface DbBenchOptions extends LoadOptions {
  name?: string;
  maxTokens?: number;
  format?: (p: DbBenchProblem) => string;
}

/**
 * AgentBench DB files as the skill `db` (or `opts.name`): one SQL statement on one line, at
 * most `maxTokens` tokens (default 256), run on the problem's tables in SQLite in the
 * sandbox. Reads every file now (JSON, JSON array or JSONL, per split or one pool divided by
 * `assign`); throws a DataError naming file, line and field for an unreadable file, one
 * with no records, a malformed record, or a problem in two splits, and an Error for an
 * unknown split or no files at all.
 */
export function loadDbBenchSkill(
  sources: SplitSources,
  opts: DbBenchOptions = {},
): Skill<DbBenchProblem> {
  const { problems, skipped } = loadSplits("dbbench", sources, parseDbBenchRecord, opts);
  const stop = ["\n"];
  return {
    name: opts.name ?? "db",
    problems,
    skipped,
    format: opts.format ?? dbBenchPrompt,
    stop,
    terminator: "\n",
    maxTokens: opts.maxTokens ?? 256,
    grade: (p, output, ctx) => gradeDbBench(ctx.run, p, extractAnswer(output, stop)),
  };
}
