/**
 * A database that lives across the turns of one episode (AgentBench DB's multi-turn
 * protocol): each statement runs in a fresh sandbox on the SQLite file the previous one left,
 * and the file comes back with the result, so the episode's state persists without any
 * model-written SQL running in this process. The first run builds the tables.
 */
import { SQL_LIMITS } from "../limits.ts";
import { nonce } from "../text.ts";
import type { Runner } from "../types.ts";
import { SQL_PRELUDE_PY, type SqlValue, type TableSpec, taggedReply } from "./runner.ts";

/**
 * Runs spec.json's statement (if any) on db.sqlite, building the tables first when there is
 * no such file; prints the statement's rows as Python prints a list of tuples (what
 * AgentBench's MySQL client shows the agent), leaving out the rows after the text is longer
 * than `maxChars` characters, or its error;
 * then the tables named in `names` (with `state`) and the database file (after a statement,
 * unless it grew past `maxBytes`).
 */
const SQL_SESSION_PY = String.raw`${SQL_PRELUDE_PY}
import base64

fresh = not os.path.exists("db.sqlite")
conn = connect("db.sqlite")
if fresh:
    build(conn)
res = {}
sql = spec["statement"]
if sql is not None:
    deadline = time.time() + spec["seconds"]
    conn.set_progress_handler(lambda: 1 if time.time() > deadline else 0, 10000)
    try:
        cur = conn.execute(sql)
        parts = []
        if cur.description is not None:
            size = 2
            for r in cur:
                s = repr(tuple(value(v) for v in r))
                size += len(s) + (2 if parts else 0)
                parts.append(s)
                if size > spec["maxChars"]:
                    break
        res["rows"] = "[" + ", ".join(parts) + "]"
    except Exception as e:
        msg = str(e)
        if "no transaction is active" in msg:
            # MySQL takes COMMIT and ROLLBACK outside a transaction without complaint.
            res["rows"] = "[]"
        else:
            res["error"] = "interrupted: the statement ran too long" if msg == "interrupted" else msg
    conn.set_progress_handler(None, 0)
if spec["state"]:
    res["state"] = {}
    for name in spec["names"]:
        try:
            rows = conn.execute("SELECT * FROM %s" % q(name)).fetchall()
            res["state"][name] = [[value(v) for v in r] for r in rows]
        except Exception as e:
            res["state"][name] = "missing: " + str(e)
conn.close()
if sql is not None:
    image = open("db.sqlite", "rb").read()
    if len(image) > spec["maxBytes"]:
        res.pop("rows", None)
        res["error"] = "the database would grow past %d bytes; the statement was undone" % spec["maxBytes"]
    else:
        res["image"] = base64.b64encode(image).decode("ascii")
out.write("\n" + tag + json.dumps(res) + "\n")
out.flush()
`;

export interface SqlSessionOptions {
  /**
   * Rows of a result are printed until the text is longer than this (default 2000): a text
   * of at most `maxChars` characters is the whole result.
   */
  maxChars?: number;
  /** Largest database file a statement may leave (default 1 MiB): past it, it is undone. */
  maxBytes?: number;
  /** Seconds one statement may run before it is interrupted (default 2). */
  seconds?: number;
}

/** What one statement gave: its rows as printed, or its error, or why the run failed. */
export type SqlStep = { rows: string } | { error: string } | { failure: string };

interface Reply {
  rows?: string;
  error?: string;
  state?: Record<string, SqlValue[][] | string>;
  image?: string;
}

/** One episode's database: statements run in order, each on the state the last one left. */
export class SqlSession {
  /** The statements run so far, in order. */
  readonly history: string[] = [];
  private image: Uint8Array | null = null;
  private readonly maxChars: number;
  private readonly maxBytes: number;
  private readonly seconds: number;

  /**
   * `tables`: what the first statement finds (built in the sandbox); `names`: the tables
   * whose rows `state` reads.
   */
  constructor(
    private readonly run: Runner,
    private readonly tables: TableSpec[],
    private readonly names: string[],
    opts: SqlSessionOptions = {},
  ) {
    this.maxChars = opts.maxChars ?? 2000;
    this.maxBytes = opts.maxBytes ?? 1024 * 1024;
    this.seconds = opts.seconds ?? 2;
  }

  /**
   * Runs one statement on the episode's database; a failed statement leaves it as it was
   * (SQLite undoes a failed statement), and so does a run that fails.
   */
  async exec(sql: string): Promise<SqlStep> {
    this.history.push(sql);
    const r = await this.call(sql, false);
    if ("failure" in r) return r;
    if (r.image !== undefined) this.image = Buffer.from(r.image, "base64");
    if (r.error !== undefined) return { error: r.error };
    return { rows: r.rows ?? "[]" };
  }

  /** Every named table's rows now ("missing: ..." for one that does not exist). */
  async state(): Promise<{ state: Record<string, SqlValue[][] | string> } | { failure: string }> {
    const r = await this.call(null, true);
    if ("failure" in r) return r;
    return { state: r.state ?? {} };
  }

  private async call(
    statement: string | null,
    state: boolean,
  ): Promise<Reply | { failure: string }> {
    const tag = nonce();
    const spec = {
      nonce: tag,
      tables: this.image ? [] : this.tables,
      names: this.names,
      statement,
      state,
      seconds: this.seconds,
      maxChars: this.maxChars,
      maxBytes: this.maxBytes,
    };
    const files: Record<string, string | Uint8Array> = {
      "session.py": SQL_SESSION_PY,
      "spec.json": JSON.stringify(spec),
    };
    if (this.image) files["db.sqlite"] = this.image;
    const res = await this.run({ command: ["python3", "-I", "session.py"], files, ...SQL_LIMITS });
    const reply = taggedReply<Reply>(res, tag, "the SQL session");
    return "failure" in reply ? reply : reply.value;
  }
}
