import { existsSync, statSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import {
  BASE_NAME,
  buildZoo,
  formatProbe,
  formatSeconds,
  probeZoo,
  readCard,
  SHIPPED_ZOO_DIR,
  scoreRows,
  type ZooCard,
} from "../../zoo/index.ts";
import { type Command, type ParsedArgs, table, UsageError } from "../command.ts";

function parseSeed(v: unknown): number {
  const seed = v === undefined ? 1 : Number(v);
  if (!(Number.isInteger(seed) && seed >= 0)) {
    throw new UsageError(`--seed must be a non-negative integer, got ${String(v)}`);
  }
  return seed;
}

/** "0.25,1/3,0.5" → [0.25, 1/3, 0.5]: positive numbers or fractions, comma-separated. */
export function parseLambdas(flag: string, v: unknown): number[] | undefined {
  if (v === undefined) return undefined;
  const text = String(v);
  const items = text.split(",").map((x) => x.trim());
  return items.map((item) => {
    const frac = /^([^/]+)\/([^/]+)$/.exec(item);
    const x = frac ? Number(frac[1]) / Number(frac[2]) : item === "" ? Number.NaN : Number(item);
    if (!(Number.isFinite(x) && x > 0)) {
      throw new UsageError(
        `--${flag} takes positive numbers separated by commas (e.g. 0.25,1/3,0.5); ` +
          `'${item}' in '${text}' is not one`,
      );
    }
    return x;
  });
}

/** Which subcommand each option belongs to. */
const OPTION_OF: Record<string, string[]> = {
  out: ["build"],
  seed: ["build"],
  "replay-share": ["build"],
  force: ["build"],
  unsafe: ["build", "probe"],
  json: ["info", "probe"],
  lambdas: ["probe"],
  grid: ["probe"],
  ta: ["probe"],
};

function onlyOptionsOf(sub: string, values: Record<string, unknown>): void {
  for (const [name, v] of Object.entries(values)) {
    const owners = OPTION_OF[name] ?? [];
    if (v !== undefined && v !== false && !owners.includes(sub)) {
      throw new UsageError(
        `--${name} is an option of ${owners.map((o) => `zoo ${o}`).join(" and ")}, not of zoo ${sub}`,
      );
    }
  }
}

/** The 4×3 table of a card: base and experts × skills, opt and test. */
export function formatCard(card: ZooCard, dir: string): string {
  const names = [BASE_NAME, ...card.skills];
  const { header, rows } = scoreRows(
    card.skills,
    names.map((n) => ({ name: n, scores: card.models[n].scores })),
  );
  const files = names.map((n) => card.models[n]);
  const bytes = files.reduce((a, m) => a + m.bytes, 0);
  const tv = card.taskVectors;
  const lines = [
    `zoo in ${dir}: seed ${card.seed}, ${card.config.nLayers} layers × ${card.config.dim} wide, ` +
      `${names.length} models, ${(bytes / 1e6).toFixed(1)} MB (${card.recipe.dtype})`,
    "",
    "Pass rate per skill (opt / test split):",
    table(header, rows),
    "",
    "Task vectors ‖τ‖/‖θ₀‖: " +
      card.skills.map((s) => `${s} ${tv.relative[s]?.toFixed(3) ?? "-"}`).join(", "),
    `Cosines: ${Object.entries(tv.cosines)
      .map(([k, v]) => `${k.replace(",", "·")} ${v.toFixed(2)}`)
      .join(", ")}`,
    `Build: ${formatSeconds(card.build.seconds)} (${Object.entries(card.build.stages)
      .map(([k, s]) => `${k} ${formatSeconds(s.seconds)}`)
      .join(", ")})`,
  ];
  return lines.join("\n");
}

export const zoo: Command = {
  name: "zoo",
  summary: "Build the embedded zoo, show what a built zoo scores, or probe how its experts merge.",
  usage:
    "build [--out DIR] [--seed N] [--replay-share X] [--force] [--unsafe]\n" +
    "       cycleqd zoo info [--json] [DIR]\n" +
    "       cycleqd zoo probe [DIR] [--json FILE] [--lambdas L,..] [--grid L,..] [--ta L,..] [--unsafe]",
  help: `
zoo build   trains a tiny LLaMA base (copying, then weak partial skill on code, os and db),
            and one expert per skill fine-tuned from it, then scores all four on the opt and
            test splits and writes DIR/{base,code,os,db}.gguf and DIR/zoo.json. Takes about
            20 minutes on two cores; with the defaults the files are byte for byte the
            shipped ones. A killed build resumes where it stopped when run again
            with the same options (its checkpoints live in DIR/.build); a finished zoo of
            the same settings is left as it is unless --force is given.
zoo info    prints the card of a built zoo: each model's pass rate per skill, the task
            vectors' sizes and cosines, and the build time. DIR defaults to the zoo shipped
            with cycleqd.
zoo probe   asks whether the zoo leaves a merging search room to win, on the opt split: each
            expert's task vector alone, θ₀ + λτ_k, scored on every skill; every pair of
            experts on a (λ_a, λ_b) grid; task arithmetic θ₀ + λΣτ_k; the task vectors'
            cosines and sizes; then three checks, each PASS or FAIL with its numbers:
              1. task arithmetic at λ = 1 keeps ≥ 0.7 of each expert's own score;
              2. θ₀ + τ_k/K (the expert's share of the plain average) keeps ≥ 0.8 of S_k(θ_k);
              3. some merge m of a pair (a, b) beats, on both s = a and s = b,
                 max(S_s(average), S_s(the pair's other expert)) by more than 2 SE,
                 SE = sqrt(p(1−p)/n) with p = S_s(m) and n the opt problems of s.
            Curves and task arithmetic always include λ = 1/K and 1 (the checks need them).
            The defaults score 74 models for three experts, a few seconds each on two cores
            (16 minutes in all on a busy machine); shorter λ lists take less.
            DIR defaults to the zoo shipped with cycleqd.

Options:
  --out DIR   where to build (default ./zoo)
  --seed N    seeds the data, the weights and the skills' problems (default 1)
  --replay-share X
              share of each expert's examples that replay the base's own answers to the
              other skills' prompts, in [0, 1) (default 0.5): experts then keep the base's
              partial skills instead of forgetting them (0: the skill's own data only)
  --force     build again even when DIR already holds this zoo
  --unsafe    grade model output without a sandbox when none works (dangerous)
  --json      zoo info: print the card as JSON
  --json FILE zoo probe: also write the whole result as JSON to FILE
  --lambdas L,..
              λ of each expert's curve (default 0.25,1/3,0.5,0.75,1,1.25,1.5)
  --grid L,.. λ_a and λ_b of the pairwise grid (default 0.25,0.5,0.75,1)
  --ta L,..   λ of task arithmetic (default 1/3,0.5,0.75,1)`,
  options: {
    out: { type: "string" },
    seed: { type: "string" },
    "replay-share": { type: "string" },
    unsafe: { type: "boolean" },
    force: { type: "boolean" },
    json: { type: "boolean" },
    lambdas: { type: "string" },
    grid: { type: "string" },
    ta: { type: "string" },
  },
  async run(args) {
    const [sub, ...rest] = args.positionals;
    if (sub === "build") {
      if (rest.length)
        throw new UsageError(`zoo build takes no positional arguments; use --out DIR`);
      onlyOptionsOf(sub, args.values);
      const outDir = resolve(String(args.values.out ?? "zoo"));
      const seed = parseSeed(args.values.seed);
      const share = args.values["replay-share"];
      const replayShare = share === undefined ? undefined : Number(share);
      if (replayShare !== undefined && !(replayShare >= 0 && replayShare < 1)) {
        throw new UsageError(`--replay-share must be a number in [0, 1), got ${String(share)}`);
      }
      const t0 = performance.now();
      const { card } = await buildZoo({
        outDir,
        seed,
        recipe: replayShare === undefined ? {} : { expert: { replayShare } },
        unsafe: Boolean(args.values.unsafe),
        force: Boolean(args.values.force),
        onProgress: (p) => console.log(`[${p.stage}] ${p.message}`),
      });
      console.log(`\nbuilt in ${formatSeconds((performance.now() - t0) / 1000)} (this run)\n`);
      console.log(formatCard(card, outDir));
      return 0;
    }
    if (sub === "info") {
      if (rest.length > 1) throw new UsageError("zoo info takes at most one DIR");
      onlyOptionsOf(sub, args.values);
      const dir = rest.length ? resolve(rest[0]) : SHIPPED_ZOO_DIR;
      const card = await readCard(dir);
      console.log(args.values.json ? JSON.stringify(card, null, 2) : formatCard(card, dir));
      return 0;
    }
    if (sub === "probe") return probe(args);
    throw new UsageError(
      sub === undefined
        ? "expects a subcommand: build, info or probe"
        : `unknown subcommand '${sub}'; use build, info or probe`,
    );
  },
};

async function probe(args: ParsedArgs): Promise<number> {
  onlyOptionsOf("probe", args.values);
  // --json is a flag shared with zoo info, so its FILE arrives as the last positional.
  const rest = args.positionals.slice(1);
  const json = args.values.json ? rest.pop() : undefined;
  if (args.values.json && json === undefined) {
    throw new UsageError("--json needs a FILE to write the result to");
  }
  if (rest.length > 1) {
    throw new UsageError(`zoo probe takes at most one DIR, got ${rest.join(" ")}`);
  }
  const lambdas = parseLambdas("lambdas", args.values.lambdas);
  const grid = parseLambdas("grid", args.values.grid);
  const taskArithmetic = parseLambdas("ta", args.values.ta);
  const dir = rest.length ? resolve(rest[0]) : SHIPPED_ZOO_DIR;
  const jsonPath = json === undefined ? undefined : resolve(json);
  if (jsonPath !== undefined) {
    if (existsSync(jsonPath) && statSync(jsonPath).isDirectory()) {
      throw new UsageError(
        `--json FILE: ${jsonPath} is a directory (write: zoo probe [DIR] --json FILE)`,
      );
    }
    if (!existsSync(dirname(jsonPath))) {
      throw new UsageError(`--json FILE: the directory ${dirname(jsonPath)} does not exist`);
    }
  }
  const result = await probeZoo({
    dir,
    lambdas,
    grid,
    taskArithmetic,
    unsafe: Boolean(args.values.unsafe),
    onProgress: (p) => {
      if (p.done === 1) console.log(`probing the zoo in ${dir}: ${p.total} models on opt`);
      const scores = Object.entries(p.scores).map(([s, v]) => `${s} ${v.toFixed(2)}`);
      console.log(`${p.done}/${p.total} ${p.model}: ${scores.join(" ")}`);
    },
  });
  console.log(`\n${formatProbe(result)}`);
  if (jsonPath !== undefined) {
    await writeFile(jsonPath, `${JSON.stringify(result, null, 2)}\n`);
    console.log(`\nwrote ${jsonPath}`);
  }
  return 0;
}
