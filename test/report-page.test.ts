/**
 * The report page (src/report/page.ts, client.ts) without a browser: one self-contained
 * document (no network address, uPlot and the data inline, the data read back equal), the
 * browser code valid JavaScript as the page inlines it, and the pages for K = 2, 3, 4, for a
 * run with no children and one with no ranges yet. A real browser opens it in another test.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { test } from "node:test";
import { Script } from "node:vm";
import type { ReportChild, ReportData, ReportSeed } from "../src/report/data.ts";
import { clientScript, reportHtml } from "../src/report/page.ts";

const G = 5;
const SKILLS = ["code", "os", "db", "web"];

/** A small synthetic run with K skills, replayed through real MAP-Elites insertion. */
function synthetic(K: number, children = 12, opts: { timings?: boolean } = {}): ReportData {
  const skills = SKILLS.slice(0, K);
  let state = 12345 + K;
  const rand = () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state / 2147483648;
  };
  const ranges: [number, number][] = skills.map(() => [0.2, 0.9]);
  const cellOf = (k: number, s: number[]) => {
    let cell = 0;
    for (let j = 0; j < K; j++) {
      if (j === k) continue;
      const [lo, hi] = ranges[j];
      const b = Math.min(G - 1, Math.max(0, Math.floor(((s[j] - lo) / (hi - lo)) * G)));
      cell = cell * G + b;
    }
    return cell;
  };
  const archives = skills.map(() => new Map<number, number>());
  const quality = new Map<number, number[]>();
  const offer = (id: number, s: number[]) => {
    quality.set(id, s);
    const cells = skills.map((_, k) => cellOf(k, s));
    const outcomes = cells.map((c, k): ReportSeed["outcomes"][number] => {
      const held = archives[k].get(c);
      if (held === undefined) {
        archives[k].set(c, id);
        return "new-cell";
      }
      if (s[k] > (quality.get(held) as number[])[k]) {
        archives[k].set(c, id);
        return "improved";
      }
      return "rejected";
    });
    return { cells, outcomes };
  };
  const seeds: ReportSeed[] = skills.map((name, i) => {
    const scores = skills.map((_, j) => (j === i ? 0.7 + 0.1 * rand() : 0.25 + 0.1 * rand()));
    return { id: i, skill: name, scores, ...offer(i, scores) };
  });
  const kids: ReportChild[] = [];
  for (let g = 1; g <= children; g++) {
    const id = K + g - 1;
    const scores = skills.map(() => 0.2 + 0.7 * rand());
    const { cells, outcomes } = offer(id, scores);
    const a = Math.floor(rand() * id);
    const b = Math.floor(rand() * id);
    kids.push({
      g,
      seq: g,
      id,
      task: (g - 1) % K,
      parents: [a, b],
      weights: [0.5, 0.5],
      mutation: {
        kind: "svd",
        task: (g - 1) % K,
        summary: { count: 10, mean: 0.05, min: 0, max: 0.1 },
      },
      scores,
      cells,
      outcomes,
      metrics: archives.map((arc, k) => {
        const qs = [...arc.values()].map((e) => (quality.get(e) as number[])[k]);
        return {
          filled: arc.size,
          coverage: arc.size / G ** (K - 1),
          qdScore: qs.reduce((s, v) => s + v, 0),
          best: Math.max(...qs),
        };
      }),
      ...(opts.timings === false
        ? {}
        : {
            timings: {
              select: 0.2,
              crossover: 1,
              mutate: 1,
              materialise: 300,
              load: 40,
              generate: 3000 + 100 * g,
              grade: 30,
              evaluate: 3400 + 100 * g,
              tell: 0.2,
            },
          }),
    });
  }
  const best = archives.map((arc, k) => {
    let top = -1;
    for (const e of arc.values()) {
      if (top < 0 || (quality.get(e) as number[])[k] > (quality.get(top) as number[])[k]) top = e;
    }
    return top;
  });
  return {
    format: 1,
    name: `synthetic-k${K}`,
    status: "finished",
    skills,
    bins: G,
    ranges,
    generations: children,
    seeds,
    children: kids,
    finals: [
      {
        name: "aggregate",
        sources: best,
        beta: best.map(() => 1 / K),
        opt: skills.map(() => 0.5),
        test: skills.map(() => 0.45),
      },
      { name: "best-mean", sources: [best[0]], opt: skills.map(() => 0.55), test: null },
    ],
    config: { skills, generations: children, note: "</script><script>alert(1)</script>" },
  } as unknown as ReportData;
}

/** The embedded data read back from the page. */
function embedded(html: string): unknown {
  const m = /<script type="application\/json" id="report-data">([\s\S]*?)<\/script>/.exec(html);
  assert.ok(m, "the page embeds the data");
  return JSON.parse(m[1]);
}

