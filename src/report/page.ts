/**
 * The report page: one self-contained HTML document (CSS, uPlot, the data and the browser
 * code all inline; no network, no CDN), so it opens from disk and can be mailed. The data is
 * a `<script type="application/json" id="report-data">`; the browser code is `reportClient`
 * (client.ts), inlined as its source text. With `live` the page also fetches `./data.json`
 * and refetches it on every message of `EventSource("./events")` (serve.ts).
 *
 * What the page offers to other code (the live server, the PNG export, browser tests):
 * - `#generation` (the slider, 0 = seeds only … the number of children), `#generation-label`
 *   ("generation g / N"), `#active-task`;
 * - figures marked `data-png`: `heatmaps`, `curves`, `timings`;
 * - heatmap cells `[data-archive][data-cell]` (flat cell index; in projections of K ≥ 4 the
 *   projected 2-D index and `data-projection="a-b"`, the task indices on x and y), with
 *   `data-filled="1"` and `data-id` where an elite is;
 * - `<html data-ready="1" data-renders="n">` after each render; `window.cycleqdReport`
 *   with `setGeneration(s)`, `render(data?)`, `data` and `generation`.
 */
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { reportClient } from "./client.ts";
import type { ReportData } from "./data.ts";

export interface ReportPageOptions {
  /** Served by the live view: fetch `./data.json`, follow `./events` (default false). */
  live?: boolean;
  /** The page's title (default "CycleQD report: RUN"). */
  title?: string;
}

interface Assets {
  js: string;
  css: string;
}

let assets: Promise<Assets> | undefined;

/** uPlot's script and stylesheet, read once; the banner keeps its notice without a URL. */
function uplotAssets(): Promise<Assets> {
  assets ??= (async () => {
    const require = createRequire(import.meta.url);
    const jsPath = require.resolve("uplot/dist/uPlot.iife.min.js");
    const [js, css, license] = await Promise.all([
      readFile(jsPath, "utf8"),
      readFile(require.resolve("uplot/dist/uPlot.min.css"), "utf8"),
      readFile(require.resolve("uplot/LICENSE"), "utf8").catch(() => ""),
    ]);
    const copyright = /^Copyright.*$/m.exec(license)?.[0] ?? "Copyright (c) Leon Sorokin";
    const version = /\(v(\d[\w.-]*)\)/.exec(js.slice(0, 200))?.[1] ?? "";
    const notice = `uPlot ${version} (github.com/leeoniya/uPlot), MIT License, ${copyright}`;
    // The original banner is "/*! https://github.com/leeoniya/uPlot (vX) */": the same notice,
    // without a URL scheme, so the page holds no network address at all.
    const body = js.replace(/^\/\*![^*]*\*\/\s*/, "");
    return {
      js: `/*! ${notice} */\n${body.trim()}`,
      css: `/* ${notice} */\n${css.trim()}`,
    };
  })();
  return assets;
}

function escapeHtml(s: string): string {
  return s.replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] ?? c,
  );
}

/** Text safe inside a `<script>` or `<style>` element: no closing tag, no comment opener. */
function rawText(s: string, what: string): string {
  if (/<\/(script|style)|<!--/i.test(s))
    throw new Error(`report page: ${what} holds a closing tag`);
  return s;
}

/** The browser code as the page runs it; `__name` answers esbuild's name-keeping calls. */
export function clientScript(): string {
  return `(function () {\n"use strict";\nvar __name = function (f) { return f; };\n(${reportClient.toString()})();\n})();`;
}

