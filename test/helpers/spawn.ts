import { type SpawnOptions, spawn } from "node:child_process";

export interface Exit {
  code: number | null;
  /** The signal that ended the program, if one did. */
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs a program and collects its output and exit code. */
export function runProcess(
  command: string,
  args: string[],
  opts: SpawnOptions = {},
): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const p = spawn(command, args, { ...opts, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    p.stdout?.on("data", (d) => {
      stdout += d;
    });
    p.stderr?.on("data", (d) => {
      stderr += d;
    });
    p.on("error", reject);
    p.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** Runs node with `args` from the repository root and collects its output and exit code. */
export function runNode(args: string[]): Promise<Exit> {
  return runProcess(process.execPath, args);
}
