/**
 * Runs on skills loaded from data files in the benchmarks' own formats, with any number of
 * skills: K = 2 (one-dimensional archives) and K = 4 (three behaviour axes), end to end on
 * tiny models, and the config errors a user meets on the way.
 */
import assert from "node:assert/strict";
import { copyFile, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { ConfigError, validateConfig } from "../src/run/config.ts";
import { resume, run } from "../src/run/runner.ts";
import { buildSkills } from "../src/run/skill-sources.ts";
import { RunStore } from "../src/run/store.ts";
import { evaluateSkills } from "../src/skills/evaluate.ts";
import { openGrader } from "../src/skills/runner.ts";
import { openGguf } from "../src/tensors/gguf.ts";
import { Rng } from "../src/util/rng.ts";
import { runNode } from "./helpers/spawn.ts";
import { writeNoisyCopy } from "./helpers/tiny-gguf.ts";
import { tinyConfig, writeTinyZoo } from "./run-fixtures.ts";

const FX = join(import.meta.dirname, "fixtures", "skills");
const BIN = join(import.meta.dirname, "..", "bin", "cycleqd.js");

let dir = "";
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "cycleqd-skills-"));
  await writeTinyZoo(dir);
  const base = await openGguf(join(dir, "base.gguf"));
  try {
    await writeNoisyCopy(base, join(dir, "sql.gguf"), new Rng(104));
  } finally {
    await base.close();
  }
});
after(() => (dir ? rm(dir, { recursive: true, force: true }) : undefined));

const mbpp = { name: "py", kind: "mbpp", pool: join(FX, "mbpp.jsonl") };
const dbbench = {
  name: "sql",
  kind: "dbbench",
  pool: join(FX, "dbbench.jsonl"),
  split: { opt: 3, test: 2 },
};

describe("skills from data files in the run config", () => {
  test("entries load with their splits; a pool is divided by the skill seed", () => {
    const cfg = validateConfig(
      tinyConfig(dir, {
        skills: [mbpp, dbbench],
        models: { base: "base.gguf", experts: { py: "code.gguf", sql: "os.gguf" } },
      }),
      dir,
    );
    assert.deepEqual(cfg.skills, ["py", "sql"]);
    const [py, sql] = buildSkills(cfg);
    // MBPP's own split rule on task ids: 520 is opt, 11 test, 601 train, 3 left out.
    assert.equal(py.problems("opt").length, 1);
    assert.equal(py.problems("test").length, 1);
    assert.equal(sql.problems("opt").length, 3);
    assert.equal(sql.problems("test").length, 2);
    const keys = (s: string) => sql.problems(s as "opt").map((p) => p.key);
    assert.equal(keys("opt").filter((k) => keys("test").includes(k)).length, 0);
    // Another seed divides the pool differently (5 records: 3 opt, 2 test).
    const other = buildSkills({ ...cfg, skillSeed: cfg.skillSeed + 1 })[1];
    assert.equal(other.problems("opt").length, 3);
  });

  test("a validated config validates again as itself (programs build configs from one)", () => {
    const cfg = validateConfig(
      tinyConfig(dir, {
        skills: ["code", dbbench],
        models: { base: "base.gguf", experts: { code: "code.gguf", sql: "os.gguf" } },
      }),
      dir,
    );
    assert.deepEqual(validateConfig(JSON.parse(JSON.stringify(cfg)), dir), cfg);
  });

  test("config errors name the field and what to do", () => {
    const problems = (skills: unknown) => {
      try {
        validateConfig(tinyConfig(dir, { skills }), dir);
        return [];
      } catch (e) {
        assert.ok(e instanceof ConfigError, String(e));
        return e.problems;
      }
    };
    assert.match(problems([{ name: "py", pool: "x.jsonl" }, "os"]).join("\n"), /skills\[0\]\.kind/);
    assert.match(
      problems([{ name: "py", kind: "mbpp", pool: "missing.jsonl" }, "os"]).join("\n"),
      /skills\[0\]\.pool: no file at .*missing\.jsonl/,
    );
    assert.match(
      problems([{ name: "sql", kind: "dbbench", pool: join(FX, "dbbench.jsonl") }, "os"]).join(
        "\n",
      ),
      /skills\[0\]\.split \{opt: N, test: M\} is needed/,
    );
    assert.match(
      problems([{ name: "py", kind: "mbpp" }, "os"]).join("\n"),
      /skills\[0\] needs either files .* or a pool/,
    );
    assert.match(problems(["code", "cooking"]).join("\n"), /unknown skill "cooking"/);
    assert.match(problems(["code"]).join("\n"), /at least two skills/);
  });
});

