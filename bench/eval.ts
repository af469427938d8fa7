/**
 * Grading speed of the miniature skills: every `opt` problem of code, os and db graded with
 * its reference answer, through evaluateSkills with a model that echoes the references (so
 * generation costs nothing), one grader at a time and at the default width. Prints grading
 * time, problems/s and sandbox start-ups/s, and the ratio to the same work run with limits
 * only (no sandbox). `node --import tsx bench/eval.ts [seed]`.
 */
import { availableParallelism } from "node:os";
import { evaluateSkills } from "../src/skills/evaluate.ts";
import { createMiniSkills } from "../src/skills/index.ts";
import { defaultConcurrency } from "../src/skills/pool.ts";
import { runSandboxed, runUnsandboxed } from "../src/skills/sandbox/index.ts";
import type { Runner, SkillModel } from "../src/skills/types.ts";

const seed = Number(process.argv[2] ?? 1);
const skills = createMiniSkills({ seed });
const references = new Map<string, string>();
for (const s of skills) for (const p of s.problems("opt")) references.set(s.format(p), p.reference);

/** Answers every prompt with its reference; the bench measures grading only. */
const echo: SkillModel = {
  generate: async (reqs) =>
    reqs.map((r) => ({ text: references.get(r.prompt) ?? "", tokens: 0, finish: "stop" as const })),
  score: async () => [],
};

function counting(run: Runner): { run: Runner; starts: () => number } {
  let n = 0;
  return {
    run: (o) => {
      n++;
      return run(o);
    },
    starts: () => n,
  };
}

async function measure(label: string, base: Runner, concurrency: number) {
  // A fresh set of skills each time, so that no reference output is cached.
  const fresh = createMiniSkills({ seed });
  const c = counting(base);
  const t0 = performance.now();
  const res = await evaluateSkills(echo, fresh, "opt", {
    runner: c.run,
    concurrency,
    likelihood: false,
  });
  const s = (performance.now() - t0) / 1000;
  const problems = Object.values(res).reduce((a, r) => a + r.details.length, 0);
  const passed = Object.values(res).reduce((a, r) => a + r.details.filter((d) => d.pass).length, 0);
  const perSkill = Object.entries(res)
    .map(([k, r]) => `${k} ${r.score.toFixed(2)}`)
    .join(", ");
  console.log(
    `${label.padEnd(12)} width ${String(concurrency).padStart(2)}: ${problems} problems in ${s.toFixed(2)} s, ` +
      `${(problems / s).toFixed(1)} problems/s, ${(c.starts() / s).toFixed(1)} start-ups/s ` +
      `(${c.starts()} runs; passed ${passed}/${problems}: ${perSkill})`,
  );
  return problems / s;
}

console.log(`cores: ${availableParallelism()}; seed ${seed}; opt split of code, os, db`);
const widths = [1, defaultConcurrency()];
for (const w of widths) {
  const sandboxed = await measure("sandbox", runSandboxed, w);
  const plain = await measure("limits only", runUnsandboxed, w);
  console.log(`  sandbox / limits only at width ${w}: ${(sandboxed / plain).toFixed(2)}x`);
}
