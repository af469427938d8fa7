import { resolve } from "node:path";
import {
  BASE_NAME,
  buildZoo,
  formatSeconds,
  readCard,
  SHIPPED_ZOO_DIR,
  scoreRows,
  type ZooCard,
} from "../../zoo/index.ts";
import { type Command, table, UsageError } from "../command.ts";

function parseSeed(v: unknown): number {
  const seed = v === undefined ? 1 : Number(v);
  if (!(Number.isInteger(seed) && seed >= 0)) {
    throw new UsageError(`--seed must be a non-negative integer, got ${String(v)}`);
  }
  return seed;
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
  summary: "Build the embedded zoo of tiny models, or show what a built zoo scores.",
  usage:
    "build [--out DIR] [--seed N] [--replay-share X] [--force] [--unsafe]\n       cycleqd zoo info [--json] [DIR]",
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

Options:
  --out DIR   where to build (default ./zoo)
  --seed N    seeds the data, the weights and the skills' problems (default 1)
  --replay-share X
              share of each expert's examples that replay the base's own answers to the
              other skills' prompts, in [0, 1) (default 0): experts then keep the base's
              partial skills instead of forgetting them
  --force     build again even when DIR already holds this zoo
  --unsafe    grade model output without a sandbox when none works (dangerous)
  --json      print the card as JSON`,
  options: {
    out: { type: "string" },
    seed: { type: "string" },
    "replay-share": { type: "string" },
    unsafe: { type: "boolean" },
    force: { type: "boolean" },
    json: { type: "boolean" },
  },
  async run(args) {
    const [sub, ...rest] = args.positionals;
    if (sub === "build") {
      if (rest.length)
        throw new UsageError(`zoo build takes no positional arguments; use --out DIR`);
      if (args.values.json) throw new UsageError("--json is an option of zoo info");
      const outDir = resolve(String(args.values.out ?? "zoo"));
      const seed = parseSeed(args.values.seed);
      const share = args.values["replay-share"];
      const replayShare = share === undefined ? 0 : Number(share);
      if (!(replayShare >= 0 && replayShare < 1)) {
        throw new UsageError(`--replay-share must be a number in [0, 1), got ${String(share)}`);
      }
      const t0 = performance.now();
      const { card } = await buildZoo({
        outDir,
        seed,
        recipe: { expert: { replayShare } },
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
      const { out, seed, unsafe, force } = args.values;
      if (out || seed || unsafe || force || args.values["replay-share"]) {
        throw new UsageError(
          "--out, --seed, --replay-share, --force and --unsafe are options of zoo build",
        );
      }
      const dir = rest.length ? resolve(rest[0]) : SHIPPED_ZOO_DIR;
      const card = await readCard(dir);
      console.log(args.values.json ? JSON.stringify(card, null, 2) : formatCard(card, dir));
      return 0;
    }
    throw new UsageError(
      sub === undefined
        ? "expects a subcommand: build or info"
        : `unknown subcommand '${sub}'; use build or info`,
    );
  },
};
