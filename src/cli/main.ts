import { type Command, formatHelp, parseCommandArgs, UsageError } from "./command.ts";
import { aggregate, exportCmd } from "./commands/aggregate.ts";
import { demo } from "./commands/demo.ts";
import { doctor } from "./commands/doctor.ts";
import { evalCommand } from "./commands/eval.ts";
import { init } from "./commands/init.ts";
import { inspect } from "./commands/inspect.ts";
import { merge } from "./commands/merge.ts";
import { report, serve } from "./commands/report.ts";
import { resume } from "./commands/resume.ts";
import { run } from "./commands/run.ts";
import { status } from "./commands/status.ts";
import { worker } from "./commands/worker.ts";
import { zoo } from "./commands/zoo.ts";

const commands: Command[] = [
  demo,
  init,
  run,
  resume,
  status,
  worker,
  report,
  serve,
  aggregate,
  exportCmd,
  merge,
  zoo,
  evalCommand,
  inspect,
  doctor,
];

function mainHelp(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    "cycleqd — evolve merges of expert LLMs into one model with several skills (CycleQD).",
    "",
    "Usage: cycleqd COMMAND [options]",
    "",
    "Commands:",
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    "",
    "Run `cycleqd COMMAND --help` for a command's options.",
  ].join("\n");
}

/** Runs the CLI and returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    console.log(mainHelp());
    return name === undefined ? 2 : 0;
  }
  if (name === "--version") {
    const pkg = await import("../../package.json", { with: { type: "json" } });
    console.log(pkg.default.version);
    return 0;
  }
  const cmd = commands.find((c) => c.name === name);
  if (!cmd) {
    console.error(`cycleqd: unknown command '${name}'.\n\n${mainHelp()}`);
    return 2;
  }
  if (rest.includes("--help") || rest.includes("-h")) {
    console.log(formatHelp(cmd));
    return 0;
  }
  try {
    return await cmd.run(parseCommandArgs(cmd, rest));
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`cycleqd ${name}: ${e.message}`);
      return 2;
    }
    const err = e as Error;
    console.error(`cycleqd ${name}: ${err.message}`);
    if (process.env.CYCLEQD_DEBUG) console.error(err.stack);
    return 1;
  }
}
