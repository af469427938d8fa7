/**
 * AgentBench DB (THUDM/AgentBench data/dbbench/*.jsonl) as a one-turn skill: the model writes
 * one SQL statement, which runs on the problem's tables in SQLite inside the sandbox. Graded
 * as AgentBench does (src/server/tasks/dbbench/): a query's result against `label`; a change
 * (INSERT/UPDATE/DELETE) by AgentBench's hash of the final table against `answer_md5`, which
 * AgentBench stores as MySQL's result printed by Python (`[('<md5>',)]`), or against the
 * reference statement's hash without one. The reference statement of a change is `sql.query`,
 * or else `label[0]`, where AgentBench's data keeps it.
 *
 * SQLite stands in for AgentBench's MySQL: statements are read with MySQL's string escapes
 * and `#` comments (db/mysql.ts), text compares without regard to case, and a column keeps
 * its declared numeric type only where that cannot change how a value reads (AgentBench makes
 * every column TEXT, and its hash sees that text). Where SQLite still cannot stand in (the
 * reference statement fails here or does not give `answer_md5`), a change is reported as not
 * gradable rather than failed.
 *
 * Tables AgentBench's setup fails to build are left as it leaves them, and their problems
 * still load and run: a table with a row of the wrong length is created empty (MySQL rejects
 * the one multi-row INSERT of all rows), one with a duplicate or invalid column name is not
 * created at all (MySQL rejects the CREATE TABLE).
 *
 * Many turns (`turns`, `dbEpisode` with `runEpisodes`): AgentBench's protocol. The agent runs
 * SQL ("Action: Operation" and a ```sql block) and sees the result rows, or the error, until
 * it commits ("Action: Answer", "Final Answer: [...]"); its statements change the episode's
 * own database, which persists from turn to turn (db/session.ts), and a change is judged by
 * the hash of the tables it leaves.
 */
import { createHash } from "node:crypto";
import type { Environment, StepResult } from "../agent.ts";
import { mysqlToSqlite } from "../db/mysql.ts";
import { runSql, type SqlOutcome, type SqlValue, type TableSpec } from "../db/runner.ts";
import { SqlSession } from "../db/session.ts";
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
  /**
   * The expected table hash of a change, as a bare digest: AgentBench's `answer_md5` with
   * MySQL's result formatting taken off (`[('<md5>',)]` → `<md5>`; an empty table's NULL is
   * "None"; several tables' digests sorted and joined by "_").
   */
  answerMd5?: string;
  addDescription: string;
  /**
   * Tables that AgentBench's MySQL setup does not build as given; the problem still runs, on
   * what the setup leaves, here as there.
   */
  setupIssues: TableSetupIssue[];
}

/** A table AgentBench's setup (CREATE TABLE, then one multi-row INSERT) fails to build. */
export interface TableSetupIssue {
  table: string;
  /**
   * "empty": a row has the wrong number of values, MySQL rejects the whole INSERT and the
   * table stays empty; "absent": MySQL rejects the CREATE TABLE itself (a duplicate or
   * invalid column name), so there is no such table.
   */
  outcome: "empty" | "absent";
  /** Why, e.g. "row 26 has 3 values for 6 columns". */
  why: string;
}

/** Declared column types mapped to SQLite types that keep MySQL's numeric comparisons. */
export function sqliteType(declared: string): string {
  const t = declared.toUpperCase();
  if (t.includes("INT")) return "INTEGER";
  if (/REAL|FLOA|DOUB|DEC|NUM/.test(t)) return "REAL";
  return "TEXT";
}

const NUMERIC_TEXT = /^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$/;

/**
 * True when SQLite's numeric affinity keeps `v` as it reads: AgentBench's MySQL stores every
 * value as TEXT, and its table hash sees that text, so "1.0", "05" or "1e3" must not become
 * 1, 5 or 1000 here.
 */
function keepsText(v: SqlValue): boolean {
  if (typeof v !== "string" || !NUMERIC_TEXT.test(v)) return true;
  const n = Number(v);
  return Number.isSafeInteger(n) || !Number.isInteger(n) ? String(n) === v : false;
}

