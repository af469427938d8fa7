/**
 * Reading data-set files into records that know where they came from, so that every error
 * names the file, the line and the field.
 */
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";

export interface SourceRecord {
  file: string;
  line: number;
  /** Position in the file (0-based). */
  index: number;
  value: Record<string, unknown>;
}

/**
 * A data-set file is unreadable or malformed, or its splits overlap. The message names the
 * file and, where it applies, the 1-based line and the field.
 */
export class DataError extends Error {
  override name = "DataError";
}

function lineAt(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

/**
 * Calls `visit(i)` for every character of JSON `text` outside strings (a string's opening
 * quote included, its contents and closing quote not). `visit` may return the index of the
 * last character it consumed, to skip past it.
 */
function scanOutsideStrings(text: string, visit: (i: number) => number | undefined): void {
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    if (inString) {
      if (text[i] === "\\") i++;
      else if (text[i] === '"') inString = false;
      continue;
    }
    if (text[i] === '"') inString = true;
    i = visit(i) ?? i;
  }
}

/** Start offsets of the top-level elements of a JSON array (strings and nesting respected). */
function elementOffsets(text: string): number[] {
  const out: number[] = [];
  let depth = 0;
  let expectElement = false;
  scanOutsideStrings(text, (i) => {
    const c = text[i];
    if (expectElement && !/\s/.test(c) && c !== "]") {
      out.push(i);
      expectElement = false;
    }
    if (c === "[" || c === "{") {
      depth++;
      if (depth === 1 && c === "[") expectElement = true;
    } else if (c === "]" || c === "}") depth--;
    else if (c === "," && depth === 1) expectElement = true;
    return undefined;
  });
  return out;
}

const NON_FINITE_TOKENS = ["-Infinity", "Infinity", "NaN"] as const;
const NON_FINITE_VALUES: Record<(typeof NON_FINITE_TOKENS)[number], number> = {
  "-Infinity": Number.NEGATIVE_INFINITY,
  Infinity: Number.POSITIVE_INFINITY,
  NaN: Number.NaN,
};

/**
 * `text` with each NaN, Infinity and -Infinity outside strings written as the JSON string
 * `tag + token`; undefined when there is none.
 */
function quoteNonFinite(text: string, tag: string): string | undefined {
  let out = "";
  let last = 0;
  scanOutsideStrings(text, (i) => {
    const c = text[i];
    if (c !== "N" && c !== "I" && c !== "-") return undefined;
    const token = NON_FINITE_TOKENS.find((t) => text.startsWith(t, i));
    if (!token) return undefined;
    out += text.slice(last, i) + JSON.stringify(tag + token);
    last = i + token.length;
    return last - 1;
  });
  return last === 0 ? undefined : out + text.slice(last);
}

/**
 * JSON.parse, also taking the bare NaN, Infinity and -Infinity that Python's json module
 * writes for non-finite floats (EvalPlus's MbppPlus.jsonl holds them): where strict parsing
 * fails, the text is parsed again with those tokens, outside strings only, read as the
 * numbers they stand for. Throws strict parsing's error when that fails too.
 */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    if (!/NaN|Infinity/.test(text)) throw e;
    // A tag no string in the file can hold by chance marks the tokens through JSON.parse.
    const tag = `\u0000nonfinite-${randomUUID()}:`;
    const quoted = quoteNonFinite(text, tag);
    if (quoted === undefined) throw e;
    try {
      return JSON.parse(quoted, (_key, v) =>
        typeof v === "string" && v.startsWith(tag)
          ? NON_FINITE_VALUES[v.slice(tag.length) as keyof typeof NON_FINITE_VALUES]
          : v,
      );
    } catch {
      throw e;
    }
  }
}

function parseError(file: string, text: string, e: unknown, baseLine = 1): DataError {
  const msg = (e as Error).message;
  const pos = /position (\d+)/.exec(msg);
  const line = pos ? baseLine + lineAt(text, Number(pos[1])) - 1 : baseLine;
  return new DataError(`${file}:${line}: not valid JSON (${msg})`);
}

function asObject(file: string, line: number, v: unknown): Record<string, unknown> {
  if (v === null || typeof v !== "object" || Array.isArray(v)) {
    throw new DataError(
      `${file}:${line}: expected a JSON object, got ${Array.isArray(v) ? "an array" : typeof v}`,
    );
  }
  return v as Record<string, unknown>;
}

