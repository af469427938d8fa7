/**
 * Executes SQL against a freshly built SQLite database inside the sandbox, with python3's
 * sqlite3 module: model-written SQL never runs in this process, where a recursive CTE could
 * hang it and ATTACH or VACUUM INTO could write files.
 */

import type { SandboxResult } from "../../sandbox/index.ts";
import { SQL_LIMITS } from "../limits.ts";
import { nonce, ranTooLong } from "../text.ts";
import type { Runner } from "../types.ts";

export type SqlValue = string | number | null;

export interface TableSpec {
  name: string;
  columns: { name: string; type: string }[];
  rows: SqlValue[][];
  /** Compare the columns' text without regard to (ASCII) case, as MySQL's default collations do. */
  nocase?: boolean;
}

export interface SqlOutcome {
  /** Set when the statement failed: SQLite's message. */
  error?: string;
  rows: SqlValue[][];
  /** Every table's rows after the statement, by table name. */
  state: Record<string, SqlValue[][]>;
}

/**
 * Python shared by the SQL scripts: reads spec.json (and removes it), then defines `q` (a
 * quoted name), `value` (a result value as JSON can carry it), `connect` (SQLite with ATTACH
 * off and values capped at 1 MB) and `build` (spec.json's tables into a connection).
 */
export const SQL_PRELUDE_PY = `import json, os, sqlite3, sys, time
spec = json.load(open("spec.json"))
os.remove("spec.json")
tag = spec["nonce"]
out = os.fdopen(os.dup(1), "w")

def q(name):
    return '"' + name.replace('"', '""') + '"'

def value(v):
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, float) and v != v:
        return None
    return v

def connect(path):
    conn = sqlite3.connect(path, isolation_level=None)
    if hasattr(conn, "setlimit"):
        conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
        conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 1000000)
    return conn

def build(conn):
    for t in spec["tables"]:
        coll = " COLLATE NOCASE" if t.get("nocase") else ""
        cols = ", ".join(q(c["name"]) + " " + c["type"] + coll for c in t["columns"])
        conn.execute("CREATE TABLE %s (%s)" % (q(t["name"]), cols))
        marks = ", ".join("?" for _ in t["columns"])
        conn.executemany("INSERT INTO %s VALUES (%s)" % (q(t["name"]), marks), t["rows"])
    return conn
`;

const SQL_RUNNER_PY = String.raw`${SQL_PRELUDE_PY}

def run(sql):
    conn = build(connect(":memory:"))
    deadline = time.time() + spec["seconds"]
    conn.set_progress_handler(lambda: 1 if time.time() > deadline else 0, 10000)
    res = {"rows": [], "state": {}}
    try:
        cur = conn.execute(sql)
        if cur.description is not None:
            res["rows"] = [[value(v) for v in r] for r in cur.fetchmany(spec["maxRows"])]
    except Exception as e:
        msg = str(e)
        res["error"] = "interrupted: the statement ran too long" if msg == "interrupted" else msg
    conn.set_progress_handler(None, 0)
    for t in spec["tables"]:
        try:
            rows = conn.execute("SELECT * FROM %s" % q(t["name"])).fetchall()
            res["state"][t["name"]] = [[value(v) for v in r] for r in rows]
        except Exception as e:
            res["state"][t["name"]] = "missing: " + str(e)
    conn.close()
    return res

results = [run(sql) for sql in spec["queries"]]
out.write("\n" + tag + json.dumps(results) + "\n")
out.flush()
`;

/** Runs each statement on its own fresh copy of the tables, or says why the run failed. */
export async function runSql(
  run: Runner,
  tables: TableSpec[],
  queries: string[],
): Promise<{ outcomes: SqlOutcome[] } | { failure: string }> {
  const tag = nonce();
  const spec = { nonce: tag, tables, queries, seconds: 2, maxRows: 10000 };
  const res = await run({
    command: ["python3", "-I", "runner.py"],
    files: { "runner.py": SQL_RUNNER_PY, "spec.json": JSON.stringify(spec) },
    ...SQL_LIMITS,
  });
  const reply = taggedReply<SqlOutcome[]>(res, tag, "the SQL runner");
  return "failure" in reply ? reply : { outcomes: reply.value };
}

/**
 * The JSON a sandboxed script printed on the stdout line tagged with `tag` (a nonce the
 * program it runs cannot know), or why there is none.
 */
export function taggedReply<T>(
  res: SandboxResult,
  tag: string,
  what: string,
): { value: T } | { failure: string } {
  if (ranTooLong(res)) return { failure: "timeout" };
  const line = res.stdout.split("\n").find((l) => l.startsWith(tag));
  if (!line) {
    if (res.outputTruncated) return { failure: "too much output" };
    const err = res.stderr.trim().split("\n").pop() ?? "";
    return {
      failure: `${what} ended early (${res.reason ?? `exit code ${res.exitCode}`}) ${err}`.trim(),
    };
  }
  return { value: JSON.parse(line.slice(tag.length)) as T };
}

/** Equality of SQL values: numbers within 1e-6 (so 5 equals 5.0), everything else exact. */
function sameValue(a: SqlValue, b: SqlValue): boolean {
  if (typeof a === "number" && typeof b === "number") {
    return Math.abs(a - b) <= 1e-6 * Math.max(1, Math.abs(a), Math.abs(b));
  }
  return a === b;
}

function rowKey(r: SqlValue[]): string {
  return JSON.stringify(r.map((v) => (typeof v === "number" ? Number(v.toPrecision(12)) : v)));
}

/** Compares result sets; as multisets unless `ordered`. */
export function sameRows(a: SqlValue[][], b: SqlValue[][], ordered: boolean): boolean {
  if (a.length !== b.length) return false;
  if (ordered) {
    return a.every((r, i) => r.length === b[i].length && r.every((v, j) => sameValue(v, b[i][j])));
  }
  const ka = a.map(rowKey).sort();
  const kb = b.map(rowKey).sort();
  return ka.every((k, i) => k === kb[i]);
}