/**
 * The SQLite type of a column: the declared type's (numeric columns compare as numbers, as
 * MySQL compares text with numbers), or TEXT, AgentBench's type for every column, when a
 * numeric affinity would change how one of the column's values reads.
 */
function columnType(declared: string, rows: unknown[], col: number): string {
  const type = sqliteType(declared);
  if (type === "TEXT") return type;
  for (const r of rows) if (Array.isArray(r) && !keepsText(r[col] as SqlValue)) return "TEXT";
  return type;
}

/** Why MySQL's CREATE TABLE rejects these names, or undefined when it takes them. */
function createTableError(table: string, columns: string[]): string | undefined {
  // MySQL: identifiers of at most 64 characters, not empty, not ending in a space; column
  // names compare without regard to case (errors 1059, 1166, 1060).
  for (const name of [table, ...columns]) {
    if (name === "") return "a column has an empty name";
    if (name.length > 64) return `the name ${JSON.stringify(clip(name, 30))} is over 64 characters`;
    if (/\s$/.test(name)) return `the name ${JSON.stringify(name)} ends with a space`;
  }
  const seen = new Set<string>();
  for (const c of columns) {
    const k = c.toLowerCase();
    if (seen.has(k)) return `the column name ${JSON.stringify(c)} appears twice`;
    seen.add(k);
  }
  return undefined;
}

function parseTable(f: Fields, t: unknown, at: string, issues: TableSetupIssue[]): TableSpec {
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
    return { name: co.name as string, declared: typeof co.type === "string" ? co.type : "TEXT" };
  });
  const rows = (info as Record<string, unknown>).rows;
  if (!Array.isArray(rows)) bad("table_info.rows must be an array of rows");
  let ragged: string | undefined;
  (rows as unknown[]).forEach((r, i) => {
    if (!Array.isArray(r)) bad(`table_info.rows[${i}] must be an array of values`);
    for (const v of r as unknown[]) {
      if (v !== null && typeof v !== "string" && typeof v !== "number") {
        bad(`table_info.rows[${i}] holds a ${typeof v}; values must be strings, numbers or null`);
      }
    }
    // AgentBench inserts all rows with one INSERT ... VALUES (...),(...); MySQL rejects the
    // whole statement when a row's length differs from the column list's (error 1136, or a
    // syntax error for an empty row), and the problem runs on the empty table.
    const n = (r as unknown[]).length;
    if (n !== columns.length && !ragged) {
      ragged = `row ${i + 1} has ${n} values for ${columns.length} columns`;
    }
  });
  const table = o.table_name as string;
  const rejected = createTableError(
    table,
    columns.map((c) => c.name),
  );
  if (rejected) issues.push({ table, outcome: "absent", why: rejected });
  else if (ragged) issues.push({ table, outcome: "empty", why: ragged });
  return {
    name: o.table_name as string,
    columns: columns.map((c, i) => ({
      name: c.name,
      type: columnType(c.declared, rows as unknown[], i),
    })),
    rows: ragged ? [] : (rows as SqlValue[][]),
  };
}

const DIGEST = /^[0-9a-f]{32}$/i;

/**
 * `answer_md5` as a bare digest. AgentBench writes it as MySQL's result printed by Python,
 * `[('<md5>',)]` (`[(None,)]` for an empty table), and compares it after taking that
 * formatting off (result_processor.py `_clean_answer`); a bare digest, or several joined by
 * "_" (one per table), is what its hash function returns. Undefined when not understood.
 */