/**
 * Parses JSONL (one object per line) or a JSON array / single object, by content. A line or
 * element that is not a JSON object goes to `bad` when given (the rest still load), and
 * throws a DataError otherwise; a JSON array that does not parse always throws. Python's
 * bare NaN, Infinity and -Infinity are read as numbers (`parseJson`).
 */
export function parseRecords(
  text: string,
  file: string,
  bad?: (err: DataError, line: number) => void,
): SourceRecord[] {
  const trimmed = text.trimStart();
  if (trimmed.startsWith("[") || (trimmed.startsWith("{") && !file.endsWith(".jsonl"))) {
    let data: unknown;
    try {
      data = parseJson(text);
    } catch (e) {
      // A JSONL file whose name does not say so: fall through to line-by-line parsing.
      if (trimmed.startsWith("[")) throw parseError(file, text, e);
      return parseLines(text, file, bad);
    }
    if (!Array.isArray(data)) return [{ file, line: 1, index: 0, value: asObject(file, 1, data) }];
    const offsets = elementOffsets(text);
    const out: SourceRecord[] = [];
    data.forEach((v, i) => {
      const line = lineAt(text, offsets[i] ?? 0);
      const value = tolerate(() => asObject(file, line, v), line, bad);
      if (value) out.push({ file, line, index: i, value });
    });
    return out;
  }
  return parseLines(text, file, bad);
}

/** `fn()`, or undefined after handing its DataError to `bad` (rethrown without one). */
function tolerate<T>(
  fn: () => T,
  line: number,
  bad: ((err: DataError, line: number) => void) | undefined,
): T | undefined {
  try {
    return fn();
  } catch (e) {
    if (!(e instanceof DataError) || !bad) throw e;
    bad(e, line);
    return undefined;
  }
}

function parseLines(
  text: string,
  file: string,
  bad: ((err: DataError, line: number) => void) | undefined,
): SourceRecord[] {
  const out: SourceRecord[] = [];
  text.split("\n").forEach((raw, i) => {
    if (raw.trim() === "") return;
    const value = tolerate(
      () => {
        let v: unknown;
        try {
          v = parseJson(raw);
        } catch (e) {
          throw new DataError(`${file}:${i + 1}: not valid JSON (${(e as Error).message})`);
        }
        return asObject(file, i + 1, v);
      },
      i + 1,
      bad,
    );
    if (value) out.push({ file, line: i + 1, index: out.length, value });
  });
  return out;
}

/** The records of `file`; bad ones go to `bad` when given (see `parseRecords`). */
export function readRecords(
  file: string,
  bad?: (err: DataError, line: number) => void,
): SourceRecord[] {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new DataError(`cannot read ${file}: ${(e as Error).message}`);
  }
  const recs = parseRecords(text, file, bad);
  if (recs.length === 0) throw new DataError(`${file}: no records found`);
  return recs;
}

/** Field accessors that fail with "file:line: field "x" ...". */
export class Fields {
  constructor(private readonly rec: SourceRecord) {}

  fail(field: string, what: string): never {
    throw new DataError(`${this.rec.file}:${this.rec.line}: field "${field}" ${what}`);
  }

  has(field: string): boolean {
    return this.rec.value[field] !== undefined && this.rec.value[field] !== null;
  }

  raw(field: string): unknown {
    return this.rec.value[field];
  }

  string(field: string): string {
    const v = this.rec.value[field];
    if (typeof v !== "string")
      this.fail(field, v === undefined ? "is missing" : `must be a string, got ${typeof v}`);
    return v;
  }

  optString(field: string): string | undefined {
    return this.has(field) ? this.string(field) : undefined;
  }

  /** The first present field of several alternative names. */
  oneOf(fields: string[]): string {
    for (const f of fields) if (this.has(f)) return f;
    throw new DataError(
      `${this.rec.file}:${this.rec.line}: needs one of the fields ${fields.map((f) => `"${f}"`).join(", ")}`,
    );
  }

  stringArray(field: string): string[] {
    const v = this.rec.value[field];
    if (!Array.isArray(v) || !v.every((x) => typeof x === "string")) {
      this.fail(field, v === undefined ? "is missing" : "must be an array of strings");
    }
    return v as string[];
  }

  object(field: string): Record<string, unknown> {
    const v = this.rec.value[field];
    if (v === null || typeof v !== "object" || Array.isArray(v)) {
      this.fail(field, v === undefined ? "is missing" : "must be an object");
    }
    return v as Record<string, unknown>;
  }

  /** An error message prefix for nested problems, e.g. `file:3: field "table.rows"`. */
  where(field: string): string {
    return `${this.rec.file}:${this.rec.line}: field "${field}"`;
  }
}
