import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readlinkSync,
  realpathSync,
  rmdirSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UID_BLOCK, uidBase } from "./uids.ts";

/**
 * The sandbox's root: a directory of empty mount points, symlinks and a few generated /etc
 * files, made once per process. Each sandbox mounts the host's /usr (and friends) read-only
 * onto it inside its own mount namespace, so a start costs one `mount -a` and nothing is
 * copied. Mounts made there stay private to the namespace and vanish with it.
 */
export interface Skeleton {
  /** 0700 directory holding `root` and the fstab files; never visible inside. */
  base: string;
  /** What the sandbox sees as /. */
  root: string;
  /** Host paths bound read-only at the same path. */
  binds: string[];
  /** Device nodes bound from the host's /dev. */
  devices: string[];
  /** Top-level names that lead into the read-only system (usr, bin, lib64, ...). */
  systemTop: string[];
}

const PREFIX = "cycleqd-sandbox-";
const SYSTEM_TOP = ["usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32"];
/** The least of /etc that dynamic linking, Debian's alternatives and Python need. */
const ETC_PIECES = ["ld.so.cache", "alternatives", "localtime"];
const DEVICES = ["null", "zero", "full", "random", "urandom"];
const WORK_INODES = 16384;
const TMP_INODES = 4096;

let skeleton: Skeleton | null = null;

export function getSkeleton(): Skeleton {
  skeleton ??= buildSkeleton();
  return skeleton;
}

function dir(p: string): void {
  mkdirSync(p, { mode: 0o755 });
  chmodSync(p, 0o755);
}

function file(p: string, content: string): void {
  writeFileSync(p, content, { mode: 0o644 });
  chmodSync(p, 0o644);
}

function copyLink(from: string, to: string): void {
  symlinkSync(readlinkSync(from), to);
}

function buildSkeleton(): Skeleton {
  sweepStale();
  const base = mkdtempSync(join(tmpdir(), `${PREFIX}${process.pid}-`));
  chmodSync(base, 0o700);
  const root = join(base, "root");
  dir(root);
  const binds: string[] = [];
  const systemTop: string[] = [];
  for (const name of SYSTEM_TOP) {
    const host = `/${name}`;
    const st = lstatOrNull(host);
    if (!st) continue;
    systemTop.push(name);
    if (st.isSymbolicLink()) copyLink(host, join(root, name));
    else if (st.isDirectory()) {
      dir(join(root, name));
      binds.push(host);
    }
  }
  for (const name of ["work", "tmp", "proc", "dev", "etc"]) dir(join(root, name));

  const etc = join(root, "etc");
  const pieces = [...ETC_PIECES, ...readdirSync("/etc").filter((n) => /^python3(\.\d+)?$/.test(n))];
  for (const name of pieces) {
    const host = `/etc/${name}`;
    const st = lstatOrNull(host);
    if (!st) continue;
    if (st.isSymbolicLink()) copyLink(host, join(etc, name));
    else if (st.isDirectory()) {
      dir(join(etc, name));
      binds.push(host);
    } else if (st.isFile()) {
      file(join(etc, name), "");
      binds.push(host);
    }
  }
  // Generated rather than bound: the host's user and host names stay private.
  const users = Array.from({ length: UID_BLOCK }, (_, i) => uidBase + i);
  file(
    join(etc, "passwd"),
    [
      "root:x:0:0:root:/root:/usr/sbin/nologin",
      "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin",
      ...users.map((u, i) => `sandbox${i}:x:${u}:${u}:sandbox:/work:/bin/sh`),
      "",
    ].join("\n"),
  );
  file(
    join(etc, "group"),
    ["root:x:0:", "nogroup:x:65534:", ...users.map((u, i) => `sandbox${i}:x:${u}:`), ""].join("\n"),
  );
  file(join(etc, "nsswitch.conf"), "passwd: files\ngroup: files\nhosts: files\n");
  file(join(etc, "hosts"), "127.0.0.1 localhost\n::1 localhost\n");
  file(join(etc, "hostname"), "sandbox\n");

  const dev = join(root, "dev");
  const devices: string[] = [];
  for (const name of DEVICES) {
    if (!existsSync(`/dev/${name}`)) continue;
    file(join(dev, name), "");
    devices.push(`/dev/${name}`);
  }
  symlinkSync("/proc/self/fd", join(dev, "fd"));
  symlinkSync("/proc/self/fd/0", join(dev, "stdin"));
  symlinkSync("/proc/self/fd/1", join(dev, "stdout"));
  symlinkSync("/proc/self/fd/2", join(dev, "stderr"));
  // POSIX shared memory lands in the size-capped /tmp.
  symlinkSync("/tmp", join(dev, "shm"));

  process.once("exit", () => removeTree(base));
  return { base, root, binds, devices, systemTop };
}

function lstatOrNull(p: string) {
  try {
    return lstatSync(p);
  } catch {
    return null;
  }
}

/**
 * Makes mount points for extra read-only host paths and returns their real paths, leaving
 * out those the system binds already show.
 */
