import { pickMode, rootlessSetupHint, usernsFix } from "./mode.ts";
import { pickTool, runSandboxed, toolProblems } from "./run.ts";
import { findTools, PACKAGE_OF, type Tools } from "./tools.ts";
import type { SandboxMode, SandboxTool } from "./types.ts";

export interface SandboxCheck {
  ok: boolean;
  tool: SandboxTool;
  mode: SandboxMode;
  problems: string[];
  /** What to run or change; empty when ok. */
  fix: string;
}

export interface CheckOptions {
  /** "auto" (default) checks the tool runSandboxed would pick. */
  tool?: SandboxTool | "auto";
  /** "auto" (default) checks the mode runSandboxed would pick. */
  mode?: SandboxMode | "auto";
  /** Programs the skills need inside the sandbox (default python3, bash). */
  require?: string[];
  /** Passed on to the probe, for interpreters outside /usr. */
  readOnlyPaths?: string[];
  env?: Record<string, string>;
}

/**
 * Builds one real sandbox and checks from inside that it holds: not root on the host (root
 * mode: a uid of its own; rootless mode: the user's own uid, root only inside), no
 * capabilities, no_new_privs, no network interface but lo, nothing of the host's files,
 * a writable /work, and the programs the skills need. Callers refuse to grade when !ok,
 * unless the user explicitly opts into runUnsandboxed. A sandbox that cannot be built is
 * reported in `problems`, not thrown; throws only for a `require` entry that is not a plain
 * program name or an invalid mode.
 */
export async function checkSandbox(opts: CheckOptions = {}): Promise<SandboxCheck> {
  const needed = opts.require ?? ["python3", "bash"];
  for (const r of needed)
    if (!/^[A-Za-z0-9._+-]+$/.test(r))
      throw new Error(`checkSandbox: require entry "${r}" is not a plain program name`);
  const mode = pickMode(opts.mode);
  let tool: SandboxTool;
  const problems: string[] = [];
  try {
    tool = pickTool(opts.tool, mode);
  } catch (e) {
    // Report on the tool that was asked for, else on the default one.
    const asked = opts.tool && opts.tool !== "auto" ? opts.tool : process.env.CYCLEQD_SANDBOX_TOOL;
    tool = asked === "bwrap" ? "bwrap" : "unshare";
    const p = toolProblems(tool, mode);
    problems.push(...(p.length ? p : [(e as Error).message]));
  }
  if (problems.length === 0) problems.push(...(await probe(tool, mode, needed, opts)));
  if (mode === "rootless" && problems.some((p) => /setup failed/.test(p))) {
    const hint = rootlessSetupHint();
    if (hint) problems.push(hint);
  }
  return { ok: problems.length === 0, tool, mode, problems, fix: fixFor(tool, mode, problems) };
}

const PROBE = `
id -u
echo "uidmap $(cat /proc/self/uid_map)"
grep -E '^(CapEff|CapBnd|NoNewPrivs):' /proc/self/status
echo "shmall $(cat /proc/sys/kernel/shmall)"
echo "ifaces $(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\\n' ' ')"
echo "top $(ls -A / | tr '\\n' ' ')"
echo probe > /work/probe && echo "work ok"
for c in "$@"; do command -v "$c" >/dev/null 2>&1 && echo "has $c" || echo "lacks $c"; done
`;