export function parseAnswerMd5(raw: string): string | undefined {
  let s = raw.trim();
  const tuple = /^\[\s*\(\s*(?:'([^']*)'|"([^"]*)"|(None))\s*,?\s*\)\s*,?\s*\]$/.exec(s);
  if (tuple) s = (tuple[1] ?? tuple[2] ?? tuple[3]).trim();
  if (s === "None") return s;
  const parts = s.split("_");
  if (!parts.every((p) => DIGEST.test(p))) return undefined;
  return parts
    .map((p) => p.toLowerCase())
    .sort()
    .join("_");
}

function parseDbBenchRecord(rec: SourceRecord, id: string, split: Split): DbBenchProblem {
  const f = new Fields(rec);
  const description = f.string("description");
  const types = f.stringArray("type");
  if (types.length === 0) f.fail("type", 'is empty: expected e.g. ["SELECT"] or ["INSERT"]');
  const type = types[0];
  const rawTables = f.raw("table");
  if (rawTables === undefined) f.fail("table", "is missing");
  const setupIssues: TableSetupIssue[] = [];
  const tables = Array.isArray(rawTables)
    ? rawTables.map((t, i) => parseTable(f, t, `table[${i}]`, setupIssues))
    : [parseTable(f, rawTables, "table", setupIssues)];
  const sqlObj = f.has("sql") ? f.object("sql") : undefined;
  const query = sqlObj?.query;
  if (sqlObj && typeof query !== "string") f.fail("sql.query", "must be a string");
  const mutation = MUTATIONS.includes(type.toUpperCase());
  let label: string[] = [];
  let reference = typeof query === "string" ? query : "";
  let answerMd5: string | undefined;
  if (!mutation) {
    const raw = f.raw("label");
    if (raw === undefined) f.fail("label", "is missing: a query needs its expected answer");
    label = (Array.isArray(raw) ? raw : [raw]).map((x) => String(x));
  } else {
    // AgentBench's own data keeps a change's reference statement in label[0].
    const raw = f.raw("label");
    if (Array.isArray(raw)) label = raw.map((x) => String(x));
    if (!reference && label.length === 1 && label[0].trim() !== "") reference = label[0];
    const md5 = f.optString("answer_md5");
    if (md5 !== undefined && md5.trim() !== "") {
      answerMd5 = parseAnswerMd5(md5);
      if (answerMd5 === undefined) {
        f.fail(
          "answer_md5",
          `is not a table hash: ${JSON.stringify(clip(md5, 60))} (expected [('<32 hex digits>',)] or the bare digest)`,
        );
      }
    }
    if (!reference && answerMd5 === undefined) {
      f.fail("answer_md5", "is missing: a change needs answer_md5 or a reference statement");
    }
  }
  const addDescription = f.optString("add_description") ?? "";
  return {
    id,
    split,
    template: type,
    key: `dbbench:${createHash("sha1").update(`${addDescription}\n${description}`).digest("hex").slice(0, 16)}`,
    instruction: description,
    reference,
    type,
    tables,
    label,
    answerMd5,
    addDescription,
    setupIssues,
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
const md5 = (s: string) => createHash("md5").update(s).digest("hex");

/** MySQL's GROUP_CONCAT result is cut at group_concat_max_len, 1024 bytes by default. */
const GROUP_CONCAT_MAX_LEN = 1024;

/**
 * AgentBench's table hash, the MySQL query
 * `SELECT MD5(GROUP_CONCAT(rowhash ORDER BY rowhash)) FROM (SELECT SUBSTRING(MD5(CONCAT_WS(
 * ',', cols...)), 1, 5) AS rowhash FROM t)`: CONCAT_WS skips NULLs, GROUP_CONCAT joins with
 * "," and is cut at 1024 bytes, and an empty table gives NULL ("None").
 */
export function tableHash(rows: SqlValue[][]): string {
  if (rows.length === 0) return "None";
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
  return md5(rowHashes.join(",").slice(0, GROUP_CONCAT_MAX_LEN));
}

/** All tables' hashes, sorted and joined by "_" (calculate_tables_hash_async). */
function stateHash(state: Record<string, SqlValue[][] | string>, tables: TableSpec[]): string {
  return tables
    .map((t) => {
      const rows = state[t.name];
      return Array.isArray(rows) ? tableHash(rows) : "missing";
    })
    .sort()
    .join("_");
}

/**
 * The tables as AgentBench's setup leaves them (without those it fails to create), comparing
 * text without regard to case as MySQL does.
 */
function builtTables(p: DbBenchProblem): TableSpec[] {
  const absent = new Set(p.setupIssues.filter((i) => i.outcome === "absent").map((i) => i.table));
  return p.tables.filter((t) => !absent.has(t.name)).map((t) => ({ ...t, nocase: true }));
}

/** Why a problem runs on an empty or missing table, for reason messages. */
function setupNote(p: DbBenchProblem): string {
  if (p.setupIssues.length === 0) return "";
  const e = p.setupIssues[0];
  const what = e.outcome === "empty" ? "is empty" : "does not exist";
  return ` (table ${JSON.stringify(e.table)} ${what}, as in AgentBench: ${e.why})`;
}

function notGradable(reason: string): Grade {
  return { pass: false, gradable: false, reason };
}

const isChange = (p: DbBenchProblem) => MUTATIONS.includes(p.type.toUpperCase());

/**
 * The table hash a change must leave, from the reference statement's outcome (`ref`, absent
 * without a reference) and answer_md5; or the grade of a problem SQLite cannot grade, where
 * the reference fails here or does not give answer_md5.
 */
function changeTarget(p: DbBenchProblem, ref: SqlOutcome | undefined): { want: string } | Grade {
  let want = p.answerMd5;
  if (ref) {
    if (ref.error !== undefined) {
      return notGradable(
        `not gradable here: the reference statement fails in SQLite (${clip(ref.error, 60)})`,
      );
    }
    const refHash = stateHash(ref.state, p.tables);
    if (want === undefined) want = refHash;
    else if (refHash !== want) {
      return notGradable(
        "not gradable here: the reference statement does not give answer_md5 in SQLite",
      );
    }
  }
  // The loader keeps no change without a reference or answer_md5.
  return { want: want as string };
}

function judgeChange(
  p: DbBenchProblem,
  state: Record<string, SqlValue[][] | string>,
  want: string,
): Grade {
  return stateHash(state, p.tables) === want
    ? { pass: true, reason: "ok" }
    : { pass: false, reason: `wrong table contents (hash differs)${setupNote(p)}` };
}

async function gradeChange(run: Runner, p: DbBenchProblem, sql: string): Promise<Grade> {
  // The reference runs beside every answer, so the verdict on gradability does not depend
  // on the answer: SQLite must reproduce AgentBench's answer_md5 with it.
  const queries = [...(p.reference ? [p.reference] : []), ...(sql ? [sql] : [])].map(mysqlToSqlite);
  const res = await runSql(run, builtTables(p), queries);
  if ("failure" in res) return { pass: false, reason: res.failure };
  const target = changeTarget(p, p.reference ? res.outcomes[0] : undefined);
  if (!("want" in target)) return target;
  if (!sql) return { pass: false, reason: "empty answer" };
  const got = res.outcomes[res.outcomes.length - 1];
  if (got.error !== undefined) return { pass: false, reason: `SQL error: ${clip(got.error, 80)}` };
  return judgeChange(p, got.state, target.want);
}

async function gradeDbBench(run: Runner, p: DbBenchProblem, sql: string): Promise<Grade> {
  const answer = sql.trim();
  if (isChange(p)) return gradeChange(run, p, answer);
  if (answer === "") return { pass: false, reason: "empty answer" };
  const res = await runSql(run, builtTables(p), [mysqlToSqlite(answer)]);
  if ("failure" in res) return { pass: false, reason: res.failure };
  const got = res.outcomes[0];
  if (got.error !== undefined) return { pass: false, reason: `SQL error: ${clip(got.error, 80)}` };
  const values = got.rows.flat().map((v) => (v === null ? "None" : String(v)));
  if (compareAnswers(values, p.label)) return { pass: true, reason: "ok" };
  return {
    pass: false,
    reason: `wrong result: got ${clip(JSON.stringify(values), 50)}, expected ${clip(JSON.stringify(p.label), 50)}${setupNote(p)}`,
  };
}
export type DbAction =
  | { action: "operation"; sql: string }
  | { action: "answer"; answer: string[] | null }
  | { action: "invalid"; why: string };

/**
 * AgentBench DB's action parser (its v0.2 task): the first "Action: ..." line decides. An
 * Operation runs the first ```sql block; any other turn commits, with the list on its "Final
 * Answer:" line (null without one). An Operation without a ```sql block is invalid.
 */
export function parseDbAction(raw: string): DbAction {
  const act = /Action:[ \t]*([^\n]*)/.exec(raw);
  if (act && /^operation\b/i.test(act[1].trim())) {
    const block = /```sql[ \t]*\n([\s\S]*?)\n?[ \t]*```/i.exec(raw);
    if (!block) return { action: "invalid", why: "Action: Operation without a ```sql block" };
    return { action: "operation", sql: block[1].trim() };
  }
  const fin = /(?:^|\n)[ \t]*Final Answer:([^\n]*)/.exec(raw);
  return { action: "answer", answer: fin ? parseAnswerList(fin[1]) : null };
}

/** A Python string literal's escapes, resolved (JSON's \uXXXX included). */
const PY_ESCAPES: Record<string, string> = { n: "\n", t: "\t", r: "\r", "0": "\0" };

/**
 * The committed answer list, as AgentBench reads it (Python's `eval`, else the whole text as
 * one answer): a list (or tuple) of quoted strings, numbers or bare words. An item that is
 * itself a list or tuple is kept as its text, which matches no label, as in AgentBench.
 */
export function parseAnswerList(text: string): string[] {
  const s = text.trim();
  const whole = [s];
  const open = s[0];
  if (open !== "[" && open !== "(") return whole;
  const close = open === "[" ? "]" : ")";
  const items: string[] = [];
  let i = 1;
  const skipBlanks = () => {
    while (i < s.length && /\s/.test(s[i])) i++;
  };
  for (;;) {
    skipBlanks();
    if (s[i] === close) break;
    let item: string;
    if (s[i] === "'" || s[i] === '"') {
      const q = s[i++];
      item = "";
      for (; i < s.length && s[i] !== q; i++) {
        if (s[i] !== "\\" || i + 1 >= s.length) {
          item += s[i];
          continue;
        }
        const e = s[++i];
        if (e === "u" && /^[0-9a-fA-F]{4}$/.test(s.slice(i + 1, i + 5))) {
          item += String.fromCharCode(Number.parseInt(s.slice(i + 1, i + 5), 16));
          i += 4;
        } else item += PY_ESCAPES[e] ?? e;
      }
      if (i >= s.length) return whole;
      i++;
    } else {
      // A bare item (a number, None) up to the next comma or the close at its own depth.
      const start = i;
      let depth = 0;
      let quote = "";
      for (; i < s.length; i++) {
        const c = s[i];
        if (quote) {
          if (c === "\\") i++;
          else if (c === quote) quote = "";
        } else if (c === "'" || c === '"') quote = c;
        else if (c === "[" || c === "(") depth++;
        else if (c === "]" || c === ")") {
          if (depth === 0) break;
          depth--;
        } else if (c === "," && depth === 0) break;
      }
      item = s.slice(start, i).trim();
      if (item === "") return whole;
    }
    items.push(item);
    skipBlanks();
    if (s[i] === ",") {
      i++;
      continue;
    }
    if (s[i] === close) break;
    return whole;
  }
  return s.slice(i + 1).trim() === "" ? items : whole;
}

const EPISODE_INTRO =
  "You help me answer a question by operating a MySQL database with SQL. Explain the problem " +
  "and your thoughts first; then, each turn, take exactly one action.\n" +
  "To run SQL (one statement, on one line; only the first ```sql block of a turn runs):\n" +
  "Action: Operation\n```sql\nSELECT * FROM table WHERE condition;\n```\n" +
  "I will run it and show you the raw result rows, or the error.\n" +
  "When you are done, commit your answer:\n" +
  'Action: Answer\nFinal Answer: ["ANSWER1", "ANSWER2", ...]\n' +
  "Commit only when you are sure: the answer must be exactly right. If the question asks to " +
  "change the database, make the change first; then the answer can be anything.\n\n";

/** The opening of an episode's transcript: the rules, the question and the table. */
export function dbEpisodePrompt(p: DbBenchProblem): string {
  const info = p.addDescription ? `${p.addDescription}\n` : "";
  return `${EPISODE_INTRO}Question: ${p.instruction}\n${info}Agent: `;
}

/** Stop strings for `runEpisodes` with `dbEpisode`: the observation's prefix. */
export const DB_EPISODE_STOP = ["\nDatabase:"];

export interface DbEpisodeOptions {
  /** Characters of a result shown to the agent (AgentBench: 800, then "[TRUNCATED]"). */
  maxOutput?: number;
}

/**
 * AgentBench DB's multi-turn protocol, for `runEpisodes`: each "Action: Operation" runs its
 * SQL on the episode's own database in the sandbox (a SqlSession: the SQLite file goes from
 * one turn's sandbox to the next) and shows the result rows as Python prints them, or the
 * error; "Action: Answer" (any turn that is not an Operation) commits. A query is judged by
 * its "Final Answer:" list against the label (`compareAnswers`), a change by the hash of the
 * tables the agent left (answer_md5). A change whose reference SQLite cannot reproduce ends
 * at its first step, not gradable, whatever the agent does.
 */
export function dbEpisode(
  run: Runner,
  p: DbBenchProblem,
  opts: DbEpisodeOptions = {},
): Environment {
  const maxOutput = opts.maxOutput ?? 800;
  const tables = builtTables(p);
  const session = new SqlSession(
    run,
    tables,
    tables.map((t) => t.name),
    { maxChars: maxOutput },
  );
  const change = isChange(p);
  let target: Promise<{ want: string } | Grade> | undefined;
  // For a change: the hash to reach, or the grade saying it cannot be graded here.
  const changeTargetOf = () => {
    target ??= (async () => {
      if (!p.reference) return changeTarget(p, undefined);
      const res = await runSql(run, tables, [mysqlToSqlite(p.reference)]);
      if ("failure" in res) return { pass: false, reason: res.failure };
      return changeTarget(p, res.outcomes[0]);
    })();
    return target;
  };
  /** The grade that ends the episode when the change cannot be graded (or checked) here. */
  const blocked = async (): Promise<Grade | undefined> => {
    if (!change) return undefined;
    const t = await changeTargetOf();
    return "want" in t ? undefined : t;
  };
  const commit = async (answer: string[] | null): Promise<Grade> => {
    if (change) {
      const t = await changeTargetOf();
      if (!("want" in t)) return t;
      const s = await session.state();
      if ("failure" in s) return { pass: false, reason: s.failure };
      return judgeChange(p, s.state, t.want);
    }
    // AgentBench: any turn that is not an Operation commits; without "Final Answer:", it fails.
    if (answer === null) return { pass: false, reason: "committed without a Final Answer line" };
    if (compareAnswers(answer, p.label)) return { pass: true, reason: "ok" };
    return {
      pass: false,
      reason: `wrong answer: got ${clip(JSON.stringify(answer), 50)}, expected ${clip(JSON.stringify(p.label), 50)}${setupNote(p)}`,
    };
  };
  return {
    start: async () => dbEpisodePrompt(p),
    step: async (text): Promise<StepResult> => {
      const a = parseDbAction(text);
      if (a.action === "answer") return { done: true, grade: await commit(a.answer) };
      if (a.action === "invalid") {
        return {
          done: true,
          grade: (await blocked()) ?? { pass: false, reason: `invalid action: ${a.why}` },
        };
      }
      // The check of the change's reference runs beside the agent's first statement.
      const [r, stop] = await Promise.all([session.exec(mysqlToSqlite(a.sql)), blocked()]);
      if (stop) return { done: true, grade: stop };
      if ("failure" in r) return { done: true, grade: { pass: false, reason: r.failure } };
      let out = "error" in r ? `Error: ${r.error}` : r.rows;
      if (out.length > maxOutput) out = `${out.slice(0, maxOutput)}[TRUNCATED]`;
      return { done: false, observation: `\nDatabase: ${out}\nAgent: ` };
    },
    timeout: async () =>
      (await blocked()) ?? { pass: false, reason: "round limit reached before an answer" },
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
  /**
   * Judge as multi-turn episodes of at most this many model turns (AgentBench's protocol,
   * `dbEpisode`: SQL operations with their results, then "Action: Answer"; AgentBench uses
   * 15). Default: one turn, the answer one SQL statement.
   */
  turns?: number;
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
    ...(opts.turns === undefined
      ? {}
      : {
          episodes: {
            environment: (p: DbBenchProblem, run: Runner) => dbEpisode(run, p),
            maxRounds: opts.turns,
            stop: DB_EPISODE_STOP,
          },
        }),
    grade: (p, output, ctx) => gradeDbBench(ctx.run, p, extractAnswer(output, stop)),
  };
}
