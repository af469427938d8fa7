import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import { validateConfig } from "../src/run/config.ts";
import { run } from "../src/run/runner.ts";
import { openTensorFile } from "../src/tensors/open.ts";
import { tinyConfig, writeTinyZoo } from "./run-fixtures.ts";

const exec = promisify(execFile);
const bin = join(import.meta.dirname, "..", "bin", "cycleqd.js");

let dir = "";
let runDir = "";
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "cycleqd-export-"));
  await writeTinyZoo(dir);
  runDir = join(dir, "run");
  await run(validateConfig(tinyConfig(dir, { generations: 3 }), dir), { out: runDir });
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Largest absolute difference between the same tensors of two model files. */
async function maxDiff(a: string, b: string): Promise<number> {
  const [ra, rb] = [await openTensorFile(a), await openTensorFile(b)];
  try {
    assert.deepEqual(
      ra.tensors.map((t) => t.name),
      rb.tensors.map((t) => t.name),
    );
    let worst = 0;
    for (const t of ra.tensors) {
      const [x, y] = [await ra.read(t.name), await rb.read(t.name)];
      for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]));
    }
    return worst;
  } finally {
    await ra.close();
    await rb.close();
  }
}

test("aggregate rebuilds the run's own final model from the archives", async () => {
  const out = join(dir, "agg.gguf");
  const { stdout } = await exec("node", [bin, "aggregate", runDir, "--out", out, "--json"]);
  const written = JSON.parse(stdout);
  assert.equal(written.sources.length, 3);
  const total = written.sources.reduce((s: number, x: { weight: number }) => s + x.weight, 0);
  assert.ok(Math.abs(total - 1) < 1e-12);
  assert.equal(await maxDiff(out, join(runDir, "model.gguf")), 0);
});

test("export writes an elite exactly: a seed elite is its expert", async () => {
  // Tiny random models score 0 on everything, so every archive keeps seed 0 (the code
  // expert) in cell 0.
  const out = join(dir, "elite.gguf");
  await exec("node", [bin, "export", runDir, "--elite", "code:0,0", "--out", out]);
  assert.ok((await maxDiff(out, join(dir, "code.gguf"))) < 1e-5);
});

test("bad elite names and missing options are explained", async () => {
  const fail = async (...args: string[]) => {
    try {
      await exec("node", [bin, ...args]);
      assert.fail("expected a non-zero exit");
    } catch (e) {
      return (e as { stderr: string }).stderr;
    }
  };
  assert.match(
    await fail("export", runDir, "--elite", "sql:0", "--out", "x.gguf"),
    /unknown archive "sql"/,
  );
  assert.match(
    await fail("export", runDir, "--elite", "code:3,4", "--out", "x.gguf"),
    /no elite in cell/,
  );
  // A flat index may exceed one axis's bins (it runs over the whole grid), not the grid.
  assert.match(
    await fail("export", runDir, "--elite", "code:20", "--out", "x.gguf"),
    /no elite in cell 20/,
  );
  assert.match(
    await fail("export", runDir, "--elite", "code:99999", "--out", "x.gguf"),
    /not a cell index below/,
  );
  assert.match(await fail("aggregate", runDir), /--out FILE\.gguf is required/);
});
