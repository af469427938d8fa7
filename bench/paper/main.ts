/**
 * The paper bench end to end: baselines, mixed fine-tune, the CycleQD searches of the
 * ablation, the bootstrap and the report. Returns the exit code.
 */
import { execFileSync } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { availableParallelism, loadavg } from "node:os";
import { join } from "node:path";
import { PACKAGE_ROOT } from "../../src/run/config.ts";
import { CARD_FILE, readCard, SHIPPED_ZOO_DIR, sha256File } from "../../src/zoo/card.ts";
import { mergeRows, mixedRow, referenceRows } from "./baselines.ts";
import { type BenchContext, Interrupted } from "./context.ts";
import { PassEvaluator } from "./evaluate.ts";
import { chartBars, compareAll, jsonReport, markdown, type ReportInput } from "./report.ts";
import type { Row, RowKind } from "./rows.ts";
import { type SearchResult, searchRun } from "./search.ts";
import { parsePaperArgs, resolveSettings, USAGE, VARIANTS } from "./settings.ts";
import { barChart } from "./svg.ts";

function git(args: string[]): string | null {
  try {
    return execFileSync("git", args, { cwd: PACKAGE_ROOT, stdio: ["ignore", "pipe", "ignore"] })
      .toString()
      .trim();
  } catch {
    return null;
  }
}

/** Wall time per part of the bench, and a helper that adds to it. */
function timers() {
  const seconds: Record<string, number> = {};
  const timed = async <T>(part: string, fn: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    try {
      return await fn();
    } finally {
      seconds[part] = (seconds[part] ?? 0) + (performance.now() - t0) / 1000;
    }
  };
  return { seconds, timed };
}

export async function main(argv: string[]): Promise<number> {
  const args = parsePaperArgs(argv);
  if (args.help) {
    console.log(USAGE);
    return 0;
  }
  const started = performance.now();
  const zooDir = args.zoo || SHIPPED_ZOO_DIR;
  const card = await readCard(zooDir);
  const settings = await resolveSettings(args, zooDir, card);
  const { run: config } = settings;
  const stamp = () => {
    const s = Math.round((performance.now() - started) / 1000);
    return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  };
  const log = (line: string) => console.log(`[paper ${stamp()}] ${line}`);
  await mkdir(args.out, { recursive: true });

  log(
    `zoo ${zooDir}; skills ${config.skills.join(", ")}; seeds ${settings.seeds.join(", ")}; ` +
      `${config.generations} children per search; opt ${config.split.opt} / test ${settings.testSize} problems per skill` +
      (settings.quick ? " (quick)" : ""),
  );
  if (settings.testSize < settings.testSizeRequested) {
    log(
      `the skills have only ${settings.testSize} distinct test problems; ${settings.testSizeRequested} were asked for`,
    );
  }
  log(`output: ${args.out}`);

  // The first Ctrl-C lets the child in flight finish (the bench can be rerun to continue).
  const ac = new AbortController();
  const onSignal = () => {
    if (ac.signal.aborted) process.exit(130);
    log("stopping after the evaluation in flight; rerun the same command to continue");
    ac.abort();
  };
  const ev = await PassEvaluator.create(config, join(args.out, "evals"));
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  const ctx: BenchContext = { out: args.out, zooDir, card, settings, ev, log, signal: ac.signal };
  const { seconds, timed } = timers();
  const rows: Row[] = [];
  const searches: SearchResult[] = [];
  const stopIfAsked = () => {
    if (ac.signal.aborted) throw new Interrupted("interrupted");
  };
  try {
    rows.push(...(await timed("references", () => referenceRows(ctx))));
    stopIfAsked();
    rows.push(...(await timed("merges", () => mergeRows(ctx))));
    stopIfAsked();
    rows.push(await timed("mixed fine-tune", () => mixedRow(ctx)));
    // CycleQD itself first, so a partial bench already has its main row.
    const order = [...VARIANTS].sort((a, b) => Number(b.id === "full") - Number(a.id === "full"));
    for (const seed of settings.seeds) {
      for (const v of order) {
        stopIfAsked();
        const part = v.id === "full" ? "CycleQD" : "ablations";
        searches.push(await timed(part, () => searchRun(ctx, v, seed)));
      }
    }
  } catch (e) {
    if (!(e instanceof Interrupted)) throw e;
    log(`${e.message}; rerun the same command to continue`);
    return 130;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    await ev.close();
  }

  const t0 = performance.now();
  const of = (variant: string) => searches.filter((x) => x.variant === variant);
  const searchRow = (id: string, name: string, kind: RowKind, variant: string): Row => ({
    id,
    name,
    kind,
    results: of(variant).map((x) => ({ seed: x.seed, ...x.aggregate })),
    detail: { runs: of(variant).map((x) => ({ seed: x.seed, dir: x.dir, ...x.summary })) },
  });
  rows.push(searchRow("cycleqd", "CycleQD aggregate", "cycleqd", "full"));
  rows.push({
    id: "cycleqd-best",
    name: "CycleQD best elite (by mean on opt)",
    kind: "cycleqd",
    results: of("full").map((x) => {
      if (!x.bestMean) throw new Error(`${x.dir}: no best elite scored`);
      return { seed: x.seed, ...x.bestMean };
    }),
  });
  const ablations = VARIANTS.map((v) => {
    if (v.id === "full") return { variant: v, rowId: "cycleqd" };
    rows.push(searchRow(`ablation:${v.id}`, v.label, "ablation", v.id));
    return { variant: v, rowId: `ablation:${v.id}` };
  });
  const comparisons = compareAll(rows, config.skills, settings);
  seconds.report = (performance.now() - t0) / 1000;
  const input: ReportInput = {
    settings,
    zooDir,
    rows,
    ablations,
    comparisons,
    wallSeconds: seconds,
    totalSeconds: (performance.now() - started) / 1000,
  };

  const models: Record<string, { file: string; sha256: string; matches: boolean }> = {};
  for (const [name, m] of Object.entries(card.models)) {
    const actual = await sha256File(join(zooDir, m.file));
    models[name] = { file: m.file, sha256: m.sha256, matches: actual === m.sha256 };
  }
  const md = markdown(input);
  const json = jsonReport(input, {
    created: new Date().toISOString(),
    git: {
      commit: git(["rev-parse", "HEAD"]),
      dirty: (git(["status", "--porcelain"]) ?? "") !== "",
    },
    machine: { node: process.version, cpus: availableParallelism(), loadAverage: loadavg()[0] },
    zoo: {
      dir: zooDir,
      cardSha256: await sha256File(join(zooDir, CARD_FILE)),
      seed: card.seed,
      skills: card.skills,
      models,
    },
    problems: { opt: ev.problemIds("opt"), test: ev.problemIds("test") },
  });
  await writeFile(join(args.out, "paper.md"), md);
  await writeFile(join(args.out, "paper.json"), `${JSON.stringify(json, null, 2)}\n`);
  await writeFile(
    join(args.out, "paper.svg"),
    barChart("CycleQD in miniature: mean test pass rate", chartBars(input)),
  );
  console.log(`\n${md}`);
  log(`wrote paper.md, paper.json and paper.svg to ${args.out}`);
  return 0;
}
