import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { copyFile, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { UsageError } from "../src/cli/command.ts";
import { parseLambdas, zoo } from "../src/cli/commands/zoo.ts";
import { createLlamaCppEngine } from "../src/engine/index.ts";
import { createMiniSkills } from "../src/skills/index.ts";
import {
  BASE_NAME,
  CARD_FILE,
  formatProbe,
  judgeProbe,
  modelPath,
  type ProbeMeasurements,
  type ProbeProgress,
  type ProbeResult,
  probeZoo,
  readCard,
  type Scores,
  SHIPPED_ZOO_DIR,
  skillScores,
  standardError,
  taskVectorStats,
} from "../src/zoo/index.ts";

const SKILLS = ["code", "os", "db"];
const N = 100;

/**
 * Hand-made measurements of a zoo that passes every check: experts 0.9 on their own skill and
 * 0.2 elsewhere, flat curves (0.8 at λ = 1/3), task arithmetic at λ = 1 keeping 0.70–0.90 of
 * each expert's score, and a code+os merge at 0.8 / 0.8 against an average of 0.5 (2 SE = 0.08).
 */
function zooThatMerges(): ProbeMeasurements {
  const expert = (k: string): Scores =>
    Object.fromEntries(SKILLS.map((s) => [s, s === k ? 0.9 : 0.2]));
  const third = (k: string): Scores =>
    Object.fromEntries(SKILLS.map((s) => [s, s === k ? 0.8 : 0.3]));
  return {
    skills: SKILLS,
    problems: { code: N, os: N, db: N },
    base: { code: 0.3, os: 0.3, db: 0.3 },
    curves: Object.fromEntries(
      SKILLS.map((k) => [
        k,
        [
          { lambda: 1 / 3, scores: third(k) },
          { lambda: 1, scores: expert(k) },
        ],
      ]),
    ),
    grid: [
      {
        experts: ["code", "os"],
        points: [
          { lambdas: [0.5, 0.5], scores: { code: 0.52, os: 0.56, db: 0.1 } },
          { lambdas: [0.5, 1], scores: { code: 0.4, os: 0.85, db: 0 } },
          { lambdas: [1, 0.5], scores: { code: 0.85, os: 0.4, db: 0 } },
          { lambdas: [1, 1], scores: { code: 0.8, os: 0.8, db: 0 } },
        ],
      },
      {
        experts: ["code", "db"],
        points: [{ lambdas: [1, 1], scores: { code: 0.5, os: 0.1, db: 0.5 } }],
      },
    ],
    taskArithmetic: [
      { lambda: 1 / 3, scores: { code: 0.5, os: 0.5, db: 0.5 } },
      { lambda: 1, scores: { code: 0.63, os: 0.81, db: 0.7 } },
    ],
  };
}

test("all three checks pass on a zoo whose task vectors add up", () => {
  const c = judgeProbe(zooThatMerges());
  assert.equal(c.taskArithmetic.pass, true);
  assert.equal(c.taskArithmetic.lambda, 1);
  assert.ok(Math.abs((c.taskArithmetic.perSkill.code.ratio ?? 0) - 0.7) < 1e-12);
  assert.equal(c.taskArithmetic.perSkill.os.own, 0.9);
  assert.equal(c.share.pass, true);
  assert.equal(c.share.lambda, 1 / 3);
  assert.equal(c.share.perSkill.db.score, 0.8);
  assert.equal(c.pairs.pass, true);
  const [codeOs, codeDb] = c.pairs.perPair;
  assert.equal(codeOs.beats, true);
  // The merge whose weaker skill clears its bar by the most.
  assert.deepEqual(codeOs.best?.lambdas, [1, 1]);
  const m = codeOs.best?.margins.code;
  assert.ok(m);
  assert.equal(m.average, 0.5);
  assert.equal(m.other, 0.2, "the os expert's score on code");
  assert.ok(Math.abs(m.margin - 0.3) < 1e-12);
  assert.ok(Math.abs(m.se - 0.04) < 1e-12);
  assert.equal(codeDb.beats, false, "0.5 does not beat an average of 0.5");
});

test("task arithmetic at λ = 1 fails when it keeps less than 0.7 of an expert", () => {
  const m = zooThatMerges();
  m.taskArithmetic[1].scores.os = 0.62; // 0.62 / 0.9 = 0.69
  const c = judgeProbe(m);
  assert.equal(c.taskArithmetic.pass, false);
  assert.equal(c.taskArithmetic.perSkill.os.pass, false);
  assert.equal(c.taskArithmetic.perSkill.code.pass, true);
  assert.ok(Math.abs((c.taskArithmetic.perSkill.os.ratio ?? 0) - 0.62 / 0.9) < 1e-12);
  // An expert that scores 0 on its own skill has no ratio and cannot fail.
  m.curves.db[1].scores.db = 0;
  assert.equal(judgeProbe(m).taskArithmetic.perSkill.db.ratio, null);
  assert.equal(judgeProbe(m).taskArithmetic.perSkill.db.pass, true);
});

test("θ₀ + τ_k/K fails when it keeps less than 0.8 of the expert's own score", () => {
  const m = zooThatMerges();
  m.curves.code[0].scores.code = 0.7; // 0.7 < 0.8 · 0.9 = 0.72
  const c = judgeProbe(m);
  assert.equal(c.share.pass, false);
  assert.deepEqual(
    Object.entries(c.share.perSkill)
      .filter(([, v]) => !v.pass)
      .map(([k]) => k),
    ["code"],
  );
});

test("a pair merge must beat the average and the other expert by more than 2 SE on both skills", () => {
  const m = zooThatMerges();
  // Ahead by 0.05 on os, inside 2 SE (2 · sqrt(0.55 · 0.45 / 100) ≈ 0.0995).
  m.grid[0].points[3].scores.os = 0.55;
  let c = judgeProbe(m);
  assert.equal(c.pairs.pass, false);
  const v = c.pairs.perPair[0];
  assert.equal(v.beats, false);
  const os = v.best?.margins.os;
  assert.ok(os && Math.abs(os.margin - 0.05) < 1e-12);
  assert.ok(Math.abs(os.se - standardError(0.55, N)) < 1e-15);
  assert.equal(os.pass, false);
  assert.equal(v.best?.margins.code.pass, true);

  // The same merge with 1000 problems per skill is ahead by more than 2 SE (≈ 0.031).
  m.problems = { code: 1000, os: 1000, db: 1000 };
  assert.equal(judgeProbe(m).pairs.pass, true);

  // The bar is the other expert when its off-skill score is above the average.
  m.problems = { code: N, os: N, db: N };
  m.grid[0].points[3].scores.os = 0.8;
  m.curves.code[1].scores.os = 0.78;
  c = judgeProbe(m);
  const bar = c.pairs.perPair[0].best?.margins.os;
  assert.equal(bar?.other, 0.78);
  assert.equal(bar?.pass, false);
  assert.equal(c.pairs.pass, false);
});

test("the checks name a point they need and do not have", () => {
  const m = zooThatMerges();
  m.taskArithmetic = m.taskArithmetic.slice(0, 1);
  assert.throws(() => judgeProbe(m), /task arithmetic has no point at λ = 1;/);
  const n = zooThatMerges();
  n.curves.os = n.curves.os.slice(1);
  assert.throws(() => judgeProbe(n), /the curve of os has no point at λ = 1\/3/);
});

test("formatProbe prints every table and each check with its numbers", () => {
  const m = zooThatMerges();
  m.taskArithmetic[1].scores.os = 0.62;
  const base = new Map([["w", Float32Array.of(3, 4)]]);
  const stats = taskVectorStats(base, {
    code: new Map([["w", Float32Array.of(4, 4)]]),
    os: new Map([["w", Float32Array.of(3, 5)]]),
    db: new Map([["w", Float32Array.of(4, 5)]]),
  });
  const r: ProbeResult = {
    dir: "/z",
    dtype: "F16",
    ...m,
    stats,
    checks: judgeProbe(m),
    models: 9,
    seconds: 75,
  };
  const text = formatProbe(r);
  assert.match(text, /9 models scored in 1m15s/);
  assert.match(text, /^\| base\s+\| 0\.30 \| 0\.30 \| 0\.30 \| 0\.300 \|$/m);
  assert.match(text, /^\| code expert\s+\| 0\.90 \| 0\.20 \| 0\.20 \|/m);
  assert.match(text, /^\| os\s+\| 1\/3 \| 0\.30 \| 0\.80 \| 0\.30 \|/m);
  assert.match(text, /λ_code \\ λ_os \| 0\.5 {2,}\| 1/);
  assert.match(text, /^\| 0\.5 +\| 0\.52 \/ 0\.56 \/ 0\.10 \| 0\.40 \/ 0\.85 \/ 0\.00 \|$/m);
  assert.match(text, /^\| 1 +\| 0\.85 \/ 0\.40 \/ 0\.00 \| 0\.80 \/ 0\.80 \/ 0\.00 \|$/m);
  assert.match(text, /λ = 1\/3 is the plain average/);
  assert.match(text, /\[FAIL\] task arithmetic at λ = 1 keeps ≥ 0\.7/);
  assert.match(text, /os 0\.62\/0\.90 = 0\.69 ✗/);
  assert.match(text, /\[PASS\] θ₀ \+ τ_k\/3 keeps ≥ 0\.8/);
  assert.match(text, /SE = sqrt\(p\(1−p\)\/n\)/);
  assert.match(
    text,
    /code\+os: beats at λ = \(1, 1\)\n {4}code 0\.80 vs max\(average 0\.50, other 0\.20\): margin \+0\.30 > 2 SE 0\.08\n/,
  );
  assert.match(
    text,
    /code\+db: none beats; closest λ = \(1, 1\)\n.*\n {4}db {3}0\.50 .*margin \+0\.00 ≤ 2 SE 0\.10$/m,
  );
  assert.match(text, /2 of 3 checks pass/);
  assert.deepEqual(JSON.parse(JSON.stringify(r)), r, "the result is plain JSON data");
});

test("zoo probe refuses bad λ lists and a directory that is not a zoo", async () => {
  assert.deepEqual(parseLambdas("grid", "0.25, 1/3,1"), [0.25, 1 / 3, 1]);
  assert.equal(parseLambdas("grid", undefined), undefined);
  for (const [flag, bad, what] of [
    ["lambdas", "0.5,x", "'x'"],
    ["grid", "0,1", "'0'"],
    ["ta", "1,,2", "''"],
    ["lambdas", "-1", "'-1'"],
    ["grid", "1/0", "'1/0'"],
  ]) {
    await assert.rejects(
      zoo.run({ values: { [flag]: bad }, positionals: ["probe"] }),
      (e: Error) =>
        e instanceof UsageError && e.message.includes(`--${flag}`) && e.message.includes(what),
    );
  }
  await assert.rejects(
    zoo.run({ values: { out: "x" }, positionals: ["probe"] }),
    /--out is an option of zoo build, not of zoo probe/,
  );
  await assert.rejects(zoo.run({ values: { lambdas: "1" }, positionals: ["info"] }), UsageError);
  await assert.rejects(zoo.run({ values: { json: true }, positionals: ["probe"] }), /needs a FILE/);
  const empty = await mkdtemp(join(tmpdir(), "cycleqd-probe-"));
  try {
    await assert.rejects(probeZoo({ dir: empty }), /is not a cycleqd zoo: .*zoo\.json not found/);
    await assert.rejects(probeZoo({ dir: join(empty, "missing") }), /no such directory/);
  } finally {
    await rm(empty, { recursive: true, force: true });
  }
});

test("probeZoo on a two-expert zoo: the shape of the result, and λ = 1 is the expert itself", async (t) => {
  if (!existsSync(join(SHIPPED_ZOO_DIR, CARD_FILE))) {
    t.skip("no zoo shipped in this checkout");
    return;
  }
  // A zoo of the shipped base and two of its experts, scored on 6 opt problems per skill.
  const dir = await mkdtemp(join(tmpdir(), "cycleqd-probe-"));
  const engine = await createLlamaCppEngine({ threads: 1 });
  try {
    const shipped = await readCard(SHIPPED_ZOO_DIR);
    const names = ["code", "os"];
    const models = Object.fromEntries([BASE_NAME, ...names].map((n) => [n, shipped.models[n]]));
    for (const n of Object.keys(models)) {
      await copyFile(modelPath(SHIPPED_ZOO_DIR, shipped, n), join(dir, models[n].file));
    }
    await writeFile(
      join(dir, CARD_FILE),
      JSON.stringify({ ...shipped, skills: names, models }, null, 2),
    );
    const skills = createMiniSkills({ seed: shipped.seed, sizes: { opt: 6 } }).filter((s) =>
      names.includes(s.name),
    );
    const progress: ProbeProgress[] = [];
    const r = await probeZoo({
      dir,
      lambdas: [],
      grid: [1],
      taskArithmetic: [],
      skills,
      engine,
      onProgress: (p) => progress.push(p),
    });

    // λ = 1/K = 1/2 and 1 are always scored: base + 2 curves × 2 + 1 grid point + 2 TA.
    assert.equal(r.models, 8);
    assert.deepEqual(
      progress.map((p) => [p.done, p.total]),
      [1, 2, 3, 4, 5, 6, 7, 8].map((i) => [i, 8]),
    );
    assert.equal(progress[0].model, BASE_NAME);
    assert.equal(progress[1].model, "code λ=0.5");
    assert.equal(progress[5].model, "code+os λ=(1, 1)");
    assert.deepEqual(r.skills, names);
    assert.deepEqual(r.problems, { code: 6, os: 6 });
    assert.equal(r.dtype, shipped.recipe.dtype);
    for (const n of names)
      assert.deepEqual(
        r.curves[n].map((p) => p.lambda),
        [0.5, 1],
      );
    assert.deepEqual(
      r.grid.map((g) => g.experts),
      [["code", "os"]],
    );
    assert.deepEqual(
      r.grid[0].points.map((p) => p.lambdas),
      [[1, 1]],
    );
    assert.deepEqual(
      r.taskArithmetic.map((p) => p.lambda),
      [0.5, 1],
    );
    assert.deepEqual(Object.keys(r.stats.cosines), ["code,os"]);
    assert.ok(r.stats.relative.code > 0);
    for (const p of [...r.curves.code, ...r.taskArithmetic, ...r.grid[0].points]) {
      assert.deepEqual(Object.keys(p.scores), names);
      for (const v of Object.values(p.scores)) assert.ok(v >= 0 && v <= 1);
    }
    assert.equal(typeof r.checks.taskArithmetic.pass, "boolean");
    assert.equal(r.checks.share.lambda, 0.5);
    assert.deepEqual(r.checks.pairs.perPair[0].best?.lambdas, [1, 1]);
    assert.ok(r.seconds > 0);
    assert.deepEqual(JSON.parse(JSON.stringify(r)), r);
    assert.match(formatProbe(r), /code\+os: (beats|none)/);

    // θ₀ + 1·τ_k scores exactly as the expert's own file does, and λ = 0 as the base's.
    const direct = async (name: string) => {
      const m = await engine.loadModel(join(dir, models[name].file));
      try {
        return await skillScores(m, skills, "opt");
      } finally {
        await m.dispose();
      }
    };
    for (const n of names) assert.deepEqual(r.curves[n][1].scores, await direct(n), n);
    assert.deepEqual(r.base, await direct(BASE_NAME));
    assert.ok(r.curves.code[1].scores.code > 0, "the code expert solves some code problems");
  } finally {
    await engine.dispose();
    await rm(dir, { recursive: true, force: true });
  }
});
