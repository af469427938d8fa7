import { spawn } from "node:child_process";

export interface Exit {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs node with `args` from the repository root and collects its output and exit code. */
export function runNode(args: string[]): Promise<Exit> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, args);
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (d) => {
      stdout += d;
    });
    p.stderr.on("data", (d) => {
      stderr += d;
    });
    p.on("exit", (code) => resolve({ code, stdout, stderr }));
  });
}