/** The report page of `data`, one HTML document with everything inline. */
export async function reportHtml(data: ReportData, opts: ReportPageOptions = {}): Promise<string> {
  const { js, css } = await uplotAssets();
  const title = opts.title ?? `CycleQD report: ${data.name}`;
  const n = data.children.length;
  // JSON inside <script>: "<" escaped so no "</script>" or "<!--" in the data ends it early.
  const json = JSON.stringify(data)
    .replace(/</g, "\\u003c")
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029");
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="cycleqd report">
<link rel="icon" href="data:,">
<title>${escapeHtml(title)}</title>
<style>
${rawText(css, "uPlot's stylesheet")}
</style>
<style>
${PAGE_CSS}
</style>
</head>
<body${opts.live ? ' data-live="1"' : ""}>
<header>
<h1>${escapeHtml(title)}</h1>
<div id="summary" class="summary"></div>
<div id="live-status" class="live" hidden></div>
</header>
<noscript><p class="error">This report draws its figures with JavaScript; allow scripts for this file.</p></noscript>
<main>
<section id="archives-section">
<h2>Archives</h2>
<div class="controls">
<label for="generation">Replay</label>
<input type="range" id="generation" min="0" max="${n}" value="${n}" step="1">
<span id="generation-label">generation ${n} / ${data.generations}</span>
<span id="active-task"></span>
</div>
<div id="heatmaps" class="figure" data-png="heatmaps"></div>
</section>
<section id="curves-section">
<h2>Archives over generations</h2>
<div id="curves" class="figure" data-png="curves"></div>
</section>
<section id="finals-section">
<h2>Final table</h2>
<div id="finals"></div>
</section>
<section id="lineage-section">
<h2>Lineage of the aggregate</h2>
<div id="lineage"></div>
</section>
<section id="timings-section">
<h2>Time per child</h2>
<div id="timings" class="figure" data-png="timings"></div>
</section>
<section id="config-section">
<h2>Config</h2>
<div id="config"></div>
</section>
</main>
<div id="tooltip" class="tooltip" hidden></div>
<script type="application/json" id="report-data">${json}</script>
<script>
${rawText(js, "uPlot")}
</script>
<script>
${rawText(clientScript(), "the report's browser code")}
</script>
</body>
</html>
`;
}

const PAGE_CSS = `
:root { --fg: #1d1f23; --dim: #6b7079; --line: #e3e5e9; --bg: #fff; --soft: #f6f7f9; }
* { box-sizing: border-box; }
body { margin: 0; padding: 16px 24px 48px; font: 13px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: var(--fg); background: var(--bg); }
h1 { font-size: 19px; margin: 0 0 6px; font-weight: 600; }
h2 { font-size: 15px; margin: 0 0 10px; font-weight: 600; }
section { margin: 18px 0 26px; max-width: 1400px; }
header { border-bottom: 1px solid var(--line); padding-bottom: 10px; max-width: 1400px; }
.summary { display: flex; flex-wrap: wrap; gap: 4px 16px; color: var(--dim); }
.summary > span { white-space: nowrap; }
.status { font-weight: 600; color: var(--fg); text-transform: uppercase; font-size: 11px; letter-spacing: .04em; padding: 1px 6px; border-radius: 3px; background: var(--soft); border: 1px solid var(--line); }
.status-running { background: #e8f3ea; border-color: #b6dbbe; }
.status-finished { background: #e8eef7; border-color: #b8c9e4; }
.status-failed, .status-interrupted { background: #fbeaea; border-color: #ebbcbc; }
.live { margin-top: 6px; font-size: 12px; color: var(--dim); }
.live.ok::before { content: "● "; color: #2e9b46; }
.live.bad::before { content: "● "; color: #c7372f; }
.live.wait::before { content: "● "; color: #d7a21b; }
.dim { color: var(--dim); }
.center { text-align: center; }
.error { color: #b3261e; }
.empty-note { color: var(--dim); font-style: italic; margin: 8px 0; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin: 0 4px 0 2px; vertical-align: -1px; }
.controls { display: flex; align-items: center; flex-wrap: wrap; gap: 6px 12px; margin-bottom: 8px; }
.controls input[type=range] { width: min(520px, 60vw); }
#generation-label { font-variant-numeric: tabular-nums; font-weight: 600; min-width: 140px; }
#active-task { color: var(--dim); }
.figure { background: var(--bg); padding: 6px 4px; }
.hm-caption { color: var(--dim); margin: 0 0 8px; display: flex; align-items: center; flex-wrap: wrap; gap: 4px; }
.hm-caption .cell { display: inline-block; width: 11px; height: 11px; margin-left: 10px; }
.hm-row { display: flex; flex-wrap: wrap; gap: 14px; align-items: flex-start; }
.hm-panel { border: 1px solid var(--line); border-radius: 6px; padding: 8px 16px 8px 6px; border-top: 3px solid var(--skill); }
.hm-panel.active { border-color: var(--skill); box-shadow: 0 0 0 1px var(--skill) inset; }
.hm-title { font-weight: 600; margin: 0 0 6px 6px; }
.active-tag { display: none; margin-left: 8px; font-size: 10px; font-weight: 600; text-transform: uppercase; letter-spacing: .05em; color: #fff; background: var(--skill); padding: 1px 5px; border-radius: 3px; }
.hm-panel.active .active-tag { display: inline-block; }
.hm-maps { display: flex; flex-wrap: wrap; gap: 6px 12px; }
.hm-fig { display: grid; grid-template-columns: 16px 30px auto; grid-template-rows: auto 16px 16px; }
.hm-fig.strip { grid-template-columns: 0 0 auto; margin: 0 4px 0 14px; }
.hm-grid { display: grid; gap: 1px; }
.cell { border: 1px solid #dcdfe4; background: #fff; border-radius: 1px; }
.cell[data-filled="1"] { border-color: transparent; }
.cell.fresh { outline: 2px solid #111; outline-offset: -1px; z-index: 1; }
.hm-grid .cell:hover { outline: 2px solid #e15759; outline-offset: -1px; }
.ylabel { writing-mode: vertical-rl; transform: rotate(180deg); text-align: center; color: var(--dim); font-size: 11px; white-space: nowrap; }
.xlabel { text-align: center; color: var(--dim); font-size: 11px; white-space: nowrap; }
.ticks-x, .ticks-y { position: relative; font-size: 10px; color: var(--dim); font-variant-numeric: tabular-nums; }
.ticks-x span { position: absolute; top: 1px; transform: translateX(-50%); }
.ticks-y span { position: absolute; right: 3px; transform: translateY(50%); }
.hm-proj { display: flex; flex-direction: column; }
.proj-note { font-size: 11px; color: var(--dim); margin-left: 46px; }
.legend { display: flex; align-items: center; gap: 4px; margin: 8px 0 0 46px; font-size: 11px; color: var(--dim); flex-wrap: wrap; }
.legend .ramp { display: inline-block; width: 110px; height: 10px; border-radius: 2px; }
.legend .legend-q { margin-right: 8px; }
.legend-fresh { outline: 2px solid #111; outline-offset: -1px; }
.tooltip { position: fixed; z-index: 10; pointer-events: none; max-width: 420px; background: rgba(255,255,255,.97); border: 1px solid #c9ccd2; border-radius: 5px; padding: 6px 8px; box-shadow: 0 2px 8px rgba(0,0,0,.12); font-size: 12px; }
.tooltip[hidden] { display: none; }
.tip-head { font-weight: 600; }
.tip-id { font-weight: 600; margin-top: 3px; }
.tip-dim { color: var(--dim); }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(340px, 1fr)); gap: 10px; }
.chart { min-width: 0; }
.uplot .u-title { font-size: 13px; font-weight: 600; }
.uplot .u-legend { font-size: 11px; }
.key { color: var(--dim); font-size: 12px; margin-top: 4px; }
.tbl { border-collapse: collapse; font-variant-numeric: tabular-nums; }
.tbl th, .tbl td { padding: 3px 9px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
.tbl th { font-weight: 600; background: var(--soft); }
.tbl th.split { text-align: center; border-left: 1px solid var(--line); }
.tbl .num, .tbl .numh { text-align: right; }
.tbl .first { border-left: 1px solid var(--line); }
.tbl td.top { font-weight: 700; }
.tbl td .dim { font-size: 11px; }
.tbl tr.row-final td:first-child { font-weight: 600; }
.tbl tr.total td { font-weight: 600; }
.tbl.small td, .tbl.small th { padding: 2px 8px; }
.stack { display: flex; height: 22px; border-radius: 4px; overflow: hidden; margin: 6px 0 12px; max-width: 1000px; }
.stack > div { color: #fff; font-size: 11px; line-height: 22px; text-align: center; overflow: hidden; white-space: nowrap; }
.timing-row { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
.timing-row .chart { flex: 1 1 420px; }
.lineage, .lineage ul { list-style: none; margin: 0; padding-left: 18px; }
.lineage { padding-left: 0; }
.lineage ul { border-left: 1px solid var(--line); margin-left: 5px; }
.lineage li { margin: 3px 0; }
.lineage summary { cursor: pointer; }
.lin-id { font-weight: 600; }
.lin-id.seed { color: #4e5663; }
.lin-note { margin-left: 6px; color: #5d4b8a; font-size: 12px; }
.lineage a { text-decoration: none; }
.lineage li.flash > details > summary, .lineage li.flash > .lin-line { background: #fff3bf; }
.lin-detail { color: var(--dim); font-size: 12px; margin-left: 14px; }
pre.config { background: var(--soft); border: 1px solid var(--line); border-radius: 5px; padding: 10px 12px; font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; overflow: auto; max-height: 520px; }
`.trim();
