import {
  closeSync,
  constants,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { exitReason, signalReason, supervisorKill } from "./explain.ts";
import { limitArgs } from "./run.ts";
import { removeTree } from "./skeleton.ts";
import { launch } from "./supervise.ts";
import { findTools } from "./tools.ts";
import type { SandboxOptions, SandboxResult } from "./types.ts";
import { resolveOptions } from "./validate.ts";

/**
 * UNSAFE: runs the program as the current user with the host's whole file system and
 * network in reach. Only the resource limits, the wall-clock timeout and the output caps
 * apply; the work dir is a fresh temporary directory (its size is not capped). For the
 * explicit opt-in path when checkSandbox() fails; never a silent fallback.
 */
export async function runUnsandboxed(opts: SandboxOptions): Promise<SandboxResult> {
  const o = resolveOptions(opts);
  const tools = findTools();
  if (!tools.prlimit || !tools.env)
    throw new Error("runUnsandboxed needs prlimit (util-linux) and env (coreutils)");
  const work = mkdtempSync(join(tmpdir(), "cycleqd-unsandboxed-"));
  try {
    for (const f of o.files) {
      const p = join(work, f.path);
      mkdirSync(dirname(p), { recursive: true });
      const exec = f.data[0] === 0x23 && f.data[1] === 0x21;
      writeFileSync(p, f.data, { mode: exec ? 0o755 : 0o644 });
    }
    const env = { ...o.env, HOME: o.env.HOME === "/work" ? work : o.env.HOME };
    const outcome = await launch({
      argv: [
        ...limitArgs(o, tools),
        tools.env,
        "-i",
        ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
        ...o.command,
      ],
      env: {},
      cwd: work,
      stdin: o.stdin,
      fd3: null,
      onFd4: null,
      timeoutMs: o.timeoutMs,
      maxOutputBytes: o.maxOutputBytes,
      // No namespace reaps what it leaves behind: its process group is killed instead.
      killGroupOnExit: true,
    });
    let outputTruncated = outcome.outputKilled;
    const files: Record<string, string> = {};
    for (const c of o.collect) {
      for (const [rel, text, cut] of readTree(work, c, o.maxOutputBytes)) {
        files[rel] = text;
        outputTruncated ||= cut;
      }
    }
    const base = {
      stdout: outcome.stdout.toString("utf8"),
      stderr: outcome.stderr.toString("utf8"),
      timedOut: outcome.timedOut,
      outputTruncated,
      durationMs: outcome.durationMs,
      tool: "none" as const,
      mode: "none" as const,
      uid: -1,
      leftover: 0,
      ...(o.collect.length ? { files } : {}),
    };
    const killed = supervisorKill(outcome, o);
    if (killed) return { ...base, ...killed };
    if (outcome.signal)
      return {
        ...base,
        exitCode: null,
        signal: outcome.signal,
        reason: signalReason(outcome.signal, o, base.stderr),
      };
    const code = outcome.code ?? 1;
    const reason = exitReason(code, base.stderr, o);
    return { ...base, exitCode: code, signal: null, ...(reason ? { reason } : {}) };
  } finally {
    removeTree(work);
  }
}

/** Regular files at or under work/rel, never following symlinks, at most `max` bytes each. */
function readTree(work: string, rel: string, max: number): [string, string, boolean][] {
  const out: [string, string, boolean][] = [];
  const parts = rel.split("/");
  for (let i = 1; i < parts.length; i++) {
    const st = lstatOrNull(join(work, ...parts.slice(0, i)));
    if (!st?.isDirectory()) return out;
  }
  const visit = (r: string) => {
    const p = join(work, r);
    const st = lstatOrNull(p);
    if (st?.isDirectory()) for (const n of readdirSync(p)) visit(`${r}/${n}`);
    else if (st?.isFile()) {
      const fd = openSync(p, constants.O_RDONLY | constants.O_NOFOLLOW);
      try {
        const buf = Buffer.alloc(Math.min(st.size, max));
        const n = readSync(fd, buf, 0, buf.length, 0);
        out.push([r, buf.subarray(0, n).toString("utf8"), st.size > max]);
      } finally {
        closeSync(fd);
      }
    }
  };
  visit(rel);
  return out;
}

function lstatOrNull(p: string) {
  try {
    return lstatSync(p);
  } catch {
    return null;
  }
}
