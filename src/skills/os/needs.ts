/**
 * What an AgentBench OS problem needs that the sandbox cannot give. AgentBench runs each
 * problem as root in an Ubuntu container; here a problem runs as an unprivileged user whose
 * only writable places are its home directory (/work) and /tmp, with the host's /usr and a
 * few /etc files read-only, and no /root, /home, /var or network. A problem whose scripts
 * need more than that cannot be graded here, whatever the answer: it is reported as such,
 * never counted as a failure.
 *
 * A failing setup script is found out when it runs (see session.ts); this finds the rest
 * from the problem's text before anything runs: example solutions, check and start scripts
 * that write outside the writable places, manage users, install packages or reach the
 * network, and paths that do not exist here at all.
 */

/** Top-level directories that do not exist in the sandbox. */
const ABSENT = ["root", "home", "var", "opt", "srv", "mnt", "media", "boot", "snap"];

const ABSENT_RE = new RegExp(String.raw`(?<![\w.~$/-])/(${ABSENT.join("|")})(?![\w.+-])`, "g");

/** Commands that need root (users, groups, mounts, services). */
const ROOT_COMMANDS = new Set([
  "useradd",
  "adduser",
  "userdel",
  "deluser",
  "usermod",
  "groupadd",
  "addgroup",
  "groupdel",
  "groupmod",
  "gpasswd",
  "chpasswd",
  "passwd",
  "visudo",
  "su",
  "sudo",
  "chown",
  "chgrp",
  "newgrp",
  "runuser",
  "chroot",
  "mount",
  "umount",
  "systemctl",
  "service",
  "setcap",
  "sysctl",
  "modprobe",
]);

const PACKAGE_MANAGERS = new Set(["apt", "apt-get", "aptitude", "dpkg", "snap", "yum", "dnf"]);
const LANGUAGE_INSTALLERS = new Set(["pip", "pip3", "npm", "gem", "conda"]);
const NETWORK = new Set(["curl", "wget", "ping", "ssh", "scp", "nc", "ftp", "telnet"]);

/** Commands whose every path argument is written to. */
const WRITES_ALL = new Set(["touch", "mkdir", "rm", "rmdir", "tee", "chmod", "truncate"]);
/** Commands whose last path argument is written to. */
const WRITES_LAST = new Set(["cp", "mv", "ln", "install"]);

/** Absolute paths a sandboxed command may write. */
function writable(path: string): boolean {
  return /^\/(tmp|work)(\/|$)|^\/dev\/(null|stdout|stderr|fd\/)|^\/proc\/self\//.test(path);
}

/** Rough words of a shell command line: quotes removed, `$(`, backquotes and parentheses split off. */
function words(line: string): string[] {
  return line
    .replace(/["']/g, "")
    .replace(/\$\(|`|[()]/g, " ")
    .split(/\s+/)
    .filter((w) => w !== "");
}

/** Simple commands of a bash script, roughly: split at newlines, ;, &, | and keywords. */
function simpleCommands(code: string): string[][] {
  const out: string[][] = [];
  const noComments = code.replace(/(^|\s)#.*$/gm, "$1");
  for (const part of noComments.split(/[\n;&|]+/)) {
    let ws = words(part);
    while (
      ws.length &&
      /^(then|do|else|elif|if|while|until|time|exec|nohup|!|xargs|\{|\})$/.test(ws[0])
    )
      ws = ws.slice(1);
    while (ws.length && /^\w+=/.test(ws[0])) ws = ws.slice(1);
    if (ws.length) out.push(ws);
  }
  return out;
}

/** Paths written by redirections (`> /x`, `>>/x`, `2> /x`, `&>/x`). */
function redirectTargets(code: string): string[] {
  const out: string[] = [];
  for (const m of code.matchAll(/(?:^|[^<>&])(?:\d+|&)?>{1,2}\|?\s*["']?([^\s"';|&)<>]+)/g)) {
    out.push(m[1]);
  }
  return out;
}

/** The part of a path before any expansion: "/usr/$((i)).log" is "/usr/". */
function literal(path: string): string {
  return path.replace(/[$*?{[`].*$/, "");
}

/** The absent top-level directory a path lies in, if any. */
function absentTop(path: string): string | undefined {
  const m = /^\/([^/]+)/.exec(path);
  return m && ABSENT.includes(m[1]) ? `/${m[1]}` : undefined;
}

function bashNeeds(code: string, add: (why: string) => void): void {
  const written = (path: string) => {
    const top = absentTop(path);
    if (top) add(`needs ${top} (absent here)`);
    else if (path.startsWith("/") && !writable(path))
      add(`writes ${literal(path)} (read-only here)`);
  };
  for (const target of redirectTargets(code)) written(target);
  for (const ws of simpleCommands(code)) {
    for (const w of ws) {
      const top = absentTop(w.replace(/^[^/]*=/, ""));
      if (top) add(`needs ${top} (absent here)`);
    }
    const [cmd0, ...args0] = ws;
    const name = cmd0.replace(/^.*\//, "");
    if (ROOT_COMMANDS.has(name)) {
      add(`runs ${name} (needs root)`);
      if (name !== "sudo") continue;
    }
    const [cmd, ...args] =
      name === "sudo" ? args0.filter((a) => !a.startsWith("-")) : [name, ...args0];
    if (!cmd) continue;
    const base = cmd.replace(/^.*\//, "");
    if (ROOT_COMMANDS.has(base)) add(`runs ${base} (needs root)`);
    const sub = args.find((a) => !a.startsWith("-"));
    if (PACKAGE_MANAGERS.has(base) && (sub === "install" || args.includes("-i")))
      add(`installs packages (${base} install)`);
    if (LANGUAGE_INSTALLERS.has(base) && sub === "install")
      add(`installs packages (${base} install)`);
    if (NETWORK.has(base) || (base === "git" && sub === "clone")) add(`uses the network (${base})`);
    if (WRITES_ALL.has(base)) {
      for (const a of args) if (a.startsWith("/")) written(a);
    } else if (WRITES_LAST.has(base)) {
      const last = args.filter((a) => !a.startsWith("-")).at(-1);
      if (last?.startsWith("/")) written(last);
    }
  }
}

/** Absent paths named in a Python script's string literals. */
function pythonNeeds(code: string, add: (why: string) => void): void {
  for (const m of code.matchAll(/["'](\/[^"'\s]*)/g)) {
    const top = absentTop(m[1]);
    if (top) add(`needs ${top} (absent here)`);
  }
}

export interface ProblemText {
  description: string;
  /** Every script of the problem (init, start, example, checks) with its language. */
  scripts: { language: "bash" | "python"; code: string }[];
}

/**
 * Why the sandbox cannot grade the problem, one reason each (empty when nothing is known to
 * be missing): paths that do not exist here (/root, /home, /var, ...), writes outside the
 * home directory and /tmp, commands that need root (useradd, su, chown, ...), package
 * installs and the network.
 */
export function sandboxLacks(p: ProblemText): string[] {
  const why = new Set<string>();
  const add = (w: string) => why.add(w);
  // The task itself is about a place that does not exist here.
  for (const m of p.description.matchAll(ABSENT_RE)) add(`needs /${m[1]} (absent here)`);
  for (const s of p.scripts) {
    if (s.language === "bash") bashNeeds(s.code, add);
    else pythonNeeds(s.code, add);
  }
  return [...why];
}