async function probe(
  tool: SandboxTool,
  mode: SandboxMode,
  needed: string[],
  opts: CheckOptions,
): Promise<string[]> {
  const problems: string[] = [];
  let out: string;
  try {
    const r = await runSandboxed({
      tool,
      mode,
      command: ["/bin/sh", "-c", PROBE, "probe", ...needed],
      timeoutMs: 10_000,
      readOnlyPaths: opts.readOnlyPaths,
      env: opts.env,
    });
    out = r.stdout;
    if (r.exitCode !== 0) problems.push(`probe failed: ${r.reason}: ${r.stderr.trim()}`);
  } catch (e) {
    return [(e as Error).message];
  }
  const lines = out.split("\n");
  const field = (k: string) => lines.find((l) => l.startsWith(k))?.split(/\s+/)[1];
  // The uid the probe has on the host, through the user namespace's map.
  const inside = Number(lines[0]);
  const map = (lines.find((l) => l.startsWith("uidmap")) ?? "").split(/\s+/).slice(1).map(Number);
  const host =
    map.length === 3 && inside >= map[0] && inside < map[0] + map[2]
      ? map[1] + inside - map[0]
      : NaN;
  if (!(host > 0))
    problems.push(
      `probe ran as host uid ${host} (uid ${lines[0]} inside), not as an unprivileged uid`,
    );
  if (mode === "rootless" && host !== process.getuid?.())
    problems.push(`probe ran as host uid ${host}, not as the user's own uid`);
  if (!/^0+$/.test(field("CapEff:") ?? "")) problems.push("probe kept capabilities");
  if (!/^0+$/.test(field("CapBnd:") ?? "")) problems.push("probe kept a capability bounding set");
  if (field("NoNewPrivs:") !== "1") problems.push("probe lacks no_new_privs");
  const ifaces = (lines.find((l) => l.startsWith("ifaces")) ?? "").split(/\s+/).slice(1);
  if (ifaces.some((i) => i && i !== "lo"))
    problems.push(`probe sees network interfaces: ${ifaces.join(" ")}`);
  const top = (lines.find((l) => l.startsWith("top")) ?? "").split(/\s+/).slice(1);
  for (const leak of ["root", "home", "mnt", "var", "run", "srv", "opt"])
    if (top.includes(leak) && !(opts.readOnlyPaths ?? []).some((p) => p.startsWith(`/${leak}`)))
      problems.push(`probe sees the host's /${leak}`);
  if (!lines.includes("work ok")) problems.push("probe could not write /work");
  const shmall = Number(field("shmall"));
  if (!(shmall > 0 && shmall <= 2 ** 20))
    problems.push(`probe sees System V shared memory uncapped (shmall ${field("shmall")})`);
  for (const r of needed)
    if (!lines.includes(`has ${r}`))
      problems.push(`${r} not found inside the sandbox (it sees the host's /usr only)`);
  return problems;
}

function fixFor(tool: SandboxTool, mode: SandboxMode, problems: string[]): string {
  if (problems.length === 0) return "";
  const fixes: string[] = [];
  const tools = findTools();
  const pkgs = new Set<string>();
  for (const [name, pkg] of Object.entries(PACKAGE_OF))
    if (!tools[name as keyof Tools] && problems.some((p) => p.startsWith(`${name} not found`)))
      pkgs.add(pkg);
  for (const p of problems) {
    const m = /^(\S+) not found inside the sandbox/.exec(p);
    if (m) pkgs.add(m[1] === "python3" ? "python3" : m[1]);
  }
  if (pkgs.size) fixes.push(`apt-get install -y ${[...pkgs].sort().join(" ")}`);
  if (problems.some((p) => p.includes("not found inside the sandbox")))
    fixes.push(
      "an interpreter installed outside /usr (pyenv, conda) is visible only when passed as " +
        "readOnlyPaths with its bin dir on PATH through env",
    );
  fixes.push(...usernsFix(problems));
  if (problems.some((p) => p.includes("the root mode needs root")))
    fixes.push(
      "run as root, or leave the mode on auto to use the rootless mode as an ordinary user",
    );
  if (problems.some((p) => p.includes("the rootless mode is for ordinary users")))
    fixes.push("leave the mode on auto: as root it is the root mode");
  if (
    mode === "root" &&
    problems.some((p) => /setup failed|Operation not permitted|Permission denied/.test(p))
  )
    fixes.push(
      "this machine refuses to create namespaces or mounts: in Docker, run the container with " +
        "--privileged (or --cap-add SYS_ADMIN --security-opt seccomp=unconfined " +
        "--security-opt apparmor=unconfined)",
    );
  if (problems.some((p) => p.startsWith("probe") && !p.includes("failed")))
    fixes.push(`the ${tool} sandbox is not isolating here; report this with the problems above`);
  if (
    mode === "rootless" &&
    !problems.some((p) => p.includes("apparmor")) &&
    problems.some((p) => /setup failed|Operation not permitted|Permission denied/.test(p))
  )
    fixes.push(
      "this machine refuses user namespaces to ordinary users: check the sysctls " +
        "kernel.unprivileged_userns_clone (1), user.max_user_namespaces (> 0) and, on Ubuntu, " +
        "kernel.apparmor_restrict_unprivileged_userns; in a container, the runtime's seccomp " +
        "profile may block unshare(CLONE_NEWUSER); or run the grader as root",
    );
  if (fixes.length === 0) fixes.push("see the problems above");
  return fixes.join("; ");
}