/** Every network address the page could load: src/href attributes, url(), fetch, imports. */
function externalRefs(html: string): string[] {
  const refs: string[] = [];
  const patterns = [
    /\b(?:src|href|action|poster|data)\s*=\s*["']?\s*((?:[a-z][\w+.-]*:)?\/\/[^"'\s>]*)/gi,
    /url\(\s*["']?\s*((?:[a-z][\w+.-]*:)?\/\/[^)"']*)/gi,
    /\b(?:fetch|EventSource|import)\s*\(\s*["'`]((?:[a-z][\w+.-]*:)?\/\/[^"'`]*)/gi,
    /(https?:\/\/[^\s"'<>)]*)/gi,
    /(["'`]\/\/cdn[^"'`]*)/gi,
  ];
  for (const p of patterns) for (const m of html.matchAll(p)) refs.push(m[1]);
  return refs;
}

function checkPage(html: string, data: ReportData): void {
  assert.match(html, /^<!doctype html>/i);
  assert.deepEqual(externalRefs(html), [], "no network address in the page");
  assert.doesNotMatch(html, /<script[^>]*\bsrc=|<iframe|<img[^>]*\bsrc=/i);
  for (const m of html.matchAll(/<link\b[^>]*>/gi)) assert.match(m[0], /href="data:/, m[0]);
  assert.deepEqual(embedded(html), JSON.parse(JSON.stringify(data)), "the data reads back equal");
  assert.match(html, /var uPlot\s*=/, "uPlot is inlined");
  assert.match(html, /\/\*! uPlot [\d.]+ .*MIT License/, "uPlot's license banner is kept");
  assert.match(html, /\.uplot\b/, "uPlot's stylesheet is inlined");
  assert.match(html, /function reportClient\s*\(/, "the browser code is inlined");
  assert.match(html, /<input type="range" id="generation" min="0" max="(\d+)" value="\1"/);
  assert.ok(html.includes(`max="${data.children.length}"`), "the slider ends at the last child");
  for (const name of ["heatmaps", "curves", "timings"]) {
    assert.ok(html.includes(`data-png="${name}"`), `figure ${name} is marked for PNG export`);
  }
  // Every inline script parses as a browser script.
  const scripts = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => m[1]);
  assert.equal(scripts.length, 2, "uPlot and the client");
  for (const s of scripts) new Script(s);
  // The JSON script holds no raw "<", so nothing in the data can close it.
  const json = /id="report-data">([\s\S]*?)<\/script>/.exec(html)?.[1] ?? "";
  assert.ok(!json.includes("<"));
}

test("the browser code is one valid script, with no helper left undefined", () => {
  const src = clientScript();
  new Script(src, { filename: "client.js" });
  // esbuild's name-keeping helper is defined by the wrapper; no other injected helper.
  const helpers = new Set(src.match(/\b__[a-zA-Z]+\b/g) ?? []);
  helpers.delete("__name");
  assert.deepEqual([...helpers], []);
  assert.match(src, /var __name = function/);
  assert.ok(!/<\/script/i.test(src));
  // Without a DOM it gets as far as the first element it needs: every name it uses on
  // the way resolves (a leftover helper would be a ReferenceError).
  const text = JSON.stringify(synthetic(3, 2));
  const ctx = {
    document: {
      getElementById: (id: string) => (id === "report-data" ? { textContent: text } : null),
    },
    window: {},
    console: { error() {} },
  };
  let error: unknown;
  try {
    new Script(src).runInNewContext(ctx);
  } catch (e) {
    error = e;
  }
  assert.ok(error, "it needs a DOM");
  assert.equal((error as Error).name, "TypeError", String(error));
});

for (const K of [2, 3, 4]) {
  test(`a page for K = ${K} is self-contained and embeds its data`, async () => {
    const data = synthetic(K);
    const html = await reportHtml(data);
    checkPage(html, data);
    assert.ok(html.includes(`<title>CycleQD report: synthetic-k${K}</title>`));
    assert.match(html, /<body>/);
  });
}

test("live mode marks the page; a title is escaped", async () => {
  const data = synthetic(3, 4);
  const html = await reportHtml(data, { live: true, title: "<b>run</b> & co" });
  checkPage(html, data);
  assert.match(html, /<body data-live="1">/);
  assert.ok(html.includes("<title>&lt;b&gt;run&lt;/b&gt; &amp; co</title>"));
  // The client asks only for relative addresses.
  assert.match(html, /fetch\("\.\/data\.json"/);
  assert.match(html, /new EventSource\("\.\/events"\)/);
});

test("pages with no children, no timings, or no ranges yet", async () => {
  const none = synthetic(3, 0);
  checkPage(await reportHtml(none), none);
  const untimed = synthetic(3, 5, { timings: false });
  checkPage(await reportHtml(untimed), untimed);
  const fresh: ReportData = { ...synthetic(3, 0), ranges: null, seeds: [], finals: [] };
  checkPage(await reportHtml(fresh), fresh);
});

for (const name of ["g150", "cmp10"]) {
  const path = `/work/report-fixtures/${name}.json`;
  test(`the page of a real run (${name}) stays small`, { skip: !existsSync(path) }, async () => {
    const data = JSON.parse(readFileSync(path, "utf8")) as ReportData;
    const html = await reportHtml(data);
    checkPage(html, data);
    const bytes = Buffer.byteLength(html);
    assert.ok(bytes < 1_000_000, `${bytes} bytes`);
    console.log(`report page for ${name}: ${bytes} bytes`);
  });
}
