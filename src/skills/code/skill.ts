/** The miniature coding skill (stands in for MBPP). */
import { lazySplits, MINI_FORMAT, type MiniOptions } from "../mini.ts";
import { comboKey, pick } from "../splits.ts";
import type { Problem, Skill } from "../types.ts";
import { gradePython } from "./harness.ts";
import { CODE_HEADS, CODE_TEMPLATES } from "./templates.ts";

export interface CodeProblem extends Problem {
  /** The function the tests call. */
  entry: string;
  /** Assert statements. */
  tests: string[];
}

export function createCodeSkill(opts: MiniOptions = {}): Skill<CodeProblem> {
  const problems = lazySplits<CodeProblem>("code", opts, (rng) => {
    const t = pick(rng, CODE_TEMPLATES);
    const v = t.draw(rng);
    return {
      key: comboKey(t.id, v),
      build: (id, split) => {
        const sig = t.sig(v);
        const instruction = pick(rng, CODE_HEADS)(sig, pick(rng, t.clauses)(v));
        return {
          id,
          split,
          template: t.id,
          key: comboKey(t.id, v),
          instruction,
          reference: `def ${sig}: ${t.body(v)}`,
          entry: String(v.f),
          tests: t.tests(v, rng),
        };
      },
    };
  });
  return {
    name: "code",
    problems,
    ...MINI_FORMAT,
    grade: async (p, output, ctx) =>
      output.trim() === ""
        ? { pass: false, reason: "empty answer" }
        : gradePython(ctx.run, output, { entry: p.entry, tests: p.tests }),
  };
}
