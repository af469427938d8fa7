/** Split files for loaded data sets: which file feeds which split, checked to be disjoint. */
import { type Problem, SPLITS, type Split } from "../types.ts";
import { DataError, readRecords, type SourceRecord } from "./records.ts";

export interface SplitSources {
  /** Files per split (JSON, JSON array or JSONL). */
  files?: Partial<Record<Split, string | string[]>>;
  /** One pool of files divided by `assign` (e.g. MBPP's task-id ranges). */
  all?: string | string[];
  /** For `all`: the split of a record, or null to leave it out. */
  assign?: (rec: SourceRecord) => Split | null;
}

const list = (x: string | string[] | undefined) =>
  x === undefined ? [] : Array.isArray(x) ? x : [x];

/**
 * Reads every source now, so bad files fail at load time, and returns `problems(split)`.
 * `parse` turns a record into a problem (throwing DataError for a malformed one).
 */
export function loadSplits<P extends Problem>(
  skill: string,
  sources: SplitSources,
  parse: (rec: SourceRecord, id: string, split: Split) => P,
): (split: Split) => P[] {
  const bySplit = new Map<Split, P[]>(SPLITS.map((s) => [s, []]));
  const owner = new Map<string, string>();
  const add = (rec: SourceRecord, split: Split) => {
    const ps = bySplit.get(split) as P[];
    const p = parse(rec, `${skill}/${split}/${String(ps.length).padStart(4, "0")}`, split);
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
    for (const f of list(files)) for (const rec of readRecords(f)) add(rec, split as Split);
  }
  const all = list(sources.all);
  if (all.length && !sources.assign)
    throw new Error("`all` needs an `assign` function that picks each record's split");
  for (const f of all) {
    for (const rec of readRecords(f)) {
      const s = sources.assign?.(rec) ?? null;
      if (s !== null) add(rec, s);
    }
  }
  if ([...bySplit.values()].every((ps) => ps.length === 0)) {
    throw new Error(`skill ${skill}: no source files given`);
  }
  return (split) => {
    const ps = bySplit.get(split);
    if (!ps) throw new Error(`unknown split "${split}"; use one of ${SPLITS.join(", ")}`);
    return ps;
  };
}
