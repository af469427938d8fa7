import { writeFile } from "node:fs/promises";
import { starterConfig } from "../../run/config.ts";
import { type Command, UsageError } from "../command.ts";

export const init: Command = {
  name: "init",
  summary: "Write a commented starter run config.",
  usage: "[FILE] [--force]",
  help: `
Writes FILE (default cycleqd.yaml) with every run setting at its default and a comment
on each. Edit it, then start the search with \`cycleqd run FILE\`.

Options:
  --force   overwrite FILE if it exists`,
  options: { force: { type: "boolean" } },
  async run(args) {
    if (args.positionals.length > 1) throw new UsageError("expects at most one FILE");
    const file = args.positionals[0] ?? "cycleqd.yaml";
    try {
      await writeFile(file, starterConfig(), { flag: args.values.force ? "w" : "wx" });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EEXIST") {
        throw new UsageError(`${file} exists; choose another name or pass --force`);
      }
      throw e;
    }
    console.log(`Wrote ${file}. Start the search with: cycleqd run ${file}`);
    return 0;
  },
};
