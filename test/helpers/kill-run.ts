/**
 * A run (or resume) in a process of its own that kills itself with SIGKILL at a planned point
 * (see kill-plan.ts), for the kill -9 tests. It uses only the runner's public hooks: `onEvent`
 * for points between steps and a wrapper around the default `createEvaluator` for points in
 * the middle of an evaluation.
 *
 *   node --import tsx test/helpers/kill-run.ts '{"out": ..., "config": {...}, "baseDir": ...,
 *     "kill": {...} | null}'
 *
 * Without `config` it resumes `out`. Just before the kill it writes a `KillReport` as one JSON
 * line to stdout; a run that ends normally writes `{"done": status}` and exits 0.
 */
import { writeSync } from "node:fs";
import { readdir } from "node:fs/promises";
import {
  createEvaluator,
  type EvalOutcome,
  type Evaluator,
  type RunEvent,
  resume,
  run,
  validateConfig,
} from "../../src/run/index.ts";
import type { EvaluatorSetup } from "../../src/run/model-evaluator.ts";
import type { KillPoint, KillReport } from "./kill-plan.ts";

interface Spec {
  out: string;
  /** A new run's raw config (paths relative to `baseDir`); absent to resume `out`. */
  config?: Record<string, unknown>;
  baseDir?: string;
  kill: KillPoint | null;
}

const spec = JSON.parse(process.argv[2] ?? "") as Spec;
const kill = spec.kill;

function die(report: Omit<KillReport, "kill">): never {
  writeSync(1, `${JSON.stringify({ kill: kill as KillPoint, ...report } satisfies KillReport)}\n`);
  process.kill(process.pid, "SIGKILL");
  // SIGKILL to oneself is delivered before kill(2) returns; nothing below ever runs.
  for (;;) {}
}

let commits = 0;
function onEvent(e: RunEvent): void {
  if (!kill) return;
  if (kill.at === "factors" && e.type === "factors") die({});
  if (kill.at === "archives" && e.type === "archives") die({});
  if (kill.at === "commit" && e.type === "child" && ++commits === kill.nth) die({ index: e.index });
}

/** The default evaluator, with the kill points inside evaluations. */
async function killingEvaluator(setup: EvaluatorSetup, workers: number): Promise<Evaluator> {
  const inner = await createEvaluator(setup, workers);
  let dispatched = 0;
  // Set once the targeted job is dispatched: from then on no other result is handed back.
  let targeted = false;
  const never = new Promise<never>(() => {});
  const holdBack = (p: Promise<EvalOutcome>) => p.then((r) => (targeted ? never : r));
  return {
    concurrency: inner.concurrency,
    close: () => inner.close(),
    evaluate(job) {
      const p = inner.evaluate(job);
      if (kill?.at === "seed" && job.name === `seed-${kill.seed}`) {
        targeted = true;
        return p.then(() => die({}));
      }
      const child = /^child-(\d+)$/.exec(job.name);
      if (!child || kill?.at !== "evaluate" || ++dispatched !== kill.nth) return holdBack(p);
      targeted = true;
      const index = Number(child[1]);
      if (kill.phase === "dispatched") die({ index });
      if (kill.phase === "materialised") {
        const model = new RegExp(`^${job.name}-\\d+\\.gguf$`);
        const look = async (): Promise<void> => {
          const files = await readdir(setup.tmpDir).catch(() => []);
          if (files.some((f) => model.test(f))) die({ index, sawModel: true });
          setTimeout(look, 2);
        };
        void look();
        return p.then(() => die({ index, sawModel: false }));
      }
      return p.then(() => die({ index }));
    },
  };
}

const opts = { onEvent, createEvaluator: killingEvaluator };
const r = spec.config
  ? await run(validateConfig(spec.config, spec.baseDir), { ...opts, out: spec.out })
  : await resume(spec.out, opts);
writeSync(1, `${JSON.stringify({ done: r.status })}\n`);
