import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";

const SRC = join(import.meta.dirname, "..", "src");

/** Every module a file imports or re-exports, as written. */
async function importsOf(file: string): Promise<string[]> {
  const text = await readFile(file, "utf8");
  const found = text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^;]*?\bfrom\s+"([^"]+)"/g);
  const dynamic = text.matchAll(/\bimport\(\s*"([^"]+)"\s*\)/g);
  return [...found, ...dynamic].map((m) => m[1]);
}

test("src/qd is pure: no I/O, and none of the tensor, engine, skill or run modules", async () => {
  // The QD core decides; it never reads or writes. Hashing (node:crypto) is computation.
  const allowed = (spec: string) =>
    spec === "node:crypto" || spec.startsWith("./") || spec.startsWith("../util/");
  const files = (await readdir(join(SRC, "qd"))).filter((f) => f.endsWith(".ts"));
  assert.ok(files.length >= 10, "the scan sees the QD modules");
  const broken: string[] = [];
  for (const f of files) {
    for (const spec of await importsOf(join(SRC, "qd", f))) {
      if (!allowed(spec)) broken.push(`src/qd/${f} imports ${spec}`);
    }
  }
  assert.deepEqual(broken, []);
});

test("the import scan catches the imports it is meant to", async () => {
  const all = await importsOf(join(SRC, "materialise", "materialise.ts"));
  assert.ok(all.some((s) => s.startsWith("../tensors/")));
});

/** Every .ts file under a directory. */
async function sources(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries
    .filter((e) => e.isFile() && e.name.endsWith(".ts"))
    .map((e) => join(e.parentPath, e.name));
}

test("every name of the public API has a TSDoc contract where it is declared", async () => {
  const index = await readFile(join(SRC, "index.ts"), "utf8");
  const names = [...index.matchAll(/export\s+(?:type\s+)?\{([^}]*)\}/g)].flatMap((m) =>
    m[1]
      .split(",")
      .map((n) => n.replace(/^\s*type\s+/, "").trim())
      .filter(Boolean),
  );
  assert.ok(names.length >= 40, `the scan sees the API (${names.length} names)`);
  const texts = await Promise.all((await sources(SRC)).map((f) => readFile(f, "utf8")));
  const undocumented: string[] = [];
  for (const name of names) {
    const decl = new RegExp(
      `(^|\\n)([^\\n]*\\*/\\s*\\n)?export (?:declare )?(?:abstract )?(?:async )?(?:function|class|interface|type|const|enum) ${name}\\b`,
    );
    const found = texts.map((t) => t.match(decl)).filter((m) => m !== null);
    assert.ok(found.length > 0, `no declaration of ${name} found`);
    if (!found.some((m) => m?.[2])) undocumented.push(name);
  }
  assert.deepEqual(undocumented, [], "exports without a /** */ comment right above them");
});