export function extraBinds(paths: string[]): string[] {
  const sk = getSkeleton();
  const out: string[] = [];
  for (const p of paths) {
    let real: string;
    try {
      real = realpathSync(p);
    } catch {
      throw new Error(`sandbox: readOnlyPaths entry "${p}" does not exist on this host`);
    }
    const top = real.split("/")[1] ?? "";
    if (sk.systemTop.includes(top)) continue;
    if (real === "/" || ["work", "tmp", "proc", "dev", "etc"].includes(top))
      throw new Error(`sandbox: readOnlyPaths entry "${p}" resolves to ${real}, which is reserved`);
    const target = join(sk.root, real);
    if (!existsSync(target)) {
      const parts = real.split("/").filter(Boolean);
      let cur = sk.root;
      for (const part of parts.slice(0, -1)) {
        cur = join(cur, part);
        if (!existsSync(cur)) dir(cur);
      }
      if (statSync(real).isDirectory()) dir(target);
      else file(target, "");
    }
    out.push(real);
  }
  return out;
}

/** fstab escapes blanks and backslashes as octal. */
function esc(p: string): string {
  return p.replace(/[\s\\]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, "0")}`);
}

const fstabs = new Map<string, string>();

/** The fstab that `mount -a` reads for one slot's uid and sizes; written once, then reused. */
export function fstabFor(
  uid: number,
  workdirBytes: number,
  tmpBytes: number,
  extras: string[],
  readOnlyRoot: boolean,
) {
  const key = `${uid}:${workdirBytes}:${tmpBytes}:${readOnlyRoot}:${extras.join("\0")}`;
  const known = fstabs.get(key);
  if (known) return known;
  const sk = getSkeleton();
  const r = sk.root;
  // Rootless, the skeleton's files belong to the user, whose uid the program shares: they
  // would be writable, and shared between sandboxes, so the skeleton is bound read-only
  // onto itself first. (Root mode leaves it as it is: root-owned, and 0755 or 0644.)
  const lines = readOnlyRoot ? [`${esc(r)} ${esc(r)} none bind,ro,nosuid,nodev 0 0`] : [];
  for (const b of [...sk.binds, ...extras])
    lines.push(`${esc(b)} ${esc(r + b)} none bind,ro,nosuid,nodev 0 0`);
  for (const d of sk.devices) lines.push(`${d} ${esc(r + d)} none bind,nosuid,noexec 0 0`);
  lines.push(`proc ${esc(`${r}/proc`)} proc nosuid,nodev,noexec 0 0`);
  lines.push(
    `tmpfs ${esc(`${r}/tmp`)} tmpfs size=${tmpBytes},nr_inodes=${TMP_INODES},mode=1777,nosuid,nodev 0 0`,
  );
  lines.push(
    `tmpfs ${esc(`${r}/work`)} tmpfs size=${workdirBytes},nr_inodes=${WORK_INODES},mode=0755,uid=${uid},gid=${uid},nosuid,nodev 0 0`,
  );
  const path = join(sk.base, `fstab-${fstabs.size}`);
  file(path, `${lines.join("\n")}\n`);
  fstabs.set(key, path);
  return path;
}

/** The same layout as bubblewrap arguments, under /s so that the sandbox can chroot there. */
export function bwrapMountArgs(workdirBytes: number, tmpBytes: number, extras: string[]) {
  const sk = getSkeleton();
  const args = ["--ro-bind", sk.root, "/s"];
  for (const b of [...sk.binds, ...extras]) args.push("--ro-bind", b, `/s${b}`);
  for (const d of sk.devices) args.push("--dev-bind", d, `/s${d}`);
  args.push("--proc", "/s/proc");
  args.push("--size", String(tmpBytes), "--perms", "1777", "--tmpfs", "/s/tmp");
  args.push("--size", String(workdirBytes), "--perms", "0755", "--tmpfs", "/s/work");
  // The launcher's own programs (chroot, sh) resolve through these.
  for (const name of sk.systemTop) args.push("--symlink", `s/${name}`, `/${name}`);
  return args;
}

/**
 * Removes a skeleton without following links or entering anything mounted on it: in the
 * host's namespace it holds only empty mount points, but never trust that blindly.
 */
export function removeTree(path: string): void {
  let rootDev: number;
  try {
    rootDev = lstatSync(path).dev;
  } catch {
    return;
  }
  const walk = (p: string): void => {
    const st = lstatOrNull(p);
    if (!st) return;
    if (st.isDirectory()) {
      if (st.dev !== rootDev) return;
      for (const name of readdirSync(p)) walk(join(p, name));
      try {
        rmdirSync(p);
      } catch {}
    } else {
      try {
        unlinkSync(p);
      } catch {}
    }
  };
  walk(path);
}

/** Skeletons of processes that died without cleaning up. */
function sweepStale(): void {
  const dirPath = tmpdir();
  let names: string[];
  try {
    names = readdirSync(dirPath);
  } catch {
    return;
  }
  for (const name of names) {
    const m = name.startsWith(PREFIX) ? /^(\d+)-/.exec(name.slice(PREFIX.length)) : null;
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || alive(pid)) continue;
    const p = join(dirPath, name);
    const st = lstatOrNull(p);
    if (st?.isDirectory() && st.uid === process.getuid?.()) removeTree(p);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}
