/**
 * Runs part of this checkout as an ordinary user, for the rootless sandbox's tests and
 * bench when they are started as root. The checkout may sit where that user cannot read
 * (under /root, say), so the needed sources and tsx are copied to a readable directory.
 */
import { execFileSync } from "node:child_process";
import {
  chmodSync,
  chownSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { type Exit, runProcess } from "./spawn.ts";

/** The account .ci/run creates for these tests; CYCLEQD_TEST_USER names another. */
export const TEST_USER = process.env.CYCLEQD_TEST_USER || "cycleqd-test";

export interface Account {
  name: string;
  uid: number;
  gid: number;
}

export function findAccount(name = TEST_USER): Account | null {
  try {
    const uid = Number(execFileSync("id", ["-u", name], { encoding: "utf8" }).trim());
    const gid = Number(execFileSync("id", ["-g", name], { encoding: "utf8" }).trim());
    return uid > 0 ? { name, uid, gid } : null;
  } catch {
    return null;
  }
}

const ROOT = new URL("../../", import.meta.url).pathname;

/** Copies a package and, recursively, its dependencies from this checkout's node_modules. */
function copyPackage(name: string, into: string, done: Set<string>): void {
  if (done.has(name)) return;
  done.add(name);
  const require = createRequire(join(ROOT, "package.json"));
  let dir: string;
  try {
    dir = dirname(require.resolve(`${name}/package.json`));
  } catch {
    return; // an optional dependency for another platform
  }
  cpSync(dir, join(into, "node_modules", name), { recursive: true, dereference: true });
  const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
  for (const dep of Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies }))
    copyPackage(dep, into, done);
}

export interface Sandbox {
  /** The copy's root, readable by everyone. */
  dir: string;
  /** A home directory owned by the account. */
  home: string;
  dispose(): void;
}

/** A readable copy of `paths` (relative to the checkout) with tsx, and a home for `who`. */
export function readableCopy(paths: string[], who: Account): Sandbox {
  const dir = mkdtempSync(join(tmpdir(), "cycleqd-unprivileged-"));
  chmodSync(dir, 0o755);
  for (const p of paths) cpSync(join(ROOT, p), join(dir, p), { recursive: true });
  writeFileSync(join(dir, "package.json"), JSON.stringify({ type: "module" }));
  copyPackage("tsx", dir, new Set());
  // The account's own checkout, as a user's would be; and a home of its own.
  execFileSync("chown", ["-R", `${who.uid}:${who.gid}`, dir]);
  const home = join(dir, "home");
  mkdirSync(home, { mode: 0o700 });
  chownSync(home, who.uid, who.gid);
  return { dir, home, dispose: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Runs `node --import tsx ARGS` in `copy` as `who`, with a clean environment. */
export function runAsUser(
  who: Account,
  copy: Sandbox,
  args: string[],
  env: Record<string, string> = {},
): Promise<Exit> {
  return runProcess(
    "setpriv",
    [
      `--reuid=${who.uid}`,
      `--regid=${who.gid}`,
      "--clear-groups",
      "--",
      process.execPath,
      "--import",
      "tsx",
      ...args,
    ],
    {
      cwd: copy.dir,
      env: { PATH: "/usr/local/bin:/usr/bin:/bin", HOME: copy.home, LANG: "C.UTF-8", ...env },
    },
  );
}
