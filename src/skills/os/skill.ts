/** The miniature OS skill (stands in for AgentBench OS). */

import { SHELL_LIMITS } from "../limits.ts";
import { lazySplits, MINI_FORMAT, type MiniOptions } from "../mini.ts";
import { comboKey, pick } from "../splits.ts";
import { clip, nonce, normaliseOutput, ranTooLong } from "../text.ts";
import type { Grade, Problem, Runner, Skill } from "../types.ts";
import { OS_TEMPLATES } from "./templates.ts";
import { randomTree } from "./tree.ts";

export interface OsProblem extends Problem {
  judge: "stdout" | "state";
  files: Record<string, string>;
  dirs: string[];
}

/**
 * Runs the command in the problem's directory. In "state" mode the command's own output goes
 * to /dev/null and the wrapper then prints, after a nonce line, one line per path: "d PATH" or
 * "f PATH CHECKSUM SIZE".
 */
const WRAPPER = String.raw`mode=$1; tag=$2; cmd=$3; shift 3
for d in "$@"; do mkdir -p -- "$d"; done
if [ "$mode" = stdout ]; then
  exec bash -c "$cmd" </dev/null
fi
bash -c "$cmd" </dev/null >/dev/null 2>&1
printf '\n%s\n' "$tag"
find . -mindepth 1 | LC_ALL=C sort | while IFS= read -r p; do
  if [ -d "$p" ]; then printf 'd %s\n' "$p"; else printf 'f %s %s\n' "$p" "$(cksum < "$p")"; fi
done`;

export interface Observation {
  ok: boolean;
  /** Normalised stdout, or the state listing. */
  text: string;
  error?: string;
}

export async function observe(run: Runner, p: OsProblem, command: string): Promise<Observation> {
  const tag = nonce();
  const res = await run({
    command: ["bash", "-c", WRAPPER, "wrapper", p.judge, tag, command, ...p.dirs],
    files: p.files,
    ...SHELL_LIMITS,
  });
  if (ranTooLong(res)) return { ok: false, text: "", error: "timeout" };
  if (res.outputTruncated) return { ok: false, text: "", error: "too much output" };
  if (p.judge === "stdout") {
    return { ok: true, text: normaliseOutput(res.stdout), error: res.stderr.trim() || undefined };
  }
  const at = res.stdout.lastIndexOf(`\n${tag}\n`);
  if (at < 0)
    return {
      ok: false,
      text: "",
      error: `the shell ended early (${res.reason ?? `exit code ${res.exitCode}`})`,
    };
  return { ok: true, text: res.stdout.slice(at + tag.length + 2).trim() };
}

/** Describes how two state listings differ, e.g. "missing backup; changed notes.txt". */
function stateDiff(got: string, want: string): string {
  const parse = (s: string) => {
    const m = new Map<string, string>();
    for (const l of s.split("\n").filter(Boolean)) {
      const [kind, path, ...rest] = l.split(" ");
      m.set(path.replace(/^\.\//, ""), `${kind} ${rest.join(" ")}`);
    }
    return m;
  };
  const g = parse(got);
  const w = parse(want);
  const missing = [...w.keys()].filter((k) => !g.has(k));
  const extra = [...g.keys()].filter((k) => !w.has(k));
  const changed = [...w.keys()].filter((k) => g.has(k) && g.get(k) !== w.get(k));
  const parts: string[] = [];
  const list = (xs: string[]) => xs.slice(0, 3).join(", ") + (xs.length > 3 ? ", ..." : "");
  if (missing.length) parts.push(`missing ${list(missing)}`);
  if (extra.length) parts.push(`unexpected ${list(extra)}`);
  if (changed.length) parts.push(`changed ${list(changed)}`);
  return parts.join("; ");
}

/** Grades a command by comparing what it did with what the reference command does. */
function makeOsGrader() {
  const expected = new Map<string, Promise<Observation>>();
  return async (p: OsProblem, output: string, run: Runner): Promise<Grade> => {
    if (output.trim() === "") return { pass: false, reason: "empty answer" };
    let want = expected.get(p.id);
    if (!want) {
      want = observe(run, p, p.reference);
      expected.set(p.id, want);
      want.catch(() => expected.delete(p.id));
    }
    const [w, g] = await Promise.all([want, observe(run, p, output)]);
    if (!w.ok) throw new Error(`os problem ${p.id}: the reference command failed: ${w.error}`);
    if (!g.ok) return { pass: false, reason: g.error ?? "failed" };
    if (g.text === w.text) return { pass: true, reason: "ok" };
    if (p.judge === "state")
      return { pass: false, reason: `wrong result: ${stateDiff(g.text, w.text)}` };
    const err = g.text === "" && g.error ? ` (stderr: ${clip(g.error, 60)})` : "";
    return {
      pass: false,
      reason: `wrong output: got "${clip(g.text, 40)}", expected "${clip(w.text, 40)}"${err}`,
    };
  };
}

export function createOsSkill(opts: MiniOptions = {}): Skill<OsProblem> {
  const problems = lazySplits<OsProblem>("os", opts, (rng) => {
    const t = pick(rng, OS_TEMPLATES);
    const v = t.draw(rng);
    const key = comboKey(t.id, v);
    return {
      key,
      build: (id, split) => {
        const tree = randomTree(rng);
        t.prepare(tree, v, rng);
        return {
          id,
          split,
          template: t.id,
          key,
          instruction: pick(rng, t.phrasings)(v),
          reference: t.command(v),
          judge: t.judge,
          files: tree.files,
          dirs: tree.dirs,
        };
      },
    };
  });
  const grade = makeOsGrader();
  return {
    name: "os",
    problems,
    ...MINI_FORMAT,
    grade: (p, output, ctx) => grade(p, output, ctx.run),
  };
}
