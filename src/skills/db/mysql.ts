/**
 * MySQL's lexical rules that SQLite reads differently, rewritten so that a statement written
 * for MySQL (as AgentBench's DB task asks for) means the same in SQLite: backslash escapes in
 * quoted strings ('Don\'t', 'a\nb'), which SQLite keeps as written, and `#` comments, which
 * SQLite rejects. Everything else is left as it is; SQL that SQLite cannot run still fails.
 */

const ESCAPES: Record<string, string> = {
  "0": "\0",
  b: "\b",
  n: "\n",
  r: "\r",
  t: "\t",
  Z: "\x1a",
  // MySQL keeps these two as written, for LIKE patterns.
  "%": "\\%",
  _: "\\_",
};

/**
 * Reads the MySQL string that starts with the quote at `start`; returns its value and the
 * index after its closing quote, or null when it is not closed.
 */
function readString(sql: string, start: number): { value: string; end: number } | null {
  const quote = sql[start];
  let value = "";
  for (let i = start + 1; i < sql.length; i++) {
    const c = sql[i];
    if (c === "\\" && i + 1 < sql.length) {
      const n = sql[++i];
      value += ESCAPES[n] ?? n;
    } else if (c === quote) {
      if (sql[i + 1] === quote) {
        value += quote;
        i++;
      } else return { value, end: i + 1 };
    } else value += c;
  }
  return null;
}

/** The index of the end of the line from `i` (the newline itself is kept). */
function lineEnd(sql: string, i: number): number {
  const j = sql.indexOf("\n", i);
  return j < 0 ? sql.length : j;
}

/**
 * `sql` with MySQL's string escapes written the SQLite way and `#` comments removed. A
 * single-quoted string becomes an SQLite string of the same value; a double-quoted one stays
 * double-quoted (SQLite reads it as a name, or as a string when no column has that name),
 * with its escapes resolved. Backquoted names, `--` and block comments are copied as they are.
 */
export function mysqlToSqlite(sql: string): string {
  if (!/[\\#]/.test(sql)) return sql;
  let out = "";
  let i = 0;
  while (i < sql.length) {
    const c = sql[i];
    if (c === "'" || c === '"') {
      const s = readString(sql, i);
      if (!s) return out + sql.slice(i);
      out += c + s.value.replaceAll(c, c + c) + c;
      i = s.end;
    } else if (c === "`") {
      let j = i + 1;
      for (; j < sql.length; j++) {
        if (sql[j] === "`") {
          if (sql[j + 1] === "`") j++;
          else break;
        }
      }
      out += sql.slice(i, j + 1);
      i = j + 1;
    } else if (c === "#") {
      i = lineEnd(sql, i);
    } else if (c === "-" && sql[i + 1] === "-") {
      const j = lineEnd(sql, i);
      out += sql.slice(i, j);
      i = j;
    } else if (c === "/" && sql[i + 1] === "*") {
      const j = sql.indexOf("*/", i + 2);
      const end = j < 0 ? sql.length : j + 2;
      out += sql.slice(i, end);
      i = end;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}
