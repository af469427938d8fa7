/**
 * Seeing a run: a self-contained HTML report read from the run store (heatmaps of the
 * archives with a generation slider, curves, final table, lineage, time split, config),
 * its PNG figures, and a live view served while the run goes on.
 */
import { rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type ReportDataOptions, readReportData } from "./data.ts";
import { reportHtml } from "./page.ts";

export {
  type ReportChild,
  type ReportData,
  type ReportDataOptions,
  type ReportFinal,
  type ReportSeed,
  readReportData,
  reportData,
} from "./data.ts";
export { reportHtml } from "./page.ts";
export { exportPngs, findChromium, launchChromium } from "./png.ts";
export { type ReportServer, type ServeOptions, serveReport } from "./serve.ts";

/**
 * Writes the report of the run in `dir` to `out` (default RUN/report.html) and returns the
 * path and the HTML. Throws when `dir` holds no run store. The file is written whole or
 * not at all.
 */
export async function writeReport(
  dir: string,
  out = join(dir, "report.html"),
  opts: ReportDataOptions = {},
): Promise<{ path: string; html: string }> {
  const html = await reportHtml(await readReportData(dir, opts));
  await writeFile(`${out}.tmp`, html);
  await rename(`${out}.tmp`, out);
  return { path: out, html };
}
