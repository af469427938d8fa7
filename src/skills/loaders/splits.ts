/**
 * Split files for loaded data sets: which file feeds which split, checked to be disjoint.
 * A malformed record is left out and listed (file, line, reason) unless `strict`.
 */
import { type Problem, type SkippedRecord, SPLITS, type Split } from "../types.ts";
import { DataError, readRecords, type SourceRecord } from "./records.ts";

export interface SplitSources {
  /** Files per split (JSON, JSON array or JSONL). */
  files?: Partial<Record<Split, string | string[]>>;
  /** One pool of files divided by `assign` (e.g. MBPP's task-id ranges). */
  all?: string | string[];
  /** For `all`: the split of a record, or null to leave it out. */
  assign?: (rec: SourceRecord) => Split | null;
}

export interface LoadOptions {
  /** A malformed record fails the whole load (default: it is skipped and listed). */
  strict?: boolean;
}

export interface LoadedSplits<P extends Problem> {
  problems: (split: Split) => P[];
  /** Records left out as malformed, in file order. */
  skipped: SkippedRecord[];
}

const list = (x: string | string[] | undefined) =>
  x === undefined ? [] : Array.isArray(x) ? x : [x];

/**
 * Reads every source now, so bad files fail at load time, and returns `problems(split)`.
 * `parse` turns a record into a problem (throwing DataError for a malformed one). Throws a
 * DataError for an unreadable file, a file with no records, a problem in two splits, and
 * (with `strict`) a malformed record.
 */
export function loadSplits<P extends Problem>(
  skill: string,
  sources: SplitSources,
  parse: (rec: SourceRecord, id: string, split: Split) => P,
  opts: LoadOptions = {},
): LoadedSplits<P> {
  const bySplit = new Map<Split, P[]>(SPLITS.map((s) => [s, []]));
  const owner = new Map<string, string>();
  const skipped: SkippedRecord[] = [];
  const bad = opts.strict
    ? undefined
    : (err: DataError, line: number, file: string) =>
        skipped.push({ file, line, reason: err.message.replace(`${file}:${line}: `, "") });
  const read = (f: string) => readRecords(f, bad && ((err, line) => bad(err, line, f)));
  const add = (rec: SourceRecord, split: Split) => {
    const ps = bySplit.get(split) as P[];
    let p: P;
    try {
      p = parse(rec, `${skill}/${split}/${String(ps.length).padStart(4, "0")}`, split);
    } catch (e) {
      if (!(e instanceof DataError) || !bad) throw e;
      bad(e, rec.line, rec.file);
      return;
    }
    const here = `${split} (${rec.file}:${rec.line})`;
    const before = owner.get(p.key);
    if (before && !before.startsWith(`${split} `)) {
      throw new DataError(
        `problem ${p.key} is in two splits: ${before} and ${here}; splits must be disjoint`,
      );
    }
    owner.set(p.key, here);
    ps.push(p);
  };
  for (const [split, files] of Object.entries(sources.files ?? {})) {
    if (!SPLITS.includes(split as Split)) {
      throw new Error(`unknown split "${split}"; use one of ${SPLITS.join(", ")}`);
    }
    for (const f of list(files)) for (const rec of read(f)) add(rec, split as Split);
  }
  const all = list(sources.all);
  if (all.length && !sources.assign)
    throw new Error("`all` needs an `assign` function that picks each record's split");
  for (const f of all) {
    for (const rec of read(f)) {
      const s = sources.assign?.(rec) ?? null;
      if (s !== null) add(rec, s);
    }
  }
  if ([...bySplit.values()].every((ps) => ps.length === 0)) {
    throw new Error(`skill ${skill}: no source files given`);
  }
  skipped.sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line);
  return {
    problems: (split) => {
      const ps = bySplit.get(split);
      if (!ps) throw new Error(`unknown split "${split}"; use one of ${SPLITS.join(", ")}`);
      return ps;
    },
    skipped,
  };
}
