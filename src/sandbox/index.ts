/**
 * Runs untrusted programs (what a model wrote) in a throw-away sandbox: new mount, PID,
 * network, IPC, UTS and cgroup namespaces; the host's /usr (and /bin, /lib*, a few /etc
 * files) read-only and nothing else of the host; size-capped private /work and /tmp; no
 * network; no capabilities and no_new_privs; rlimits; a wall clock whose kill takes the
 * whole namespace down. It knows nothing of skills: skills, `doctor` and benches use it.
 *
 * Two modes (mode.ts), one interface:
 * - root: started as root, each running sandbox's program gets a uid of its own;
 * - rootless: started as an ordinary user, each sandbox is also a user namespace in which
 *   the user is root only while the mounts are built; the program then runs with the
 *   user's uid and no capabilities, kept apart from other sandboxes by its PID namespace.
 *
 * Needs: Linux, and util-linux (unshare, setpriv, prlimit), mount, coreutils (chroot, env)
 * and tar, all on a stock Debian/Ubuntu; rootless also unprivileged user namespaces and
 * Linux 5.14+. bubblewrap is optional: set CYCLEQD_SANDBOX_TOOL=bwrap (or pass
 * tool: "bwrap") to use it instead of unshare.
 *
 * Interpreters: the sandbox sees the distribution's /usr/bin/python3 (apt-get install
 * python3) and anything else under /usr, /usr/local included. An interpreter installed
 * elsewhere (pyenv under /root, conda under /opt) becomes visible when its prefix is passed
 * in readOnlyPaths and its bin dir put on PATH through env, e.g.
 *   { readOnlyPaths: ["/root/.pyenv/versions/3.11.7"],
 *     env: { PATH: "/root/.pyenv/versions/3.11.7/bin:/usr/bin:/bin" } }
 *
 * Not capped: the memory of a sandbox as a whole. The address-space limit holds per
 * process, so maxProcesses × memoryBytes (plus /work, /tmp and System V IPC, each capped)
 * bounds it; a memory cgroup would be needed for a tighter total.
 */
export {
  type BatchRunner,
  type BatchRunnerOptions,
  type BatchStats,
  createBatchRunner,
} from "./batch.ts";
export { type CheckOptions, checkSandbox, type SandboxCheck } from "./check.ts";
export { pickMode } from "./mode.ts";
export { runSandboxed, type SandboxRunOptions } from "./run.ts";
export {
  DEFAULTS as SANDBOX_DEFAULTS,
  SandboxError,
  type SandboxMode,
  type SandboxOptions,
  type SandboxResult,
  type SandboxTool,
} from "./types.ts";
export { runUnsandboxed } from "./unsandboxed.ts";
