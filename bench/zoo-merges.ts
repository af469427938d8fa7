/**
 * Is merging the zoo's experts a real problem? Prints the zoo's table (base and experts ×
 * skills, opt/test), then the plain average and task arithmetic θ₀ + λ Σ τ_k (λ chosen on
 * opt), scored on test, and the acceptance checks: the average loses clearly to each expert
 * on its own skill, and some merge beats the base on two or more skills at once.
 * `node --import tsx bench/zoo-merges.ts [ZOO_DIR] [--unsafe]`.
 */
import { loadavg } from "node:os";
import { resolve } from "node:path";
import { table } from "../src/cli/command.ts";
import { formatCard } from "../src/cli/commands/zoo.ts";
import { createLlamaCppEngine } from "../src/engine/index.ts";
import { createMiniSkills } from "../src/skills/index.ts";
import { resolveRunner } from "../src/skills/runner.ts";
import { judgeZoo, mergeBaselines } from "../src/zoo/baselines.ts";
import { readCard, SHIPPED_ZOO_DIR, scoreRows } from "../src/zoo/index.ts";

const args = process.argv.slice(2);
const unsafe = args.includes("--unsafe");
const dir = resolve(args.find((a) => !a.startsWith("--")) ?? SHIPPED_ZOO_DIR);
const card = await readCard(dir);
console.log(formatCard(card, dir));
console.log("");

const t0 = performance.now();
const skills = createMiniSkills({ seed: card.seed });
const runner = await resolveRunner({ unsafe });
const engine = await createLlamaCppEngine({ threads: 1 });
try {
  const merges = await mergeBaselines({
    dir,
    card,
    skills,
    engine,
    runner,
    log: (l) => console.log(`  ${l}`),
  });
  const { header, rows } = scoreRows(card.skills, merges);
  console.log("\nMerges (λ of task arithmetic chosen on opt):");
  console.log(table(header, rows));
  const verdict = judgeZoo(card, merges);
  console.log("");
  for (const l of verdict.lines) console.log(l);
  console.log(
    `\nmerging is ${verdict.averageLosesToExperts && verdict.mergesAboveBase.length ? "a real but not hopeless problem" : "NOT in the intended regime"} ` +
      `(${((performance.now() - t0) / 1000).toFixed(0)} s, load average ${loadavg()[0].toFixed(1)})`,
  );
} finally {
  await engine.dispose();
}
