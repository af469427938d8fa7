/** Human-readable lines for run events and the status report. */
import { table } from "../cli/command.ts";
import type { RunEvent } from "./runner.ts";
import type { RunStatusReport } from "./status.ts";
import type { Scores } from "./store.ts";

const OUTCOME: Record<string, string> = { "new-cell": "new", improved: "improved", rejected: "-" };

function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

const score = (x: number) => x.toFixed(2);

function formatScores(s: Scores | null): string {
  if (!s) return "-";
  return Object.entries(s)
    .map(([k, v]) => `${k} ${score(v.score)}`)
    .join("  ");
}

/** One line per event, or null for events the human view leaves out. */
export function formatEvent(e: RunEvent): string | null {
  switch (e.type) {
    case "start": {
      const where = e.queue ? `workers through the queue at ${e.queue}` : `${e.workers} worker(s)`;
      return e.resumed
        ? `Resuming ${e.dir}: ${e.finished}/${e.generations} children done, ${where}`
        : `Run ${e.dir}: ${e.generations} generations, ${where}`;
    }
    case "skills":
      return e.skills
        .map((s) => {
          const left = s.skipped.length
            ? `; ${s.skipped.length} malformed record(s) left out, e.g. ${s.skipped[0].file}:${s.skipped[0].line}: ${s.skipped[0].reason}`
            : "";
          return `Skill ${s.name} (${s.kind}): ${s.opt} opt and ${s.test} test problems${left}`;
        })
        .join("\n");
    case "factors":
      return `Seed factors ${e.fromCache ? "loaded from the cache" : "computed"} (${(e.ms / 1000).toFixed(1)}s)`;
    case "seed":
      return `Seed ${e.seed} (${e.skill} expert): ${formatScores(e.scores)}`;
    case "archives":
      return `Archives: ${Object.entries(e.ranges)
        .map(([k, [lo, hi]]) => `${k} [${lo.toFixed(3)}, ${hi.toFixed(3)}]`)
        .join("  ")}`;
    case "replayed":
      return `Rebuilt the archives from ${e.children} finished children`;
    case "child": {
      const n = String(e.total).length;
      const outcomes = Object.entries(e.outcomes)
        .map(([k, o]) => `${k} ${OUTCOME[o] ?? o}`)
        .join("  ");
      const cov = e.archives.map((a) => `${(100 * a.coverage).toFixed(1)}%`).join(" ");
      const qd = e.archives.map((a) => a.qdScore.toFixed(2)).join(" ");
      return (
        `[${String(e.finished).padStart(n)}/${e.total}] g${e.index} ${e.task.padEnd(4)} ` +
        `${formatScores(e.scores)} | ${outcomes} | cov ${cov}  QD ${qd} | ETA ${duration(e.etaSeconds)}`
      );
    }
    case "stopping":
      return `Stopping: finishing ${e.inFlight} evaluation(s) in flight (interrupt again to stop at once)`;
    case "final":
      return (
        `Final ${e.name} (from ${e.sources.map((i) => `#${i}`).join(", ")}): opt ${formatScores(e.scoresOpt)}; ` +
        `test ${formatScores(e.scoresTest)}${e.model ? `; written to ${e.model}` : ""}`
      );
    case "done":
      return e.status === "finished"
        ? `Finished: ${e.finished}/${e.generations} children in ${duration(e.seconds)}`
        : `Stopped (${e.status}) at ${e.finished}/${e.generations} children; continue with cycleqd resume`;
  }
}

export function formatStatus(r: RunStatusReport): string {
  const lines: string[] = [];
  const stale = r.status === "running" || r.status === "initialising";
  const state = r.inProgress
    ? `in progress (process ${r.holder?.pid} on ${r.holder?.host}, since ${r.holder?.since})`
    : stale
      ? `${r.status} when its process stopped without finishing; continue with cycleqd resume`
      : r.status;
  lines.push(`Run ${r.dir}: ${state}`);
  lines.push(
    `Generation ${r.finished}/${r.generations}; skills ${r.skills.join(", ")}; ${r.workers} worker(s); seed ${r.seed}`,
  );
  if (r.error) lines.push(`Last error: ${r.error}`);
  if (r.seeds.length) {
    lines.push("", "Seeds:");
    for (const s of r.seeds) lines.push(`  ${s.skill} expert: ${formatScores(s.scores)}`);
  }
  if (r.archives.some((a) => a.filled > 0)) {
    lines.push("", "Archives:");
    lines.push(
      table(
        ["archive", "filled", "coverage", "QD score", "best", "best elite", "its scores"],
        r.archives.map((a) => [
          a.skill,
          `${a.filled}/${a.cells}`,
          `${(100 * a.coverage).toFixed(1)}%`,
          a.qdScore.toFixed(2),
          a.best ? score(a.best.quality) : "-",
          a.best ? `#${a.best.id}` : "-",
          a.best ? formatScores(a.best.scores) : "-",
        ]),
      )
        .split("\n")
        .map((l) => `  ${l}`)
        .join("\n"),
    );
  }
  if (r.bestMean) {
    lines.push(
      "",
      `Best mean elite: #${r.bestMean.id}, mean ${score(r.bestMean.mean)} (${formatScores(r.bestMean.scores)})`,
    );
  }
  if (r.timings) {
    const m = r.timings.meanMs;
    const ms = (x: number) => `${x.toFixed(x < 10 ? 1 : 0)}ms`;
    lines.push(
      "",
      `Time per child: select ${ms(m.select)}, crossover ${ms(m.crossover)}, mutate ${ms(m.mutate)}, ` +
        `materialise ${ms(m.materialise)}, load ${ms(m.load)}, generate ${ms(m.generate)}, ` +
        `grade ${ms(m.grade)}, tell ${ms(m.tell)}`,
      `Outside generation and grading: ${(100 * r.timings.overheadShare).toFixed(1)}%`,
    );
  }
  const fb = r.gradingFallbacks;
  if (fb.answers > 0) {
    lines.push(
      `Grading: ${fb.answers} answer(s) re-run in a sandbox of their own after breaking a lane ` +
        `(children ${fb.children.map((i) => `#${i}`).join(", ")}); verdicts are unaffected`,
    );
  }
  for (const f of r.finals) {
    lines.push(
      "",
      `Final ${f.name} (from ${f.sources.map((i) => `#${i}`).join(", ")}):`,
      `  opt  ${formatScores(f.scoresOpt)}`,
      `  test ${formatScores(f.scoresTest)}`,
    );
    if (f.model) lines.push(`  model ${f.model}`);
  }
  return lines.join("\n");
}
