/**
 * The report and the live view on a small real run of the embedded zoo, opened in a real
 * browser: the distribution's Chromium driven by playwright-core (.ci/run installs it).
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { pathToFileURL } from "node:url";
import type { Browser, Page } from "playwright-core";
import { type ReportData, readReportData, serveReport, writeReport } from "../src/report/index.ts";
import { findChromium, launchChromium } from "../src/report/png.ts";
import { defaultConfig, validateConfig } from "../src/run/config.ts";
import { run } from "../src/run/runner.ts";
import { RunStore } from "../src/run/store.ts";
import { runNode } from "./helpers/spawn.ts";
import { writeConfig } from "./run-fixtures.ts";

/** Polls `ok` every 200 ms; fails after two minutes, naming what it waited for. */
async function until(ok: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`waited two minutes for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const BIN = join(import.meta.dirname, "..", "bin", "cycleqd.js");

/** Screenshots land here (kept after the test, printed as diagnostics). */
const SHOTS = join(tmpdir(), "cycleqd-report-shots");

/** A small real search on the zoo: real models, real grading, scores that vary. */
function smallZooConfig(over: Record<string, unknown> = {}) {
  const base = defaultConfig();
  return {
    ...base,
    split: { opt: 12, test: 4 },
    generations: 10,
    seed: 3,
    mutation: { ...base.mutation, wMax: 0.5 },
    final: { evaluate: true, writeModel: false },
    ...over,
  };
}

/** Elites per archive as the run store holds them. */
async function storeElites(dir: string): Promise<number[]> {
  const store = await RunStore.open(dir, { readonly: true });
  try {
    const K = store.config.skills.length;
    return Array.from(
      { length: K },
      (_, k) => store.elites().filter((e) => e.archive === k).length,
    );
  } finally {
    store.close();
  }
}

/** The archives replayed from the report's data (seeds, then children in commit order). */
function replay(d: ReportData, upTo = d.children.length): Map<number, number>[] {
  const cells = d.skills.map(() => new Map<number, number>());
  const offer = (id: number, c: number[], o: string[]) =>
    cells.forEach((m, k) => {
      if (o[k] !== "rejected") m.set(c[k], id);
    });
  for (const s of d.seeds) offer(s.id, s.cells, s.outcomes);
  for (const c of d.children.slice(0, upTo)) offer(c.id, c.cells, c.outcomes);
  return cells;
}

let dir = "";
let runDir = "";
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "cycleqd-report-"));
  runDir = join(dir, "run");
  const r = await run(validateConfig(smallZooConfig(), dir), { out: runDir });
  assert.equal(r.status, "finished");
});
after(() => (dir ? rm(dir, { recursive: true, force: true }) : undefined));

describe("report data", () => {
  test("replaying the children's outcomes gives the archives the store holds", async () => {
    const d = await readReportData(runDir);
    assert.equal(d.children.length, 10);
    assert.deepEqual(d.skills, ["code", "os", "db"]);
    const replayed = replay(d);
    assert.deepEqual(
      replayed.map((m) => m.size),
      await storeElites(runDir),
    );
    const store = await RunStore.open(runDir, { readonly: true });
    try {
      for (const e of store.elites()) assert.equal(replayed[e.archive].get(e.cell), e.id);
    } finally {
      store.close();
    }
    // The metrics recorded after the last child agree with the replay.
    const last = d.children.at(-1);
    assert.deepEqual(
      last?.metrics.map((m) => m.filled),
      replayed.map((m) => m.size),
    );
    assert.deepEqual(
      d.finals.map((f) => f.name),
      ["aggregate", "best-mean"],
    );
    assert.ok(d.finals[0].opt && d.finals[0].test);
  });

  test("the report is one self-contained file", async () => {
    const { path, html } = await writeReport(runDir);
    assert.equal(await readFile(path, "utf8"), html);
    assert.doesNotMatch(html, /\b(?:src|href)\s*=\s*["']?(?:https?:)?\/\//i);
    assert.ok(html.length < 1_000_000, `${html.length} bytes`);
  });
});

describe("cycleqd serve", () => {
  test("serves the page, the data and events on 127.0.0.1, read-only", async () => {
    const p = spawn(process.execPath, [BIN, "serve", runDir, "--port", "0"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    try {
      let out = "";
      p.stdout.on("data", (d) => {
        out += d;
      });
      await until(() => /http:\/\/127\.0\.0\.1:\d+\//.test(out), "the URL");
      const url = (out.match(/http:\/\/127\.0\.0\.1:\d+\//) as RegExpMatchArray)[0];
      const page = await fetch(url);
      assert.equal(page.status, 200);
      assert.match(await page.text(), /data-live="1"/);
      const data = (await (await fetch(`${url}data.json`)).json()) as ReportData;
      assert.equal(data.children.length, 10);
      assert.equal((await fetch(url, { method: "POST" })).status, 405);
      assert.equal((await fetch(`${url}run.db`)).status, 404);
      const events = await fetch(`${url}events`);
      assert.equal(events.headers.get("content-type"), "text/event-stream");
      const reader = events.body?.getReader();
      const first = await reader?.read();
      assert.match(new TextDecoder().decode(first?.value), /^event: update/);
      await reader?.cancel();
    } finally {
      p.kill("SIGINT");
    }
  });
});

/** Chromium, or a skip outside CI where it is not installed (.ci/run installs it). */
function browserOrSkip(t: { skip: (m: string) => void }): boolean {
  try {
    findChromium();
    return true;
  } catch (e) {
    if (process.env.CI) throw e;
    t.skip(`no Chromium here (${(e as Error).message})`);
    return false;
  }
}

describe("in a real browser", () => {
  let browser: Browser | undefined;
  before(async () => {
    await mkdir(SHOTS, { recursive: true });
  });
  after(() => browser?.close());

  async function open(url: string): Promise<{ page: Page; errors: string[] }> {
    browser ??= await launchChromium();
    const page = await browser.newPage({ viewport: { width: 1300, height: 900 } });
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    page.on("console", (m) => {
      if (m.type() === "error") errors.push(m.text());
    });
    await page.goto(url);
    return { page, errors };
  }

  const filledPerArchive = (page: Page, K: number) =>
    Promise.all(
      Array.from({ length: K }, (_, k) =>
        page.locator(`[data-archive="${k}"][data-cell][data-filled="1"]`).count(),
      ),
    );

  test("the report from disk: filled cells match the store, the slider replays, screenshots", async (t) => {
    if (!browserOrSkip(t)) return;
    const { path } = await writeReport(runDir);
    const { page, errors } = await open(pathToFileURL(path).href);
    await page.waitForSelector("[data-cell]");
    assert.deepEqual(await filledPerArchive(page, 3), await storeElites(runDir));
    const shot = join(SHOTS, "report.png");
    await page.screenshot({ path: shot, fullPage: true });
    t.diagnostic(`screenshot: ${shot}`);

    // Back to the seeds only: fewer filled cells, and the grid differs.
    const before = await page.locator("#heatmaps").innerHTML();
    await page.locator("#generation").fill("0");
    await page.locator("#generation").dispatchEvent("input");
    const atSeeds = await filledPerArchive(page, 3);
    const d = await readReportData(runDir);
    assert.deepEqual(
      atSeeds,
      replay(d, 0).map((m) => m.size),
    );
    assert.notEqual(await page.locator("#heatmaps").innerHTML(), before);
    const seedsShot = join(SHOTS, "report-generation-0.png");
    await page.screenshot({ path: seedsShot, fullPage: true });
    t.diagnostic(`screenshot: ${seedsShot}`);
    assert.deepEqual(errors, []);
  });

  test("cycleqd report --png exports the figures as PNG", async (t) => {
    if (!browserOrSkip(t)) return;
    const pngDir = join(dir, "figures");
    const r = await runNode([BIN, "report", runDir, "--png", pngDir]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /report: .*report\.html/);
    const names = (await readdir(pngDir)).sort();
    assert.deepEqual(names, ["curves.png", "heatmaps.png", "timings.png"]);
    for (const n of names) {
      const bytes = await readFile(join(pngDir, n));
      assert.deepEqual([...bytes.subarray(1, 4)], [0x50, 0x4e, 0x47], `${n} is a PNG`);
      assert.ok(bytes.length > 5000, `${n} has a picture in it (${bytes.length} bytes)`);
    }
    t.diagnostic(`figures: ${pngDir}`);
  });

  test("the live view shows a new child without a reload", async (t) => {
    if (!browserOrSkip(t)) return;
    // A run in another process, served from here while it adds children.
    const live = join(dir, "live");
    const cfgPath = join(dir, "live.yaml");
    // Long enough that it is still adding children while the page is open; killed at the end.
    await writeConfig(
      cfgPath,
      smallZooConfig({ generations: 40, final: { evaluate: false, writeModel: false } }),
    );
    const child = spawn(
      process.execPath,
      [
        join(import.meta.dirname, "..", "bin", "cycleqd.js"),
        "run",
        cfgPath,
        "--out",
        live,
        "--quiet",
      ],
      { stdio: "ignore" },
    );
    try {
      await until(() => existsSync(join(live, "run.db")), "the run to start");
      const countNow = async () => (await readReportData(live)).children.length;
      const server = await serveReport(live, { pollMs: 200 });
      try {
        const { page, errors } = await open(server.url);
        await page.evaluate(() => {
          (window as unknown as { marker: number }).marker = 42;
        });
        const shown = () => page.locator("#generation").getAttribute("max");
        const first = Number(await shown());
        // Wait until the store has more children than the page showed at first.
        await until(async () => (await countNow()) > first, "a new child");
        await page.waitForFunction((n) => {
          const el = document.querySelector("#generation") as HTMLInputElement | null;
          return el !== null && Number(el.max) > n;
        }, first);
        const marker = await page.evaluate(() => (window as unknown as { marker?: number }).marker);
        assert.equal(marker, 42, "the page was not reloaded");
        const shot = join(SHOTS, "live.png");
        await page.screenshot({ path: shot, fullPage: true });
        t.diagnostic(`screenshot: ${shot}`);
        assert.deepEqual(errors, []);
      } finally {
        await server.close();
      }
    } finally {
      child.kill("SIGKILL");
    }
  });
});
