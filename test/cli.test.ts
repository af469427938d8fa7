import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import { writeSafetensors } from "../src/tensors/safetensors.ts";
import { writeTinyLlamaGguf } from "./helpers/tiny-gguf.ts";

const exec = promisify(execFile);
const bin = join(import.meta.dirname, "..", "bin", "cycleqd.js");

async function cycleqd(
  ...args: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec("node", [bin, ...args]);
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

let dir = "";
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "cycleqd-cli-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test("every subcommand answers --help", async () => {
  const top = await cycleqd("--help");
  assert.equal(top.code, 0);
  const names = [...top.stdout.matchAll(/^ {2}(\S+) {2,}/gm)].map((m) => m[1]);
  assert.ok(names.includes("inspect") && names.includes("doctor"), top.stdout);
  for (const name of names) {
    const r = await cycleqd(name, "--help");
    assert.equal(r.code, 0, name);
    assert.match(r.stdout, new RegExp(`^Usage: cycleqd ${name}`));
  }
});

test("unknown commands and options are usage errors", async () => {
  const r = await cycleqd("frobnicate");
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown command 'frobnicate'/);
  const o = await cycleqd("inspect", "--nope", "x");
  assert.equal(o.code, 2);
  assert.match(o.stderr, /--nope/);
});

test("zoo build checks --replay-share before any training", async () => {
  for (const bad of ["1", "-0.1", "half"]) {
    const r = await cycleqd("zoo", "build", "--out", join(dir, "z"), `--replay-share=${bad}`);
    assert.equal(r.code, 2, bad);
    assert.match(r.stderr, /--replay-share must be a number in \[0, 1\)/);
  }
});

test("inspect lists a GGUF's metadata and tensors, and --json sums each tensor", async () => {
  const path = join(dir, "tiny.gguf");
  await writeTinyLlamaGguf(path, { nEmbd: 16, nLayer: 1, nHead: 2, nFf: 32 });
  const text = await cycleqd("inspect", path);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /gguf v3/);
  assert.match(text.stdout, /general\.architecture\s+string\s+"llama"/);
  assert.match(text.stdout, /token_embd\.weight\s+F32\s+ne=\[16, \d+\]/);

  const json = JSON.parse((await cycleqd("inspect", path, "--json")).stdout);
  assert.equal(json.format, "gguf");
  assert.equal(json.metadata["llama.block_count"], 1);
  const norm = json.tensors.find((t: { name: string }) => t.name === "blk.0.attn_norm.weight");
  assert.deepEqual(norm.shape, [16]);
  assert.equal(typeof norm.sum, "number");
});

test("inspect reads safetensors with exact sums", async () => {
  const path = join(dir, "m.safetensors");
  await writeSafetensors(
    path,
    [{ name: "w", dtype: "F16", shape: [2, 3], data: Float32Array.of(1, 2, 3, 4, 5, 6.5) }],
    { note: "hi" },
  );
  const json = JSON.parse((await cycleqd("inspect", path, "--json")).stdout);
  assert.equal(json.format, "safetensors");
  assert.equal(json.metadata.note, "hi");
  assert.deepEqual(json.tensors[0], {
    name: "w",
    dtype: "F16",
    shape: [2, 3],
    bytes: 12,
    sum: 21.5,
  });
});

test("inspect explains a bad file instead of crashing", async () => {
  const path = join(dir, "junk.bin");
  await writeFile(path, "definitely not a model");
  const r = await cycleqd("inspect", path);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /junk\.bin: /);
  assert.doesNotMatch(r.stderr, /at .*\.ts:\d+/); // no stack trace
  const missing = await cycleqd("inspect", join(dir, "nope.gguf"));
  assert.match(missing.stderr, /no such file/);
});
