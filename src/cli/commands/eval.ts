import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { createLlamaCppEngine } from "../../engine/index.ts";
import { loadConfig, type RunConfig } from "../../run/config.ts";
import { buildSkills } from "../../run/skill-sources.ts";
import { readChatFormatter } from "../../skills/chat.ts";
import { evaluateSkills } from "../../skills/evaluate.ts";
import { createMiniSkills } from "../../skills/index.ts";
import type { Skill } from "../../skills/types.ts";
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
  summary: "Score a GGUF model on the miniature skills, or on a run config's skills.",
  usage:
    "MODEL.gguf [--config FILE] [--skills LIST] [--split opt|test] [--json] [--details FILE] [--unsafe]",
  help: `
Generates an answer to every problem of the chosen split, runs each answer in the sandbox
and prints the pass rate per skill and the mean log-likelihood of the reference answers.
MODEL is a .gguf file, or the name of a model of the shipped zoo (base, code, os, db).
Problems that cannot be graded here (a failed setup, say) are counted apart and left out
of the pass rate; data records left out as malformed are listed.

Options:
  --config FILE   score on the skills of this run config (its data files, built-in
                  skills, seed and split sizes) instead of the miniature skills
  --skills LIST   comma-separated skills to score (default: all of them)
  --strict        with --config: a malformed data record fails the command (default: it
                  is left out and listed)
  --raw           raw prompts even if the model has a chat template (default: its template,
                  when its GGUF has one; with --config, the config's chat section decides)
  --split NAME    opt or test (default test); pretrain and train are the training data
  --seed N        seed of the skills' problems (default 1, the zoo's)
  --limit N       at most N problems per skill
  --json          print the results as JSON
  --details FILE  write one JSON line per problem (skill, id, prompt, output, pass, reason)
  --unsafe        run model output without a sandbox when none works (dangerous)`,
  options: {
    config: { type: "string" },
    skills: { type: "string" },
    raw: { type: "boolean" },
    strict: { type: "boolean" },
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
    const config = args.values.config ? await loadConfig(String(args.values.config)) : null;
    const all = config
      ? buildSkills(args.values.strict ? strictly(config) : config)
      : createMiniSkills({ seed });
    for (const s of all) reportSkipped(s);
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
    const chatConfig = config?.chat ?? { template: args.values.raw ? "none" : "auto" };
    const chat =
      chatConfig.template === "none"
        ? null
        : await readChatFormatter(path, { system: chatConfig.system });
    // A config brings its engine settings (context size, threads) and its likelihood choice.
    const engine = await createLlamaCppEngine(config ? { ...config.engine } : {});
    try {
      const model = await engine.loadModel(path);
      const t0 = performance.now();
      const res = await evaluateSkills(model, skills, split, {
        unsafe: Boolean(args.values.unsafe),
        limit,
        chat,
        likelihood: config ? config.likelihood : true,
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
            problems: res[s.name].details.length - res[s.name].ungradable,
            ungradable: res[s.name].ungradable,
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
            ["skill", "pass rate", "passed", "not gradable", "mean log-lik"],
            Object.entries(summary).map(([k, v]) => [
              k,
              v.score.toFixed(3),
              `${v.passed}/${v.problems}`,
              String(v.ungradable),
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

/** Lists a loaded skill's left-out records (the first ten, then a count) on stderr. */
export function reportSkipped(skill: Skill): void {
  const skipped = skill.skipped ?? [];
  if (skipped.length === 0) return;
  for (const r of skipped.slice(0, 10)) console.error(`skipped ${r.file}:${r.line}: ${r.reason}`);
  if (skipped.length > 10) console.error(`... and ${skipped.length - 10} more`);
  console.error(
    `skill ${skill.name}: ${skipped.length} malformed record(s) left out (strict: true makes them fatal)`,
  );
}

/** The config with every data-file skill strict: a malformed record is an error. */
function strictly(config: RunConfig): RunConfig {
  const skillSources = Object.fromEntries(
    Object.entries(config.skillSources).map(([k, v]) => [k, { ...v, strict: true }]),
  );
  return { ...config, skillSources };
}
