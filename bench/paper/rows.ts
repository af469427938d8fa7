/**
 * A row of the table: one model (or one per seed) with its opt and test results, and what
 * the report derives from it: mean ± std over seeds, and per-problem pass rates.
 */
import type { EvalSplit, ModelResult } from "./evaluate.ts";

/** What the wall time is split by. */
export type RowKind = "reference" | "merge" | "fine-tune" | "cycleqd" | "ablation";

export interface SeedResult extends ModelResult {
  /** null for a deterministic row (one model, no seed). */
  seed: number | null;
}

export interface Row {
  id: string;
  name: string;
  kind: RowKind;
  results: SeedResult[];
  /** Anything else worth keeping about the row (chosen λ, training record, run dirs). */
  detail?: Record<string, unknown>;
}

export interface Stat {
  mean: number;
  /** Sample standard deviation over seeds (n − 1); 0 for a deterministic row. */
  std: number;
  n: number;
}

export function stat(xs: readonly number[]): Stat {
  const n = xs.length;
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  const std = n > 1 ? Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (n - 1)) : 0;
  return { mean, std, n };
}

export const seeded = (row: Row) => row.results.some((r) => r.seed !== null);

/** Mean ± std over the row's seeds, per skill and of the skills' mean. */
export function summarise(row: Row, split: EvalSplit, skills: string[]): Record<string, Stat> {
  const out: Record<string, Stat> = {};
  for (const s of skills) out[s] = stat(row.results.map((r) => r[split].scores[s]));
  out.mean = stat(row.results.map((r) => r[split].mean));
  return out;
}

/** Each test problem's pass rate over the row's seeds, skills concatenated in order. */
export function passVector(row: Row, skills: string[]): number[] {
  const out: number[] = [];
  for (const s of skills) {
    const strings = row.results.map((r) => r.test.passes[s]);
    const n = strings[0].length;
    if (strings.some((p) => p.length !== n)) {
      throw new Error(`row ${row.id}: seeds were scored on different ${s} test problems`);
    }
    for (let i = 0; i < n; i++) {
      out.push(strings.reduce((a, p) => a + (p[i] === "1" ? 1 : 0), 0) / strings.length);
    }
  }
  return out;
}
