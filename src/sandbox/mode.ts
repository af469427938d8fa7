import { readFileSync } from "node:fs";
import { release } from "node:os";
import { SandboxError, type SandboxMode } from "./types.ts";

/**
 * The two ways a sandbox gets its privileges:
 * - root: the grader runs as root; each sandbox runs its program as a uid of its own.
 * - rootless: the grader is an ordinary user; each sandbox is a user namespace in which that
 *   user is root only for building the mounts, and the program runs with no capabilities.
 *   Separate PID namespaces keep sandboxes apart, which is what distinct uids were for.
 */
export function pickMode(requested?: SandboxMode | "auto"): SandboxMode {
  const want = requested && requested !== "auto" ? requested : process.env.CYCLEQD_SANDBOX_MODE;
  if (
    want !== undefined &&
    want !== "" &&
    want !== "auto" &&
    want !== "root" &&
    want !== "rootless"
  )
    throw new Error(
      `sandbox: mode (or CYCLEQD_SANDBOX_MODE) must be root, rootless or auto, got "${want}"`,
    );
  if (want === "root" || want === "rootless") return want;
  return isRoot() ? "root" : "rootless";
}

export const isRoot = (): boolean => process.getuid?.() === 0;

function readSysctl(path: string): string | null {
  try {
    return readFileSync(path, "utf8").trim();
  } catch {
    return null;
  }
}

/** The user-namespace sysctls that decide whether the rootless mode can work. */
export const USERNS_SYSCTLS = {
  /** Debian's and older Ubuntu's switch; absent on kernels without the patch. */
  clone: "/proc/sys/kernel/unprivileged_userns_clone",
  max: "/proc/sys/user/max_user_namespaces",
  /** Ubuntu 23.10+: unprivileged user namespaces get no capabilities unless AppArmor allows. */
  apparmor: "/proc/sys/kernel/apparmor_restrict_unprivileged_userns",
} as const;

/**
 * Why a mode cannot work on this host, from what can be read without trying; empty when
 * nothing is known to stand in the way (a real start is the final word).
 */
export function modeProblems(mode: SandboxMode): string[] {
  if (process.platform !== "linux") return ["the sandbox needs Linux namespaces"];
  if (mode === "root") {
    return isRoot()
      ? []
      : ["the root mode needs root: it switches each program to a uid of its own"];
  }
  const problems: string[] = [];
  if (isRoot())
    problems.push(
      "the rootless mode is for ordinary users: as root, the root mode gives every program " +
        "a uid of its own instead of root's",
    );
  if (readSysctl(USERNS_SYSCTLS.clone) === "0")
    problems.push(
      "unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone = 0)",
    );
  if (readSysctl(USERNS_SYSCTLS.max) === "0")
    problems.push("user namespaces are disabled (user.max_user_namespaces = 0)");
  // Before 5.14 RLIMIT_NPROC counted every process of the user, host-wide, so a sandbox's
  // process limit would count the user's own shells and browsers.
  const [major, minor] = release().split(".").map(Number);
  if (major < 5 || (major === 5 && minor < 14))
    problems.push(
      `kernel ${release()} counts a sandbox's processes together with all of the user's ` +
        "(per-namespace process limits came in Linux 5.14)",
    );
  return problems;
}

/** Commands that lift what keeps user namespaces from working, for fix messages. */
export function usernsFix(problems: string[]): string[] {
  const fixes: string[] = [];
  if (problems.some((p) => p.includes("unprivileged_userns_clone")))
    fixes.push(
      "enable unprivileged user namespaces: sudo sysctl -w kernel.unprivileged_userns_clone=1 " +
        "(to keep it: echo kernel.unprivileged_userns_clone=1 | sudo tee /etc/sysctl.d/90-userns.conf)",
    );
  if (problems.some((p) => p.includes("max_user_namespaces")))
    fixes.push(
      "allow user namespaces: sudo sysctl -w user.max_user_namespaces=15000 " +
        "(to keep it: echo user.max_user_namespaces=15000 | sudo tee /etc/sysctl.d/90-userns.conf)",
    );
  if (problems.some((p) => p.includes("apparmor_restrict_unprivileged_userns")))
    fixes.push(APPARMOR_FIX);
  if (problems.some((p) => p.includes("per-namespace process limits")))
    fixes.push("upgrade to Linux 5.14 or newer, or run the grader as root");
  return fixes;
}

export const APPARMOR_FIX =
  "AppArmor restricts unprivileged user namespaces here (Ubuntu 23.10 and later): allow them " +
  "for unshare with a profile, " +
  "printf 'abi <abi/4.0>,\\ninclude <tunables/global>\\nprofile cycleqd-unshare /usr/bin/unshare flags=(unconfined) {\\n  userns,\\n}\\n' " +
  "| sudo tee /etc/apparmor.d/cycleqd-unshare && sudo apparmor_parser -r /etc/apparmor.d/cycleqd-unshare " +
  "(or, for every program: sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0)";

/**
 * Why a rootless start that failed may have failed: the AppArmor restriction lets unshare
 * make the namespace but takes its capabilities, so mounting fails later with EPERM.
 */
export function rootlessSetupHint(): string | null {
  return readSysctl(USERNS_SYSCTLS.apparmor) === "1"
    ? "kernel.apparmor_restrict_unprivileged_userns = 1: unprivileged user namespaces get no capabilities"
    : null;
}

export function assertModeUsable(mode: SandboxMode): void {
  const p = modeProblems(mode);
  if (p.length) throw new SandboxError(`sandbox (${mode} mode) cannot run here: ${p.join("; ")}`);
}
