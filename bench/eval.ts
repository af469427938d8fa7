/**
 * Grading speed of the miniature skills: every `opt` problem of code, os and db graded with
 * its reference answer, through evaluateSkills with a model that echoes the references (so
 * generation costs nothing), one grader at a time and at the default width. Prints grading
 * time, problems/s and sandbox start-ups/s, and the ratio to the same work run with limits
 * only (no sandbox). With a model (a GGUF path, or the shipped zoo's base by default) it then
 * times a whole evaluation: generation by llama.cpp, likelihood scoring and grading, per
 * split. `node --import tsx bench/eval.ts [seed] [MODEL.gguf]`.
 */
import { existsSync } from "node:fs";
import { availableParallelism, loadavg } from "node:os";
import { join } from "node:path";
import { createLlamaCppEngine } from "../src/engine/index.ts";
import { runSandboxed, runUnsandboxed } from "../src/sandbox/index.ts";
import { evaluateSkills } from "../src/skills/evaluate.ts";
import { createMiniSkills } from "../src/skills/index.ts";
import { defaultConcurrency } from "../src/skills/pool.ts";
import type { Runner, SkillModel } from "../src/skills/types.ts";
import { SHIPPED_ZOO_DIR } from "../src/zoo/index.ts";

const seed = Number(process.argv[2] ?? 1);
const modelArg = process.argv[3] ?? join(SHIPPED_ZOO_DIR, "base.gguf");
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

/** Splits a real model's evaluation into generation, scoring and grading time. */
async function measureModel(path: string) {
  const engine = await createLlamaCppEngine();
  try {
    const model = await engine.loadModel(path);
    console.log(
      `\nmodel ${path} (${engine.info().threads} llama.cpp thread(s), ${model.parallel} sequences)`,
    );
    for (const split of ["opt", "test"] as const) {
      const fresh = createMiniSkills({ seed });
      let genMs = 0;
      let scoreMs = 0;
      let tokens = 0;
      const timed: SkillModel = {
        generate: async (reqs) => {
          const t = performance.now();
          const out = await model.generate(reqs);
          genMs += performance.now() - t;
          tokens += out.reduce((a, g) => a + g.tokens, 0);
          return out;
        },
        score: async (reqs) => {
          const t = performance.now();
          const out = await model.score(reqs);
          scoreMs += performance.now() - t;
          return out;
        },
      };
      const t0 = performance.now();
      const res = await evaluateSkills(timed, fresh, split);
      const total = performance.now() - t0;
      const problems = Object.values(res).reduce((a, r) => a + r.details.length, 0);
      const perSkill = Object.entries(res)
        .map(([k, r]) => `${k} ${r.score.toFixed(2)}`)
        .join(", ");
      console.log(
        `${split.padEnd(4)}: ${problems} problems in ${(total / 1000).toFixed(2)} s ` +
          `(generation ${(genMs / 1000).toFixed(2)} s, ${((tokens * 1000) / genMs).toFixed(0)} tokens/s; ` +
          `likelihoods ${(scoreMs / 1000).toFixed(2)} s, overlapping grading); ${perSkill}; ` +
          `load average ${loadavg()[0].toFixed(1)}`,
      );
    }
  } finally {
    await engine.dispose();
  }
}

if (existsSync(modelArg)) await measureModel(modelArg);
else
  console.log(
    `\nno model at ${modelArg}: build the zoo or pass MODEL.gguf to time a real evaluation`,
  );
