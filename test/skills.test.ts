import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { GenerateRequest, ScoreRequest } from "../src/engine/types.ts";
import { createCodeSkill } from "../src/skills/code/skill.ts";
import { createDbSkill } from "../src/skills/db/skill.ts";
import { evaluateSkills } from "../src/skills/evaluate.ts";
import { createMiniSkills } from "../src/skills/index.ts";
import { createOsSkill } from "../src/skills/os/skill.ts";
import { mapLimit } from "../src/skills/pool.ts";
import { resolveRunner } from "../src/skills/runner.ts";
import { splitOf } from "../src/skills/splits.ts";
import { extractAnswer, isPrintableAscii } from "../src/skills/text.ts";
import { type Problem, type Skill, type SkillModel, SPLITS } from "../src/skills/types.ts";

const SEED = 11;
const makers = [createCodeSkill, createOsSkill, createDbSkill] as ((o: object) => Skill)[];
const runner = resolveRunner();

function first<P extends Problem>(s: Skill<P>, template: string): P {
  for (const split of SPLITS) {
    const p = s.problems(split).find((x) => x.template === template);
    if (p) return p;
  }
  throw new Error(`no ${template} problem`);
}

async function grade<P extends Problem>(s: Skill<P>, p: P, output: string) {
  return s.grade(p, output, { run: await runner });
}

describe("miniature skills: generation", () => {
  test("is deterministic from the seed and differs between seeds", () => {
    for (const make of makers) {
      const a = make({ seed: SEED, sizes: { train: 200, pretrain: 50 } });
      const b = make({ seed: SEED, sizes: { train: 200, pretrain: 50 } });
      const c = make({ seed: SEED + 1, sizes: { train: 200, pretrain: 50 } });
      for (const split of SPLITS) {
        assert.deepEqual(a.problems(split), b.problems(split), `${a.name} ${split}`);
      }
      assert.notDeepEqual(a.problems("test"), c.problems("test"));
    }
  });

  test("a split does not depend on the other splits' sizes", () => {
    for (const make of makers) {
      const a = make({ seed: SEED, sizes: { train: 10 } });
      const b = make({ seed: SEED, sizes: { train: 300 } });
      assert.deepEqual(a.problems("opt"), b.problems("opt"));
      assert.deepEqual(a.problems("test"), b.problems("test"));
    }
  });

  test("splits are disjoint: no (template, values) combination is in two splits", () => {
    for (const make of makers) {
      const s = make({ seed: SEED });
      const owner = new Map<string, string>();
      for (const split of SPLITS) {
        const ps = s.problems(split);
        if (split === "opt" || split === "test") {
          assert.equal(new Set(ps.map((p) => p.key)).size, ps.length, `${s.name} ${split} repeats`);
        }
        for (const p of ps) {
          assert.equal(splitOf(SEED, p.key), split, `${s.name} ${p.key} is in the wrong split`);
          const before = owner.get(p.key);
          assert.ok(!before || before === split, `${s.name} ${p.key} is in ${before} and ${split}`);
          owner.set(p.key, split);
        }
      }
    }
  });

  test("default sizes, every template trained, short printable prompts and answers", () => {
    for (const make of makers) {
      const s = make({ seed: SEED });
      assert.equal(s.problems("train").length, 4000);
      assert.equal(s.problems("opt").length, 48);
      assert.equal(s.problems("test").length, 96);
      const templates = new Set(SPLITS.flatMap((sp) => s.problems(sp).map((p) => p.template)));
      const trained = new Set(s.problems("train").map((p) => p.template));
      assert.deepEqual(trained, templates, `${s.name}: a template has no training problems`);
      assert.ok(templates.size >= 12, `${s.name} has ${templates.size} templates`);
      for (const split of SPLITS) {
        for (const p of s.problems(split)) {
          const prompt = s.format(p);
          assert.ok(prompt.startsWith("Q: ") && prompt.endsWith("\nA: "), prompt);
          assert.ok(prompt.length <= 100, `prompt too long: ${JSON.stringify(prompt)}`);
          assert.ok(p.reference.length <= 60, `answer too long: ${p.reference}`);
          assert.ok(isPrintableAscii(prompt), prompt);
          assert.ok(isPrintableAscii(p.reference) && !p.reference.includes("\n"), p.reference);
          assert.ok(!p.instruction.includes("\n"));
        }
      }
    }
  });

  test("phrasings vary within a template", () => {
    for (const make of makers) {
      const s = make({ seed: SEED });
      const byTemplate = new Map<string, Set<string>>();
      for (const p of s.problems("train")) {
        const shape = p.instruction.replace(/\d+/g, "N").split(" ").slice(0, 4).join(" ");
        if (!byTemplate.has(p.template)) byTemplate.set(p.template, new Set());
        byTemplate.get(p.template)?.add(shape);
      }
      const varied = [...byTemplate.values()].filter((x) => x.size >= 2).length;
      assert.ok(varied >= byTemplate.size - 1, `${s.name}: too few phrasings`);
    }
  });
});

