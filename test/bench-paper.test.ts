import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "node:test";
import { checkSandbox } from "../src/sandbox/index.ts";
import { SHIPPED_ZOO_DIR } from "../src/zoo/card.ts";
import { type Exit, runNode } from "./helpers/spawn.ts";

const ROWS = [
  "base",
  "expert:code",
  "expert:os",
  "expert:db",
  "average",
  "task-arithmetic",
  "ties",
  "dare",
  "mixed-ft",
  "cycleqd",
  "cycleqd-best",
  "ablation:fixed",
  "ablation:no-mutation",
  "ablation:gaussian",
  "ablation:svd",
];
const COMPARED = ["average", "task-arithmetic", "ties", "dare", "mixed-ft", "expert:code"];

function bench(out: string): Promise<Exit> {
  return runNode(["--import", "tsx", "bench/paper.ts", "--quick", "--out", out]);
}

const inUnit = (x: unknown) => typeof x === "number" && Number.isFinite(x) && x >= 0 && x <= 1;

test("bench:paper --quick produces every row, the bootstrap and the chart", {
  timeout: 20 * 60_000,
}, async (t) => {
  if (!existsSync(join(SHIPPED_ZOO_DIR, "zoo.json"))) return t.skip("no zoo shipped here");
  const sandbox = await checkSandbox();
  if (!sandbox.ok) return t.skip(`no sandbox: ${sandbox.problems.join("; ")}`);
  const out = await mkdtemp(join(tmpdir(), "cycleqd-paper-"));
  try {
    const first = await bench(out);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /## Main table/);

    const json = JSON.parse(await readFile(join(out, "paper.json"), "utf8"));
    const skills: string[] = json.settings.run.skills;
    assert.deepEqual(json.rows.map((r: { id: string }) => r.id).sort(), [...ROWS].sort());
    for (const row of json.rows) {
      for (const split of ["test", "opt"]) {
        for (const k of [...skills, "mean"]) {
          assert.ok(inUnit(row[split][k].mean), `${row.id} ${split} ${k}: ${row[split][k].mean}`);
        }
      }
      assert.ok(row.perSeed.length >= 1);
      for (const r of row.perSeed) {
        for (const k of skills) {
          assert.equal(r.test.passes[k].length, json.settings.testSize);
          assert.ok(inUnit(r.test.scores[k]) && inUnit(r.opt.scores[k]));
        }
      }
    }
    const seededRows = json.rows.filter((r: { deterministic: boolean }) => !r.deterministic);
    assert.deepEqual(
      seededRows.map((r: { id: string }) => r.id).sort(),
      ROWS.filter(
        (id) => id === "dare" || id.startsWith("cycleqd") || id.startsWith("ablation"),
      ).sort(),
    );

    const compared = json.bootstrap.map((b: { baseline: string }) => b.baseline);
    for (const id of COMPARED) assert.ok(compared.includes(id), `no bootstrap against ${id}`);
    for (const b of json.bootstrap) {
      assert.ok(Number.isFinite(b.meanDiff));
      assert.equal(b.ci95.length, 2);
      assert.ok(b.ci95[0] <= b.meanDiff + 1e-12 && b.meanDiff <= b.ci95[1] + 1e-12);
      assert.ok(inUnit(b.p));
      assert.equal(b.resamples, 10_000);
      assert.equal(b.problems, skills.length * json.settings.testSize);
    }

    const md = await readFile(join(out, "paper.md"), "utf8");
    for (const row of json.rows) assert.ok(md.includes(`| ${row.name} |`), row.name);
    assert.match(md, /## Paired bootstrap/);
    const svg = await readFile(join(out, "paper.svg"), "utf8");
    assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    for (const row of json.rows) assert.ok(svg.includes(row.name.replace(/&/g, "&amp;")));

    // A rerun reuses the finished runs, the fine-tune and every evaluation.
    const again = await bench(out);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /mixed-data fine-tune: reusing/);
    assert.doesNotMatch(again.stdout, /\[1\/3\]/);
    const json2 = JSON.parse(await readFile(join(out, "paper.json"), "utf8"));
    assert.deepEqual(json2.rows, json.rows);
  } finally {
    await rm(out, { recursive: true, force: true });
  }
});
