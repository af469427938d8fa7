/**
 * The run store: one SQLite database per run directory (RUN/run.db, WAL). It holds the
 * config, the inputs' hashes, the seeds' scores, every finished child with its archive
 * effects, the archives' current elites and the final models. Each finished child is one
 * transaction, so a crash at any moment loses no finished child and duplicates none; the
 * archives are rebuilt exactly by replaying the children in commit order.
 *
 * Children handed to a durable evaluator (a queue that outlives this process) are recorded
 * as dispatched until committed, so that a resumed run takes back the same children.
 *
 * A lock row (pid, host, process start time) marks a run in progress. It is not released
 * by a crash, so it counts only while its process is alive: a dead holder's lock is taken
 * over, a live one's is refused.
 */
import { readFileSync } from "node:fs";
import { mkdir, rename, stat } from "node:fs/promises";
import { hostname } from "node:os";
import { join, resolve } from "node:path";
import type { ArchiveMetrics, BinRange, OfferResult } from "../qd/index.ts";
import type { RunConfig } from "./config.ts";
import { type Database, openDatabase } from "./sqlite.ts";

export const DB_FILE = "run.db";
const SCHEMA_VERSION = 2;
/** Schema 1 lacked children.grading_fallbacks; opened for writing, it gains the column. */
const READABLE_SCHEMAS = ["1", "2"];

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS lock (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  pid INTEGER NOT NULL, host TEXT NOT NULL, proc_start TEXT, since TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS inputs (
  role TEXT PRIMARY KEY, source TEXT NOT NULL, gguf TEXT NOT NULL, sha256 TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS seeds (
  seed INTEGER PRIMARY KEY, task TEXT NOT NULL, genome BLOB NOT NULL,
  scores TEXT NOT NULL, timings TEXT NOT NULL, outcomes TEXT, finished_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS children (
  idx INTEGER PRIMARY KEY,
  seq INTEGER NOT NULL UNIQUE,
  id INTEGER NOT NULL UNIQUE,
  task INTEGER NOT NULL, task_name TEXT NOT NULL,
  parent1 INTEGER NOT NULL, parent2 INTEGER NOT NULL, fallback TEXT NOT NULL,
  omega1 REAL, omega2 REAL, weight1 REAL, weight2 REAL, resamples INTEGER,
  mutation TEXT NOT NULL, mutation_r BLOB,
  genome BLOB NOT NULL,
  scores TEXT NOT NULL,
  outcomes TEXT NOT NULL, entered INTEGER NOT NULL,
  metrics TEXT NOT NULL,
  t_select REAL, t_crossover REAL, t_mutate REAL, t_materialise REAL, t_load REAL,
  t_generate REAL, t_grade REAL, t_evaluate REAL, t_tell REAL,
  worker INTEGER, attempts INTEGER, finished_at TEXT NOT NULL,
  grading_fallbacks INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS elites (
  archive INTEGER NOT NULL, cell INTEGER NOT NULL, id INTEGER NOT NULL,
  quality REAL NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (archive, cell));
CREATE TABLE IF NOT EXISTS dispatched (
  idx INTEGER PRIMARY KEY, ask TEXT NOT NULL, genome BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS finals (
  name TEXT PRIMARY KEY, genome BLOB NOT NULL, sources TEXT NOT NULL,
  scores_opt TEXT, scores_test TEXT, model TEXT, finished_at TEXT NOT NULL);
`;

/** Milliseconds spent in each step of making and evaluating one individual. */
export interface Timings {
  select: number;
  crossover: number;
  mutate: number;
  materialise: number;
  /** llama.cpp loading the materialised file. */
  load: number;
  /** Batched generation of every problem's answer. */
  generate: number;
  /** After generation: grading in the sandbox and likelihood scoring (concurrent). */
  grade: number;
  /** The whole evaluation as the worker saw it (materialise to scores). */
  evaluate: number;
  /** Offering the child to the archives and computing metrics. */
  tell: number;
}

export const TIMING_KEYS: readonly (keyof Timings)[] = [
  "select",
  "crossover",
  "mutate",
  "materialise",
  "load",
  "generate",
  "grade",
  "evaluate",
  "tell",
];

export interface SkillScore {
  /** Pass rate in [0, 1]. */
  score: number;
  /** Mean per-token log-likelihood of the reference answers (NaN when not scored). */
  meanLogLikelihood: number;
}

/** Scores by skill name. */
export type Scores = Record<string, SkillScore>;

export interface SeedRecord {
  seed: number;
  task: string;
  genome: Uint8Array;
  scores: Scores;
  timings: Partial<Timings>;
  /** Outcome in each archive, once the archives are initialised. */
  outcomes: OfferResult[] | null;
  finishedAt: string;
}

export type MutationRecord =
  | {
      kind: "svd";
      task: number;
      summary: { count: number; mean: number; min: number; max: number };
    }
  | { kind: "gaussian"; seed: number; sigma: number }
  | { kind: "none" };

export interface ChildRecord {
  /** Child index = generation g, 1-based, in dispatch order. */
  index: number;
  /** Commit order, 1-based (equals `index` with one worker). */
  seq: number;
  /** Id in the archives: K + index − 1 (the seeds are 0..K−1). */
  id: number;
  task: number;
  taskName: string;
  parents: [number, number];
  fallback: string;
  crossover: { omega: [number, number]; weights: [number, number]; resamples: number };
  mutation: MutationRecord;
  /** SVD mutation: r for every component, in layout order. */
  mutationR: Float64Array | null;
  genome: Uint8Array;
  scores: Scores;
  outcomes: OfferResult[];
  entered: number;
  /** Every archive's metrics right after this child. */
  metrics: ArchiveMetrics[];
  timings: Timings;
  worker: number;
  attempts: number;
  finishedAt: string;
  /**
   * Answers of this child re-run in a sandbox of their own because a grading lane broke
   * (a hostile answer; verdicts are unaffected). 0 normally.
   */
  gradingFallbacks: number;
}

export interface EliteRow {
  archive: number;
  cell: number;
  id: number;
  quality: number;
  /** Commit (0 for the seeds) that put it there. */
  seq: number;
}

export interface FinalRecord {
  /** "aggregate" (softmax-weighted best elites) or "best-mean" (the best elite on average). */
  name: string;
  genome: Uint8Array;
  sources: { ids: number[]; beta?: number[] };
  scoresOpt: Scores | null;
  scoresTest: Scores | null;
  /** Path of the written model file, if any. */
  model: string | null;
  finishedAt: string;
}

export interface LockInfo {
  pid: number;
  host: string;
  since: string;
  /** Whether the holder still runs (always true for another host: it cannot be checked). */
  alive: boolean;
}

export type RunStatus = "initialising" | "running" | "finished" | "interrupted" | "failed";

/**
 * Thrown when a run is locked by a live process (by `resume` while another process runs
 * it): `dir` is the run directory, `holder` the lock's process id, host and start time
 * (ISO 8601). A lock left by a dead process on this host is taken over, not thrown; one
 * held from another host always counts as live.
 */
export class RunLockedError extends Error {
  constructor(
    readonly dir: string,
    readonly holder: LockInfo,
  ) {
    super(
      `run ${dir} is in progress (process ${holder.pid} on ${holder.host}, since ${holder.since}); ` +
        "wait for it to finish or stop it first (Ctrl-C, or kill that process)",
    );
    this.name = "RunLockedError";
  }
}

const now = () => new Date().toISOString();

/** JSON cannot hold NaN: a missing likelihood is written as null. */
function scoresToJson(s: Scores): string {
  return JSON.stringify(s, (_, v) => (typeof v === "number" && Number.isNaN(v) ? null : v));
}

function scoresFromJson(text: string): Scores {
  const raw = JSON.parse(text) as Record<
    string,
    { score: number; meanLogLikelihood: number | null }
  >;
  const out: Scores = {};
  for (const [k, v] of Object.entries(raw)) {
    out[k] = { score: v.score, meanLogLikelihood: v.meanLogLikelihood ?? Number.NaN };
  }
  return out;
}

function f64Blob(x: Float64Array): Buffer {
  return Buffer.from(x.buffer, x.byteOffset, x.byteLength);
}

function blobF64(b: Buffer): Float64Array {
  const out = new Float64Array(b.length / 8);
  new Uint8Array(out.buffer).set(b);
  return out;
}

function blobBytes(b: unknown): Uint8Array {
  const buf = b as Buffer;
  return new Uint8Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}

/** The start time of a process (Linux /proc), to tell a reused pid from the holder. */
function processStart(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the parenthesised command name; starttime is field 22 overall.
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return rest[19] ?? null;
  } catch {
    return null;
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

export class RunStore {
  private lockHeld = false;

  private constructor(
    readonly dir: string,
    private readonly db: Database,
  ) {}

  get path(): string {
    return join(this.dir, DB_FILE);
  }

  /**
   * Creates RUN/run.db for a new run; refuses a directory that already holds one. The
   * database is built under another name and renamed into place, so a crash never leaves a
   * half-made run behind.
   */
  static async create(dir: string, config: RunConfig): Promise<RunStore> {
    const abs = resolve(dir);
    await mkdir(abs, { recursive: true });
    const path = join(abs, DB_FILE);
    if (await stat(path).catch(() => null)) {
      throw new Error(
        `${abs} already holds a run; continue it with \`cycleqd resume ${dir}\` or choose another --out`,
      );
    }
    const part = `${path}.part-${process.pid}`;
    const db = openDatabase(part);
    try {
      const fresh = new RunStore(abs, db);
      fresh.setup();
      db.transaction(() => {
        fresh.setMeta("schema", String(SCHEMA_VERSION));
        fresh.setMeta("created", now());
        fresh.setMeta("config", JSON.stringify(config));
        fresh.setMeta("status", "initialising");
      })();
      // Back to a single file (closing checkpoints the WAL) before the rename.
      db.pragma("journal_mode = DELETE");
    } finally {
      db.close();
    }
    await rename(part, path);
    return RunStore.open(abs);
  }

  /** Opens an existing run. */
  static async open(dir: string, opts: { readonly?: boolean } = {}): Promise<RunStore> {
    const abs = resolve(dir);
    const path = join(abs, DB_FILE);
    if (!(await stat(path).catch(() => null))) {
      throw new Error(
        `${abs} is not a cycleqd run (no ${DB_FILE}); start one with \`cycleqd run\``,
      );
    }
    const db = openDatabase(path, { fileMustExist: true, readonly: opts.readonly });
    const store = new RunStore(abs, db);
    if (!opts.readonly) store.setup();
    let schema = store.getMeta("schema");
    if (schema === "1" && !opts.readonly) {
      db.exec("ALTER TABLE children ADD COLUMN grading_fallbacks INTEGER NOT NULL DEFAULT 0");
      store.setMeta("schema", String(SCHEMA_VERSION));
      schema = String(SCHEMA_VERSION);
    }
    if (!READABLE_SCHEMAS.includes(schema ?? "")) {
      db.close();
      throw new Error(
        `${path} has run-store schema ${schema ?? "none"}; this cycleqd reads schema ${SCHEMA_VERSION}`,
      );
    }
    return store;
  }

  private setup(): void {
    this.db.pragma("journal_mode = WAL");
    // FULL: a committed child survives a power cut too, at one fsync per child.
    this.db.pragma("synchronous = FULL");
    this.db.exec(SCHEMA);
  }

  close(): void {
    if (!this.db.open) return;
    if (this.lockHeld) this.releaseLock();
    this.db.close();
  }

  // ------------------------------------------------------------------ meta

  getMeta(key: string): string | undefined {
    const row = this.db.prepare("SELECT value FROM meta WHERE key = ?").get([key]);
    return row?.value as string | undefined;
  }

  setMeta(key: string, value: string): void {
    this.db
      .prepare(
        "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
      )
      .run([key, value]);
  }

  get config(): RunConfig {
    return JSON.parse(this.getMeta("config") as string);
  }

  get status(): RunStatus {
    return this.getMeta("status") as RunStatus;
  }

  setStatus(status: RunStatus, error?: string): void {
    this.db.transaction(() => {
      this.setMeta("status", status);
      this.setMeta("status_at", now());
      if (error !== undefined) this.setMeta("error", error);
      else this.db.prepare("DELETE FROM meta WHERE key = 'error'").run();
    })();
  }

  // ------------------------------------------------------------------ lock

  /** Takes the run's lock, or throws RunLockedError while a live process holds it. */
  acquireLock(): void {
    const host = hostname();
    const start = processStart(process.pid);
    this.db
      .transaction(() => {
        const holder = this.lockInfo();
        const mine = holder && holder.pid === process.pid && holder.host === host;
        if (holder?.alive && !mine) throw new RunLockedError(this.dir, holder);
        this.db
          .prepare(
            "INSERT OR REPLACE INTO lock (id, pid, host, proc_start, since) VALUES (1, ?, ?, ?, ?)",
          )
          .run([process.pid, host, start, now()]);
      })
      .immediate();
    this.lockHeld = true;
  }

  releaseLock(): void {
    if (!this.lockHeld) return;
    this.db.prepare("DELETE FROM lock WHERE pid = ? AND host = ?").run([process.pid, hostname()]);
    this.lockHeld = false;
  }

  /** The lock's holder, or null; `alive` says whether it still runs. */
  lockInfo(): LockInfo | null {
    const row = this.db.prepare("SELECT pid, host, proc_start, since FROM lock").get();
    if (!row) return null;
    const pid = row.pid as number;
    const host = row.host as string;
    let alive = true;
    if (host === hostname()) {
      alive = pidAlive(pid);
      // A pid reused by another process is not the holder.
      const recorded = row.proc_start as string | null;
      if (alive && recorded !== null) {
        const current = processStart(pid);
        if (current !== null && current !== recorded) alive = false;
      }
    }
    return { pid, host, since: row.since as string, alive };
  }

  // ------------------------------------------------------------------ inputs and seeds

  setInputs(rows: { role: string; source: string; gguf: string; sha256: string }[]): void {
    this.db.transaction(() => {
      this.db.prepare("DELETE FROM inputs").run();
      const ins = this.db.prepare(
        "INSERT INTO inputs (role, source, gguf, sha256) VALUES (?, ?, ?, ?)",
      );
      for (const r of rows) ins.run([r.role, r.source, r.gguf, r.sha256]);
    })();
  }

  inputs(): { role: string; source: string; gguf: string; sha256: string }[] {
    return this.db
      .prepare("SELECT role, source, gguf, sha256 FROM inputs ORDER BY rowid")
      .all() as {
      role: string;
      source: string;
      gguf: string;
      sha256: string;
    }[];
  }

  putSeed(rec: Omit<SeedRecord, "outcomes" | "finishedAt">): void {
    this.db
      .prepare(
        "INSERT INTO seeds (seed, task, genome, scores, timings, finished_at) VALUES (?, ?, ?, ?, ?, ?)",
      )
      .run([
        rec.seed,
        rec.task,
        Buffer.from(rec.genome),
        scoresToJson(rec.scores),
        JSON.stringify(rec.timings),
        now(),
      ]);
  }

  seeds(): SeedRecord[] {
    return this.db
      .prepare("SELECT * FROM seeds ORDER BY seed")
      .all()
      .map((r) => ({
        seed: r.seed as number,
        task: r.task as string,
        genome: blobBytes(r.genome),
        scores: scoresFromJson(r.scores as string),
        timings: JSON.parse(r.timings as string),
        outcomes: r.outcomes === null ? null : JSON.parse(r.outcomes as string),
        finishedAt: r.finished_at as string,
      }));
  }

  /** Records the archives' ranges and the seeds' outcomes and elites, all at once. */
  initArchives(ranges: BinRange[], outcomes: OfferResult[][], elites: EliteRow[]): void {
    this.db.transaction(() => {
      const upd = this.db.prepare("UPDATE seeds SET outcomes = ? WHERE seed = ?");
      outcomes.forEach((o, k) => {
        upd.run([JSON.stringify(o), k]);
      });
      this.db.prepare("DELETE FROM elites").run();
      this.putElites(elites);
      this.setMeta("ranges", JSON.stringify(ranges));
      this.setMeta("status", "running");
    })();
  }

  /** The bin ranges, once the archives are initialised. */
  ranges(): BinRange[] | null {
    const r = this.getMeta("ranges");
    return r ? JSON.parse(r) : null;
  }

  private putElites(elites: EliteRow[]): void {
    const ins = this.db.prepare(
      "INSERT OR REPLACE INTO elites (archive, cell, id, quality, seq) VALUES (?, ?, ?, ?, ?)",
    );
    for (const e of elites) ins.run([e.archive, e.cell, e.id, e.quality, e.seq]);
  }

  // ------------------------------------------------------------------ children

  /**
   * Records one finished child and its archive effects in one transaction; its `seq` is the
   * next commit number. Refuses a child index that is already recorded.
   */
  commitChild(rec: Omit<ChildRecord, "seq" | "finishedAt">, elites: EliteRow[]): number {
    return this.db
      .transaction(() => {
        const have = this.db.prepare("SELECT 1 FROM children WHERE idx = ?").get([rec.index]);
        if (have) throw new Error(`run store: child ${rec.index} is already recorded`);
        const seq =
          ((this.db.prepare("SELECT MAX(seq) AS m FROM children").get()?.m as number | null) ?? 0) +
          1;
        const t = rec.timings;
        this.db
          .prepare(
            `INSERT INTO children (idx, seq, id, task, task_name, parent1, parent2, fallback,
            omega1, omega2, weight1, weight2, resamples, mutation, mutation_r, genome, scores,
            outcomes, entered, metrics, t_select, t_crossover, t_mutate, t_materialise, t_load,
            t_generate, t_grade, t_evaluate, t_tell, worker, attempts, finished_at,
            grading_fallbacks)
           VALUES (${Array(33).fill("?").join(", ")})`,
          )
          .run([
            rec.index,
            seq,
            rec.id,
            rec.task,
            rec.taskName,
            rec.parents[0],
            rec.parents[1],
            rec.fallback,
            rec.crossover.omega[0],
            rec.crossover.omega[1],
            rec.crossover.weights[0],
            rec.crossover.weights[1],
            rec.crossover.resamples,
            JSON.stringify(rec.mutation),
            rec.mutationR ? f64Blob(rec.mutationR) : null,
            Buffer.from(rec.genome),
            scoresToJson(rec.scores),
            JSON.stringify(rec.outcomes),
            rec.entered,
            JSON.stringify(rec.metrics),
            t.select,
            t.crossover,
            t.mutate,
            t.materialise,
            t.load,
            t.generate,
            t.grade,
            t.evaluate,
            t.tell,
            rec.worker,
            rec.attempts,
            now(),
            rec.gradingFallbacks,
          ]);
        this.putElites(elites.map((e) => ({ ...e, seq })));
        this.db.prepare("DELETE FROM dispatched WHERE idx = ?").run([rec.index]);
        return seq;
      })
      .immediate();
  }

  /** Whether child `index` is committed. */
  hasChild(index: number): boolean {
    return this.db.prepare("SELECT 1 FROM children WHERE idx = ?").get([index]) !== undefined;
  }

  /**
   * Records a child as handed to a durable evaluator: `ask` is the search's record of it
   * (JSON), `genome` its encoded genome. Dropped when the child is committed.
   */
  putDispatched(index: number, ask: string, genome: Uint8Array): void {
    this.db
      .prepare("INSERT OR REPLACE INTO dispatched (idx, ask, genome) VALUES (?, ?, ?)")
      .run([index, ask, Buffer.from(genome)]);
  }

  /** Dispatched children not yet committed, by index. */
  dispatched(): { index: number; ask: string; genome: Uint8Array }[] {
    return this.db
      .prepare(
        "SELECT idx, ask, genome FROM dispatched WHERE idx NOT IN (SELECT idx FROM children) ORDER BY idx",
      )
      .all()
      .map((r) => ({ index: r.idx as number, ask: r.ask as string, genome: blobBytes(r.genome) }));
  }

  childCount(): number {
    return this.db.prepare("SELECT COUNT(*) AS n FROM children").get()?.n as number;
  }

  /** Indices of the finished children, ascending. */
  finishedIndices(): number[] {
    return this.db
      .prepare("SELECT idx FROM children ORDER BY idx")
      .all()
      .map((r) => r.idx as number);
  }

  /** Finished children in commit order (the order that rebuilds the archives). */
  children(opts: { withGenomes?: boolean } = {}): ChildRecord[] {
    const cols = opts.withGenomes === false ? "*, NULL AS genome, NULL AS mutation_r" : "*";
    return this.db
      .prepare(`SELECT ${cols} FROM children ORDER BY seq`)
      .all()
      .map((r) => ({
        index: r.idx as number,
        seq: r.seq as number,
        id: r.id as number,
        task: r.task as number,
        taskName: r.task_name as string,
        parents: [r.parent1 as number, r.parent2 as number],
        fallback: r.fallback as string,
        crossover: {
          omega: [r.omega1 as number, r.omega2 as number],
          weights: [r.weight1 as number, r.weight2 as number],
          resamples: r.resamples as number,
        },
        mutation: JSON.parse(r.mutation as string),
        mutationR: r.mutation_r ? blobF64(r.mutation_r as Buffer) : null,
        genome: r.genome ? blobBytes(r.genome) : new Uint8Array(0),
        scores: scoresFromJson(r.scores as string),
        outcomes: JSON.parse(r.outcomes as string),
        entered: r.entered as number,
        metrics: JSON.parse(r.metrics as string),
        timings: Object.fromEntries(
          TIMING_KEYS.map((k) => [k, r[`t_${k}`] as number]),
        ) as unknown as Timings,
        worker: r.worker as number,
        attempts: r.attempts as number,
        finishedAt: r.finished_at as string,
        // Absent from stores of schema 1 opened read-only.
        gradingFallbacks: (r.grading_fallbacks as number | undefined) ?? 0,
      }));
  }

  elites(): EliteRow[] {
    return this.db
      .prepare("SELECT archive, cell, id, quality, seq FROM elites ORDER BY archive, cell")
      .all() as unknown as EliteRow[];
  }

  // ------------------------------------------------------------------ finals

  putFinal(rec: Omit<FinalRecord, "finishedAt">): void {
    this.db
      .prepare(
        "INSERT OR REPLACE INTO finals (name, genome, sources, scores_opt, scores_test, model, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
      )
      .run([
        rec.name,
        Buffer.from(rec.genome),
        JSON.stringify(rec.sources),
        rec.scoresOpt ? scoresToJson(rec.scoresOpt) : null,
        rec.scoresTest ? scoresToJson(rec.scoresTest) : null,
        rec.model,
        now(),
      ]);
  }

  finals(): FinalRecord[] {
    return this.db
      .prepare("SELECT * FROM finals ORDER BY name")
      .all()
      .map((r) => ({
        name: r.name as string,
        genome: blobBytes(r.genome),
        sources: JSON.parse(r.sources as string),
        scoresOpt: r.scores_opt ? scoresFromJson(r.scores_opt as string) : null,
        scoresTest: r.scores_test ? scoresFromJson(r.scores_test as string) : null,
        model: (r.model as string | null) ?? null,
        finishedAt: r.finished_at as string,
      }));
  }

  /** Marks the run finished together with its final records. */
  finish(records: Omit<FinalRecord, "finishedAt">[]): void {
    this.db.transaction(() => {
      for (const r of records) this.putFinal(r);
      this.setMeta("status", "finished");
      this.setMeta("status_at", now());
      this.db.prepare("DELETE FROM meta WHERE key = 'error'").run();
    })();
  }
}
