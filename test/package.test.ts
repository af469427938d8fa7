/**
 * The package as users get it: packed with `npm pack` (which builds dist/), installed from
 * the tarball into an empty folder, imported from plain JavaScript and run as a command,
 * with no TypeScript loader installed.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { type Exit, runProcess } from "./helpers/spawn.ts";

const ROOT = join(import.meta.dirname, "..");
let dir = "";
after(() => (dir ? rm(dir, { recursive: true, force: true }) : undefined));

function ok(what: string, r: Exit): Exit {
  assert.equal(r.code, 0, `${what} failed:\n${r.stdout}\n${r.stderr}`);
  return r;
}

test("npm pack, install the tarball into an empty folder, import it from .mjs, run the command", async () => {
  dir = await mkdtemp(join(tmpdir(), "cycleqd-pack-"));
  ok("npm pack", await runProcess("npm", ["pack", "--pack-destination", dir], { cwd: ROOT }));
  const [tarball] = (await readdir(dir)).filter((f) => f.endsWith(".tgz"));
  assert.ok(tarball, "npm pack wrote a tarball");

  const app = join(dir, "app");
  await mkdir(app);
  await writeFile(join(app, "package.json"), '{ "name": "app", "private": true }\n');
  // Dependencies come from the cache the checkout's install filled. Their install scripts
  // (native builds) are skipped: this checks the package, not its dependencies' builds.
  ok(
    "npm install",
    await runProcess(
      "npm",
      [
        "install",
        join(dir, tarball),
        "--ignore-scripts",
        "--prefer-offline",
        "--no-audit",
        "--no-fund",
      ],
      { cwd: app },
    ),
  );
  const installed = join(app, "node_modules", "cycleqd");
  assert.ok(existsSync(join(installed, "dist", "index.js")), "the package ships dist/");
  assert.ok(existsSync(join(installed, "dist", "index.d.ts")), "the package ships declarations");
  assert.ok(!existsSync(join(installed, "src")), "the package ships no TypeScript sources");
  assert.ok(!existsSync(join(app, "node_modules", "tsx")), "tsx is not a runtime dependency");

  // The library from plain JavaScript: a small ask/tell search, scored by a formula.
  await writeFile(
    join(app, "use.mjs"),
    `import { CycleQD, GenomeLayout, defaultConfig } from "cycleqd";
const layout = new GenomeLayout(3, [{ name: "w", rank: 2 }]);
const qd = new CycleQD({ tasks: ["code", "os", "db"], layout, seed: 1, bins: 5 });
qd.initialise([[0.8, 0.2, 0.1], [0.2, 0.7, 0.2], [0.1, 0.3, 0.6]]);
for (let g = 1; g <= 6; g++) {
  const ask = qd.ask(g);
  qd.tell(ask, [0, 1, 2].map((k) => Math.min(1, 0.2 + 0.6 * ask.genome.a[k])));
}
console.log(JSON.stringify({ generations: defaultConfig().generations, filled: qd.metrics().map((m) => m.filled) }));
`,
  );
  const used = ok("node use.mjs", await runProcess(process.execPath, ["use.mjs"], { cwd: app }));
  const out = JSON.parse(used.stdout);
  assert.equal(out.generations, 60);
  assert.equal(out.filled.length, 3);
  assert.ok(out.filled.every((n: number) => n >= 1));

  const help = ok(
    "npx cycleqd --help",
    await runProcess("npx", ["cycleqd", "--help"], { cwd: app }),
  );
  assert.match(help.stdout, /^cycleqd/);
  assert.match(help.stdout, /Commands:/);
});