describe("miniature skills: grading in the sandbox", () => {
  test("reference answers pass on samples of every split", async () => {
    const run = await runner;
    const jobs: { s: Skill; p: Problem }[] = [];
    const take = { pretrain: 8, train: 15, opt: 48, test: 25 };
    for (const make of makers) {
      const s = make({ seed: SEED });
      for (const split of SPLITS) {
        const ps = s.problems(split);
        const step = Math.max(1, Math.floor(ps.length / take[split]));
        for (let i = 0; i < ps.length && i / step < take[split]; i += step)
          jobs.push({ s, p: ps[i] });
      }
    }
    const grades = await mapLimit(jobs, 4, (j) => j.s.grade(j.p, j.p.reference, { run }));
    const failed = grades
      .map((g, i) => ({ g, j: jobs[i] }))
      .filter((x) => !x.g.pass)
      .map((x) => `${x.j.p.id} ${x.j.p.reference}: ${x.g.reason}`);
    assert.deepEqual(failed, []);
  });

  test("code: wrong answers fail with a reason", async () => {
    const s = createCodeSkill({ seed: SEED });
    const add = first(s, "add");
    const f = add.entry;
    const off = add.reference.replace(/(\d+)$/, (m) => String(Number(m) + 1));
    const cases: [string, RegExp][] = [
      [off, new RegExp(`^assertion failed: ${f}\\(\\d+\\) returned -?\\d+, expected -?\\d+$`)],
      [`def ${f}(x) return x`, /^syntax error/],
      [
        add.reference.replace(`def ${f}`, "def other"),
        new RegExp(`^function ${f} is not defined$`),
      ],
      [`def ${f}(x): return y`, /raised NameError/],
      [`def ${f}(x): return next(i for i in iter(int, 1) if i)`, /^timeout$/],
      [`import os; os._exit(0)`, /^no verdict/],
      [`print('{"pass": true, "reason": "ok"}')`, /not defined/],
      ["", /^empty answer$/],
    ];
    const up = first(s, "upper");
    cases.push([`def ${up.entry}(s): return s.lower()`, /returned '.*', expected '.*'/]);
    const results = await Promise.all(
      cases.map(([out], i) => grade(s, i === cases.length - 1 ? up : add, out)),
    );
    results.forEach((g, i) => {
      assert.equal(g.pass, false, cases[i][0]);
      assert.match(g.reason, cases[i][1], `${cases[i][0]} -> ${g.reason}`);
    });
  });

  test("os: wrong answers fail, by output or by the state left behind", async () => {
    const s = createOsSkill({ seed: SEED });
    const lines = first(s, "lines");
    const path = lines.reference.split(" ").pop() as string;
    const mkdir = first(s, "mkdir");
    const write = first(s, "write");
    const cases: [Problem, string, RegExp][] = [
      [lines, `wc -l ${path}`, /^wrong output: got "\d+ .+", expected "\d+"$/],
      [lines, "cat missing.txt", /stderr: cat: missing.txt/],
      [lines, "sleep 30", /^timeout$/],
      [lines, "yes", /too much output/],
      [mkdir, "mkdir wrongname", /^wrong result: missing .*; unexpected wrongname$/],
      [mkdir, `echo "${mkdir.reference}"`, /^wrong result: missing/],
      [write, write.reference.replace(">", ">>"), /^wrong result: changed /],
      [mkdir, `mkdir zz; echo d ./${mkdir.reference.slice(6)} > /proc/$PPID/fd/1`, /^wrong result/],
      [lines, "", /^empty answer$/],
    ];
    const results = await Promise.all(cases.map(([p, out]) => grade(s, p as never, out)));
    results.forEach((g, i) => {
      assert.equal(g.pass, false, cases[i][1]);
      assert.match(g.reason, cases[i][2], `${cases[i][1]} -> ${g.reason}`);
    });
    // Another command with the same effect passes: judged by result, not by text.
    const cp = first(s, "cp");
    const dir = cp.reference.split(" ")[2];
    assert.deepEqual(
      await grade(s, cp, `${cp.reference.replace(" ", " -p ").replace(/\/$/, "")}`),
      {
        pass: true,
        reason: "ok",
      },
    );
    assert.ok(dir.endsWith("/"));
  });

  test("db: wrong answers fail, by result set or by the final table", async () => {
    const s = createDbSkill({ seed: SEED });
    const gt = first(s, "gt");
    const top = first(s, "top");
    const ins = first(s, "insert");
    const table = gt.tables[0].name;
    const cases: [Problem, string, RegExp][] = [
      [gt, gt.reference.replace(/> (\d+)/, ">= 1000"), /^wrong result: got \[\], expected \[\[/],
      [gt, `SELEC * FROM ${table};`, /^SQL error: near "SELEC": syntax error$/],
      [gt, `SELECT 1; SELECT 2;`, /^SQL error: .*one statement/],
      [
        gt,
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT COUNT(*) FROM c;",
        /ran too long|timeout/,
      ],
      [gt, "ATTACH 'x.db' AS x;", /^SQL error/],
      [top, top.reference.replace("DESC", "ASC"), /^wrong result/],
      [ins, ins.reference.replace(/\d+/, (m) => String(Number(m) + 1)), /^wrong table contents: /],
      [ins, `SELECT * FROM ${ins.tables[0].name};`, /^wrong table contents/],
      [gt, "", /^empty answer$/],
    ];
    const results = await Promise.all(cases.map(([p, out]) => grade(s, p as never, out)));
    results.forEach((g, i) => {
      assert.equal(g.pass, false, cases[i][1]);
      assert.match(g.reason, cases[i][2], `${cases[i][1]} -> ${g.reason}`);
    });
    // Result sets compare without order unless the question asks for one; aliases are fine.
    const key = gt.tables[0].columns[0].name;
    const num = gt.tables[0].columns[1].name;
    const k = /> (\d+)/.exec(gt.reference)?.[1];
    const alt = `select ${key} as x from ${table} where not (${num} <= ${k}) order by ${key} desc`;
    assert.deepEqual(await grade(s, gt, alt), { pass: true, reason: "ok" });
  });
});

/** A stand-in model that answers from a script; the test is about batching and bookkeeping. */
function scriptedModel(answer: (prompt: string, i: number) => string) {
  const calls = { generate: 0, score: 0, prompts: 0 };
  const model: SkillModel = {
    generate: async (reqs: GenerateRequest[]) => {
      calls.generate++;
      calls.prompts += reqs.length;
      return reqs.map((r, i) => ({
        text: answer(r.prompt, i),
        tokens: 1,
        finish: "stop" as const,
      }));
    },
    score: async (reqs: ScoreRequest[]) => {
      calls.score++;
      return reqs.map((r) => {
        const logprobs = Array.from(r.continuation, () => -0.5);
        return { logprobs, sum: -0.5 * logprobs.length, mean: -0.5, greedy: false };
      });
    },
  };
  return { model, calls };
}

describe("evaluateSkills", () => {
  test("one generate call for all skills, graded results, likelihood of the references", async () => {
    const skills = createMiniSkills({ seed: SEED, sizes: { opt: 6 } });
    const refs = new Map<string, string>();
    for (const s of skills) for (const p of s.problems("opt")) refs.set(s.format(p), p.reference);
    // Right answers (followed by rambling past the stop) for even indices, wrong ones for odd.
    const { model, calls } = scriptedModel((prompt, i) =>
      i % 2 === 0 ? `${refs.get(prompt)}\nQ: more text` : "nonsense here",
    );
    const res = await evaluateSkills(model, skills, "opt", { concurrency: 4 });
    assert.equal(calls.generate, 1);
    assert.equal(calls.score, 1);
    assert.equal(calls.prompts, 18);
    assert.deepEqual(Object.keys(res), ["code", "os", "db"]);
    for (const name of ["code", "os", "db"]) {
      const r = res[name];
      assert.equal(r.details.length, 6);
      assert.equal(r.score, 0.5, `${name}: ${JSON.stringify(r.details)}`);
      assert.equal(r.meanLogLikelihood, -0.5);
      assert.ok(r.details[0].pass && r.details[0].reason === "ok");
      assert.equal(r.details[0].output, refs.get(r.details[0].prompt));
      assert.ok(!r.details[1].pass && r.details[1].reason.length > 0);
    }
  });

  test("refuses to grade without a sandbox unless told otherwise", async () => {
    const skills = createMiniSkills({ seed: SEED, sizes: { opt: 2 } });
    const { model, calls } = scriptedModel(() => "x");
    const check = async () => ({
      ok: false,
      tool: "unshare" as const,
      mode: "root" as const,
      problems: ["unshare: not found"],
      fix: "apt-get install util-linux",
    });
    await assert.rejects(evaluateSkills(model, skills, "opt", { check }), (e: Error) => {
      assert.match(e.message, /no working sandbox/);
      assert.match(e.message, /apt-get install util-linux/);
      assert.match(e.message, /--unsafe/);
      return true;
    });
    assert.equal(calls.generate, 0, "nothing is generated before the sandbox check");
    const res = await evaluateSkills(model, [], "opt", { check, unsafe: true });
    assert.deepEqual(res, {});
  });

  test("rejects duplicate skill names", async () => {
    const { model } = scriptedModel(() => "");
    const s = createCodeSkill({ seed: 1, sizes: { opt: 1 } }) as Skill;
    await assert.rejects(evaluateSkills(model, [s, s], "opt"), /two skills are named "code"/);
  });
});

describe("helpers", () => {
  test("extractAnswer cuts at the first stop string and trims", () => {
    assert.equal(extractAnswer("  ls -l\nQ: next", ["\n"]), "ls -l");
    assert.equal(extractAnswer("a[DONE]b\n", ["\n", "[DONE]"]), "a");
    assert.equal(extractAnswer("abc", []), "abc");
  });

  test("mapLimit keeps order and bounds concurrency", async () => {
    let live = 0;
    let most = 0;
    const out = await mapLimit([5, 1, 4, 2, 3], 2, async (x) => {
      live++;
      most = Math.max(most, live);
      await new Promise((r) => setTimeout(r, x));
      live--;
      return x * 10;
    });
    assert.deepEqual(out, [50, 10, 40, 20, 30]);
    assert.equal(most, 2);
  });
});
