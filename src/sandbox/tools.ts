import { accessSync, constants } from "node:fs";

/**
 * Host programs the sandbox launcher runs, by absolute path. Root-owned stages never look
 * anything up on PATH: a PATH the caller chose could point into the writable work dir.
 */
export interface Tools {
  prlimit: string | null;
  setpriv: string | null;
  unshare: string | null;
  mount: string | null;
  chroot: string | null;
  sh: string | null;
  env: string | null;
  tar: string | null;
  chown: string | null;
  bwrap: string | null;
}

/** Where Debian/Ubuntu put them, merged /usr or not. /usr/local is left out on purpose. */
const DIRS = ["/usr/bin", "/usr/sbin", "/bin", "/sbin"];

function find(name: string): string | null {
  for (const d of DIRS) {
    const p = `${d}/${name}`;
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {}
  }
  return null;
}

let cached: Tools | null = null;

export function findTools(): Tools {
  cached ??= {
    prlimit: find("prlimit"),
    setpriv: find("setpriv"),
    unshare: find("unshare"),
    mount: find("mount"),
    chroot: find("chroot"),
    sh: find("sh"),
    env: find("env"),
    tar: find("tar"),
    chown: find("chown"),
    bwrap: find("bwrap"),
  };
  return cached;
}

/** Which apt package provides each tool, for fix messages. */
export const PACKAGE_OF: Record<keyof Tools, string> = {
  prlimit: "util-linux",
  setpriv: "util-linux",
  unshare: "util-linux",
  mount: "mount",
  chroot: "coreutils",
  sh: "dash",
  env: "coreutils",
  tar: "tar",
  chown: "coreutils",
  bwrap: "bubblewrap",
};

/** Tools every variant needs, then the ones each launcher adds. */
export const COMMON_TOOLS: (keyof Tools)[] = ["prlimit", "setpriv", "chroot", "sh", "env", "tar"];
export const UNSHARE_TOOLS: (keyof Tools)[] = ["unshare", "mount"];
export const BWRAP_TOOLS: (keyof Tools)[] = ["bwrap", "chown"];
