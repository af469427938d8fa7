/**
 * Batched grading against one sandbox per answer: real answers from the zoo's models give
 * the same verdicts both ways (hostile answers: grading-hostile.test.ts).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createLlamaCppEngine } from "../src/engine/llama-cpp.ts";
import { zooPath } from "../src/run/config.ts";
import {
  type BatchRunner,
  checkSandbox,
  createBatchRunner,
  runSandboxed,
} from "../src/sandbox/index.ts";
import { createMiniSkills, evaluateSkills } from "../src/skills/index.ts";
import { mapLimit } from "../src/skills/pool.ts";
import type { Runner } from "../src/skills/types.ts";

const check = await checkSandbox();
const skip =
  check.ok || process.env.CI ? false : `sandbox unavailable: ${check.problems.join("; ")}`;

describe("batched grading", { skip }, () => {
  let batch: BatchRunner;
  before(() => {
    batch = createBatchRunner({ lanes: 2 });
  });
  after(async () => {
    await batch?.close();
  });

  test("real answers of the zoo's models: the same verdict for every answer", async () => {
    const skills = createMiniSkills({ seed: 1, sizes: { opt: 48 } });
    const engine = await createLlamaCppEngine({ gpu: false, threads: 1 });
    const answers: { skill: string; problem: number; output: string }[] = [];
    try {
      for (const name of ["base", "code", "os", "db"]) {
        const model = await engine.loadModel(zooPath(`${name}.gguf`), { parallel: 8 });
        try {
          const res = await evaluateSkills(model, skills, "opt", {
            likelihood: false,
            runner: runSandboxed,
          });
          for (const s of skills)
            res[s.name].details.forEach((d, i) => {
              answers.push({ skill: s.name, problem: i, output: d.output });
            });
        } finally {
          await model.dispose();
        }
      }
    } finally {
      await engine.dispose();
    }
    const gradeAll = (run: Runner) =>
      mapLimit(answers, 2, ({ skill, problem, output }) => {
        const s = skills.find((x) => x.name === skill);
        if (!s) throw new Error(skill);
        return s.grade(s.problems("opt")[problem], output, { run });
      });
    const single = await gradeAll(runSandboxed);
    const batched = await gradeAll((req) => batch.run(req));
    assert.equal(answers.length, 4 * 3 * 48);
    const differ = answers.filter(
      (_, i) => JSON.stringify(single[i]) !== JSON.stringify(batched[i]),
    );
    assert.deepEqual(differ, [], `${differ.length} of ${answers.length} verdicts differ`);
    assert.ok(single.some((g) => g.pass) && single.some((g) => !g.pass));
    assert.equal(batch.stats().fallback, 0);
  });
});