describe("multi-turn skills", () => {
  test("an os-interaction skill with turns is judged as AgentBench episodes", async () => {
    const osFx = join(import.meta.dirname, "fixtures", "os-format");
    const cfg = validateConfig(
      tinyConfig(dir, {
        skills: [
          "code",
          {
            name: "shell",
            kind: "os-interaction",
            files: { opt: join(osFx, "data", "dev.json") },
            scriptDir: join(osFx, "scripts", "dev"),
            turns: 3,
          },
        ],
        models: { base: "base.gguf", experts: { code: "code.gguf", shell: "os.gguf" } },
      }),
      dir,
    );
    const shell = buildSkills(cfg)[1];
    assert.equal(shell.episodes?.maxRounds, 3);
    // A scripted agent: look first, then answer with what it saw.
    const model = {
      generate: async (reqs: { prompt: string }[]) =>
        reqs.map((r) => {
          const seen = /The output of the OS:\n(\d+)/.exec(r.prompt);
          const text = seen
            ? `Think: counted.\nAct: answer(${seen[1]})`
            : "Think: look.\nAct: bash\n```bash\nls -A / | wc -l\n```";
          return { text, tokens: 1, finish: "stop" as const };
        }),
      score: async () => [],
    };
    const runner = await openGrader({});
    try {
      const res = await evaluateSkills(model, [shell], "opt", { runner: runner.run });
      assert.equal(res.shell.score, 1, JSON.stringify(res.shell.details));
      assert.match(res.shell.details[0].reason, /\(2 turns\)/);
      assert.match(res.shell.details[0].prompt, /The output of the OS/);
    } finally {
      await runner.close();
    }
    const sqlAgent = validateConfig(
      tinyConfig(dir, {
        skills: ["code", { ...dbbench, turns: 4 }],
        models: { base: "base.gguf", experts: { code: "code.gguf", sql: "os.gguf" } },
      }),
      dir,
    );
    assert.equal(buildSkills(sqlAgent)[1].episodes?.maxRounds, 4);
    assert.throws(
      () => validateConfig(tinyConfig(dir, { skills: ["code", { ...mbpp, turns: 2 }] }), dir),
      /turns: multi-turn episodes exist for os-interaction and dbbench skills only/,
    );
  });
});

describe("any number of skills, end to end", () => {
  async function runK(name: string, over: Record<string, unknown>) {
    const out = join(dir, name);
    const r = await run(validateConfig(tinyConfig(dir, { generations: 3, ...over }), dir), { out });
    assert.equal(r.status, "finished");
    const store = await RunStore.open(out, { readonly: true });
    try {
      return { children: store.children(), elites: store.elites(), finals: store.finals() };
    } finally {
      store.close();
    }
  }

  test("a resumed run refuses data files that changed since it started", async () => {
    const data = join(dir, "sql-pool.jsonl");
    await copyFile(dbbench.pool, data);
    const config = validateConfig(
      tinyConfig(dir, {
        generations: 3,
        skills: ["code", { ...dbbench, pool: data }],
        models: { base: "base.gguf", experts: { code: "code.gguf", sql: "os.gguf" } },
      }),
      dir,
    );
    const out = join(dir, "data-changed");
    const ac = new AbortController();
    const first = await run(config, {
      out,
      signal: ac.signal,
      onEvent: (e) => {
        if (e.type === "child") ac.abort();
      },
    });
    assert.equal(first.status, "interrupted");
    const original = await readFile(data, "utf8");
    await writeFile(data, original.replace(/"label": \[[^\]]*\]/, '"label": ["changed"]'));
    await assert.rejects(
      resume(out),
      /the data file .*sql-pool\.jsonl of skill sql changed since the run started/,
    );
    await writeFile(data, original);
    assert.equal((await resume(out)).status, "finished");
  });

  test("K = 2: two skills from files, one-dimensional archives", async () => {
    const got = await runK("k2", {
      skills: [mbpp, dbbench],
      models: { base: "base.gguf", experts: { py: "code.gguf", sql: "os.gguf" } },
    });
    assert.equal(got.children.length, 3);
    for (const c of got.children) {
      assert.deepEqual(Object.keys(c.scores), ["py", "sql"]);
      assert.equal(c.metrics[0].cells, 15, "one BC axis of G = 15 bins");
    }
    assert.equal(got.finals[0].sources.ids.length, 2);
  });

  test("K = 4: built-in skills and one from files, three behaviour axes", async () => {
    const got = await runK("k4", {
      skills: ["code", "os", "db", dbbench],
      models: {
        base: "base.gguf",
        experts: { code: "code.gguf", os: "os.gguf", db: "db.gguf", sql: "sql.gguf" },
      },
      archive: { bins: 4 },
    });
    for (const c of got.children) {
      assert.deepEqual(Object.keys(c.scores), ["code", "os", "db", "sql"]);
      assert.equal(c.metrics[0].cells, 4 ** 3);
      assert.equal(c.outcomes.length, 4);
    }
    assert.equal(got.finals[0].sources.ids.length, 4);
  });

  test("eval lists a malformed record and goes on; --strict makes it fatal", async () => {
    const cfgPath = join(dir, "bad.json");
    await writeFile(
      cfgPath,
      JSON.stringify({
        skills: [
          "code",
          { name: "py", kind: "mbpp", files: { opt: join(FX, "mbpp-bad-json.jsonl") } },
        ],
        models: { base: "base.gguf", experts: { code: "code.gguf", py: "os.gguf" } },
      }),
    );
    const base = join(dir, "base.gguf");
    const args = [BIN, "eval", base, "--config", cfgPath, "--split", "opt", "--skills", "py"];
    const lenient = await runNode(args);
    assert.equal(lenient.code, 0, lenient.stderr);
    assert.match(lenient.stderr, /skipped .*mbpp-bad-json\.jsonl:3: not valid JSON/);
    assert.match(lenient.stderr, /skill py: 1 malformed record\(s\) left out/);
    const strict = await runNode([...args, "--strict"]);
    assert.notEqual(strict.code, 0);
    assert.match(strict.stderr, /mbpp-bad-json\.jsonl:3: not valid JSON/);
  });

  test("cycleqd eval --config scores a model on the config's skills", async () => {
    const cfgPath = join(dir, "eval.json");
    await writeFile(
      cfgPath,
      JSON.stringify({
        skills: [mbpp, dbbench],
        models: { base: "base.gguf", experts: { py: "code.gguf", sql: "os.gguf" } },
      }),
    );
    const r = await runNode([
      BIN,
      "eval",
      join(dir, "base.gguf"),
      "--config",
      cfgPath,
      "--split",
      "opt",
      "--json",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.deepEqual(Object.keys(out.skills), ["py", "sql"]);
    assert.equal(out.skills.sql.problems + out.skills.sql.ungradable, 3);
  });
});
