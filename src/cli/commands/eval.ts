import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { createLlamaCppEngine } from "../../engine/index.ts";
import { evaluateSkills } from "../../skills/evaluate.ts";
import { createMiniSkills } from "../../skills/index.ts";
import { SPLITS, type Split } from "../../skills/types.ts";
import { modelPath, readCard, SHIPPED_ZOO_DIR } from "../../zoo/index.ts";
import { type Command, table, UsageError } from "../command.ts";

/** A file path, or the name of a model of the shipped zoo ("base", "code", ...). */
async function resolveModel(arg: string): Promise<string> {
  if (existsSync(arg) || arg.includes("/") || arg.endsWith(".gguf")) return arg;
  const card = await readCard(SHIPPED_ZOO_DIR).catch(() => null);
  if (card?.models[arg]) return modelPath(SHIPPED_ZOO_DIR, card, arg);
  return arg;
}

export const evalCommand: Command = {
  name: "eval",
  summary: "Score a GGUF model on the miniature skills (code, os, db).",
  usage: "MODEL.gguf [--skills code,os,db] [--split opt|test] [--json] [--details FILE] [--unsafe]",
  help: `
Generates an answer to every problem of the chosen split, runs each answer in the sandbox
and prints the pass rate per skill and the mean log-likelihood of the reference answers.
MODEL is a .gguf file, or the name of a model of the shipped zoo (base, code, os, db).

Options:
  --skills LIST   comma-separated skills to score (default code,os,db)
  --split NAME    opt or test (default test); pretrain and train are the training data
  --seed N        seed of the skills' problems (default 1, the zoo's)
  --limit N       at most N problems per skill
  --json          print the results as JSON
  --details FILE  write one JSON line per problem (skill, id, prompt, output, pass, reason)
  --unsafe        run model output without a sandbox when none works (dangerous)`,
  options: {
    skills: { type: "string" },
    split: { type: "string" },
    seed: { type: "string" },
    limit: { type: "string" },
    json: { type: "boolean" },
    details: { type: "string" },
    unsafe: { type: "boolean" },
  },
  async run(args) {
    if (args.positionals.length !== 1) throw new UsageError("expects exactly one MODEL.gguf");
    const split = String(args.values.split ?? "test") as Split;
    if (!SPLITS.includes(split)) {
      throw new UsageError(`--split must be one of ${SPLITS.join(", ")}, got ${split}`);
    }
    const seed = args.values.seed === undefined ? 1 : Number(args.values.seed);
    if (!(Number.isInteger(seed) && seed >= 0)) {
      throw new UsageError(`--seed must be a non-negative integer, got ${args.values.seed}`);
    }
    let limit: number | undefined;
    if (args.values.limit !== undefined) {
      limit = Number(args.values.limit);
      if (!(Number.isInteger(limit) && limit > 0)) {
        throw new UsageError(`--limit must be a positive integer, got ${args.values.limit}`);
      }
    }
    const all = createMiniSkills({ seed });
    const wanted = String(args.values.skills ?? all.map((s) => s.name).join(","))
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean);
    for (const w of wanted) {
      if (!all.some((s) => s.name === w)) {
        throw new UsageError(
          `unknown skill '${w}'; choose from ${all.map((s) => s.name).join(", ")}`,
        );
      }
    }
    if (wanted.length === 0) throw new UsageError("--skills is empty");
    const skills = all.filter((s) => wanted.includes(s.name));

    const path = await resolveModel(args.positionals[0]);
    const engine = await createLlamaCppEngine();
    try {
      const model = await engine.loadModel(path);
      const t0 = performance.now();
      const res = await evaluateSkills(model, skills, split, {
        unsafe: Boolean(args.values.unsafe),
        limit,
      });
      const seconds = (performance.now() - t0) / 1000;
      if (args.values.details) {
        const lines = skills.flatMap((s) =>
          res[s.name].details.map((d) => JSON.stringify({ skill: s.name, ...d })),
        );
        await writeFile(String(args.values.details), lines.length ? `${lines.join("\n")}\n` : "");
      }
      const summary = Object.fromEntries(
        skills.map((s) => [
          s.name,
          {
            score: res[s.name].score,
            passed: res[s.name].details.filter((d) => d.pass).length,
            problems: res[s.name].details.length,
            meanLogLikelihood: res[s.name].meanLogLikelihood,
          },
        ]),
      );
      if (args.values.json) {
        console.log(
          JSON.stringify({ model: path, split, seed, seconds, skills: summary }, null, 2),
        );
      } else {
        console.log(`${path}: ${split} split, seed ${seed}, ${seconds.toFixed(1)} s`);
        console.log(
          table(
            ["skill", "pass rate", "passed", "mean log-lik"],
            Object.entries(summary).map(([k, v]) => [
              k,
              v.score.toFixed(3),
              `${v.passed}/${v.problems}`,
              Number.isNaN(v.meanLogLikelihood) ? "-" : v.meanLogLikelihood.toFixed(3),
            ]),
          ),
        );
      }
      return 0;
    } finally {
      await engine.dispose();
    }
  },
};
