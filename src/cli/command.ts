import { type ParseArgsConfig, parseArgs } from "node:util";

/** One `cycleqd` subcommand: its help text, its options and what it does. */
export interface Command {
  name: string;
  summary: string;
  /** Usage line(s) after `cycleqd NAME`, e.g. "FILE [--json]". */
  usage: string;
  /** Longer help: what it does, each option explained. */
  help: string;
  options: NonNullable<ParseArgsConfig["options"]>;
  run(args: ParsedArgs): Promise<number>;
}

export interface ParsedArgs {
  values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  positionals: string[];
}

/** A mistake in what the user typed: printed without a stack trace, exit code 2. */
export class UsageError extends Error {}

export function parseCommandArgs(cmd: Command, argv: string[]): ParsedArgs {
  try {
    return parseArgs({ args: argv, options: cmd.options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError(`${(e as Error).message}\nSee: cycleqd ${cmd.name} --help`);
  }
}

export function formatHelp(cmd: Command): string {
  return `Usage: cycleqd ${cmd.name} ${cmd.usage}\n\n${cmd.summary}\n\n${cmd.help.trim()}\n`;
}

/** Left-aligned text table with a header rule. */
export function table(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => c.padEnd(widths[i]))
      .join("  ")
      .trimEnd();
  return [
    line(cells[0]),
    widths.map((w) => "-".repeat(w)).join("  "),
    ...cells.slice(1).map(line),
  ].join("\n");
}
