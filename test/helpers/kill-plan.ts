/**
 * Kill points for the kill -9 tests: where a run subprocess (test/helpers/kill-run.ts) kills
 * itself with SIGKILL, chosen up front by a seeded generator, and what the run store must hold
 * after each. Points are defined by the run's public hooks (`onEvent`, `createEvaluator`), not
 * by time, so the same plan always kills at the same places.
 *
 * From the moment the job a point targets is dispatched, the subprocess's evaluator holds back
 * every other job's result, so nothing else is committed before the kill. With the runner's
 * steady state (dispatch in index order, at most W in flight) this makes the number of
 * commits of each session exact for any W, and the committed set exact for W = 1.
 */
import type { Rng } from "../../src/util/rng.ts";

/** Where in a child's evaluation an "evaluate" kill lands. */
export type EvalPhase =
  /** Right after the runner handed the job to the evaluator. */
  | "dispatched"
  /**
   * Once the child's temporary model is materialised (the engine is loading or running
   * it); if the result comes back before the file is seen, when it comes back.
   */
  | "materialised"
  /** The evaluation finished and its result is in hand, not yet committed. */
  | "evaluated";

export const EVAL_PHASES: readonly EvalPhase[] = ["dispatched", "materialised", "evaluated"];

export type KillPoint =
  /** Right after the seed factors are ready: before any seed is evaluated. */
  | { at: "factors" }
  /** Seed `seed`'s evaluation finished, its result not yet stored. */
  | { at: "seed"; seed: number }
  /** The archives are initialised from the seeds, before any child is dispatched. */
  | { at: "archives" }
  /** Right after this session's `nth` child commit (the "child" event). */
  | { at: "commit"; nth: number }
  /** During the evaluation of the `nth` child this session dispatches. */
  | { at: "evaluate"; nth: number; phase: EvalPhase };

/** What the subprocess writes to stdout, one JSON line, just before it kills itself. */
export interface KillReport {
  kill: KillPoint;
  /** The child the point landed on ("commit", "evaluate"). */
  index?: number;
  /** "evaluate"/"materialised": whether the model file was seen (else the result came first). */
  sawModel?: boolean;
}

export function describeKill(k: KillPoint): string {
  switch (k.at) {
    case "factors":
      return "after the seed factors";
    case "seed":
      return `during seed ${k.seed}'s evaluation`;
    case "archives":
      return "after the archives' initialisation";
    case "commit":
      return `after this session's commit #${k.nth}`;
    case "evaluate":
      return `during the evaluation of this session's child #${k.nth} (${k.phase})`;
  }
}

/**
 * `kills` points: the first in the setup of the run (after the factors, during one seed's
 * evaluation, or after the archives' initialisation), then alternately "evaluate" (first)
 * and "commit", each 1–3 children into its session. The "evaluate" kills take distinct
 * phases while there are phases left. Checked to be reachable: each session has enough
 * children left to reach its point (the commit count after each kill is exact, see
 * `expectedAfterKill`).
 */
export function killPlan(
  rng: Rng,
  opts: { kills: number; generations: number; workers: number; seeds: number },
): KillPoint[] {
  const setup: KillPoint[] = [
    { at: "factors" },
    ...Array.from({ length: opts.seeds }, (_, seed) => ({ at: "seed" as const, seed })),
    { at: "archives" },
  ];
  const plan: KillPoint[] = [setup[rng.int(setup.length)]];
  const phases = [...EVAL_PHASES];
  let finished = 0;
  for (let i = 1; i < opts.kills; i++) {
    const nth = 1 + rng.int(3);
    if (opts.generations - finished < nth) {
      throw new Error(`killPlan: ${opts.generations} children are too few for ${opts.kills} kills`);
    }
    if (i % 2 === 1) {
      const phase = phases.length
        ? phases.splice(rng.int(phases.length), 1)[0]
        : EVAL_PHASES[rng.int(EVAL_PHASES.length)];
      plan.push({ at: "evaluate", nth, phase });
      finished += Math.max(0, nth - opts.workers);
    } else {
      plan.push({ at: "commit", nth });
      finished += nth;
    }
  }
  return plan;
}

export interface ExpectedAfterKill {
  /** How many children are committed after the kill. */
  count: number;
  /** The children committed in the killed session are among these. */
  among: number[];
  /** Children that must not be committed (the one being evaluated). */
  absent: number[];
  /** The child the point lands on, when known in advance. */
  index?: number;
  /** For "commit" with W > 1: the child committed is one of these. */
  indexAmong?: number[];
}

/**
 * What the store holds after a kill at `k` in a session that started with the children
 * `before` committed, for N children and W workers. The session dispatches the missing
 * indices P in increasing order, at most W at a time, and (see the file comment) commits
 * nothing while the targeted job is in flight but not yet the target:
 *
 * - "commit" #c: exactly c more children, from P[0 .. c+W−2] (the one other slot may hold
 *   any of them); with W = 1 exactly P[0 .. c−1].
 * - "evaluate" #d: the target P[d−1] is not committed; exactly max(0, d−W) more children,
 *   from P[0 .. d−2] (when P[d−1] is dispatched, W−1 earlier ones are still in flight);
 *   with W = 1 exactly P[0 .. d−2].
 * - setup points: no child (they only occur in a session that starts with none).
 */
export function expectedAfterKill(
  k: KillPoint,
  before: readonly number[],
  generations: number,
  workers: number,
): ExpectedAfterKill {
  const done = new Set(before);
  const pending: number[] = [];
  for (let g = 1; g <= generations; g++) if (!done.has(g)) pending.push(g);
  switch (k.at) {
    case "factors":
    case "seed":
    case "archives":
      return { count: before.length, among: [], absent: pending };
    case "commit": {
      const among = pending.slice(0, k.nth + workers - 1);
      return {
        count: before.length + k.nth,
        among,
        absent: pending.slice(among.length),
        ...(workers === 1 ? { index: pending[k.nth - 1] } : { indexAmong: among }),
      };
    }
    case "evaluate":
      return {
        count: before.length + Math.max(0, k.nth - workers),
        among: pending.slice(0, k.nth - 1),
        absent: pending.slice(k.nth - 1),
        index: pending[k.nth - 1],
      };
  }
}
