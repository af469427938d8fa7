/**
 * AgentBench OS on records of our own written in AgentBench's OS-interaction format
 * (test/fixtures/os-format, see its README.md), graded in the sandbox with AgentBench's
 * protocol: setup once per episode, the agent's commands in its shell, each check in a fresh
 * process; problems the sandbox cannot set up are reported as not gradable here, never graded.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, test } from "node:test";
import type { GenerateRequest } from "../src/engine/types.ts";
import { runEpisodes } from "../src/skills/agent.ts";
import { evaluateSkills } from "../src/skills/evaluate.ts";
import {
  loadOsInteractionSkill,
  OS_EPISODE_STOP,
  type OsInteractionOptions,
  type OsInteractionProblem,
  osEpisode,
} from "../src/skills/loaders/os-interaction.ts";
import { ShellSession } from "../src/skills/os/session.ts";
import { resolveRunner } from "../src/skills/runner.ts";
import type { Grade, SkillModel } from "../src/skills/types.ts";

const root = join(import.meta.dirname, "fixtures", "os-format");
const runner = resolveRunner();

/** One AgentBench data file, with its own script_dir. */
function load(file: string, set: string, opts: OsInteractionOptions = {}) {
  const skill = loadOsInteractionSkill(
    { files: { test: join(root, "data", file) } },
    { scriptDir: join(root, "scripts", set), ...opts },
  );
  return { skill, ps: skill.problems("test") };
}

const parcels = load("1/parcels.json", "1");
const dotfiles = load("2/dotfiles.json", "2");
const todo = load("3/todo-count.json", "3");
const pythonpath = load("4/pythonpath.json", "4");
const spool = load("4/spool-dir.json", "4");
const otherUser = load("4/other-user.json", "4");
const gen = load("6/generated.json", "6");
const dev = load("dev.json", "dev");

async function grade(s: ReturnType<typeof load>, i: number, output: string): Promise<Grade> {
  return s.skill.grade(s.ps[i], output, { run: await runner });
}

const bash = (cmd: string) => `Think: next step.\nAct: bash\n\`\`\`bash\n${cmd}\n\`\`\``;
const answer = (a: string) => `Think: done.\nAct: answer(${a})`;

/** A scripted agent: it reads its transcript to choose the next act. */
function scripted(policy: (transcript: string, turn: number) => string): SkillModel {
  return {
    generate: async (reqs: GenerateRequest[]) =>
      reqs.map((r) => ({
        text: policy(r.prompt, (r.prompt.match(/\nOS: /g) ?? []).length),
        tokens: 1,
        finish: "stop" as const,
      })),
    score: async () => [],
  };
}

/** The output of the OS in the last observation of a transcript. */
function lastOutput(transcript: string): string {
  const i = transcript.lastIndexOf("The output of the OS:\n");
  return i < 0
    ? ""
    : transcript
        .slice(i + 22)
        .split("\nAgent: ")[0]
        .trim();
}

async function episodes(
  p: OsInteractionProblem,
  n: number,
  policy: Parameters<typeof scripted>[0],
) {
  const run = await runner;
  return runEpisodes(
    scripted(policy),
    Array.from({ length: n }, () => osEpisode(run, p)),
    { maxRounds: 8, maxTokens: 200, stop: OS_EPISODE_STOP },
  );
}

describe("AgentBench OS: records in AgentBench's format", () => {
  test("the records load; a list-valued create means the default image and no setup", () => {
    for (const s of [parcels, dotfiles, todo, pythonpath, spool, otherUser, gen, dev]) {
      assert.deepEqual(s.skill.skipped, []);
    }
    const [list] = dev.ps;
    assert.equal(list.image, "default");
    assert.deepEqual(list.init, []);
    assert.deepEqual(list.needs, []);
    assert.equal(list.reference, "ls -A / | wc -l");
    // A file holding one object (no array, no `create`) is one problem on the default image.
    assert.equal(otherUser.ps.length, 1);
    assert.equal(otherUser.ps[0].image, "default");
    assert.deepEqual(otherUser.ps[0].evaluation, {
      kind: "match",
      answer: "auditors",
      strip: true,
    });
    // `init` given as a list of a file and a string: both run, the file's text read from scripts/2.
    assert.equal(dotfiles.ps[0].init.length, 2);
    assert.match(dotfiles.ps[0].init[0].code, /settings\.conf/);
    assert.equal(dotfiles.ps[0].init[1].code, "printf '# my shell settings\\n' > ~/.bashrc");
    // What the sandbox cannot give is known before anything runs.
    assert.deepEqual(parcels.ps[0].needs, ["writes /usr/share/parcels.tsv (read-only here)"]);
    assert.deepEqual(todo.ps[0].needs, ["needs /root (absent here)"]);
    assert.deepEqual(otherUser.ps[0].needs, [
      "runs useradd (needs root)",
      "runs groupadd (needs root)",
      "runs usermod (needs root)",
      "runs su (needs root)",
    ]);
    // /opt and /srv entries inside quoted PYTHONPATH values are not paths the problem needs.
    assert.match(pythonpath.ps[0].init[0].code, /\/opt\/pylibs/);
    assert.deepEqual(pythonpath.ps[0].needs, []);
    assert.equal(spool.ps[0].start, "mkdir -p /tmp/spool-q3 && cd /tmp/spool-q3");
    // A multi-line example solution is the reference, whole.
    assert.equal(gen.ps[0].reference.split("\n").length, 12);
    assert.ok(gen.ps[0].reference.startsWith("#!/bin/bash\nmax=-1\n"));
  });

  test("the one-turn prompt opens a bash block, so answers may span lines", () => {
    const s = gen.skill;
    assert.ok(s.format(gen.ps[0]).endsWith("\nA: ```bash\n"));
    assert.deepEqual(s.stop, ["\n```"]);
    assert.equal(s.terminator, "\n```");
    // The miniature skills' one-line format is still there; a multi-line example has no
    // reference in it.
    const line = load("6/generated.json", "6", { answerFormat: "line" });
    assert.ok(line.skill.format(line.ps[0]).endsWith("\nA: "));
    assert.deepEqual(line.skill.stop, ["\n"]);
    assert.equal(line.ps[0].reference, "");
    const oneLine = load("dev.json", "dev", { answerFormat: "line" });
    assert.equal(oneLine.ps[0].reference, dev.ps[0].reference);
  });

  test("example solutions pass where AgentBench passes them; wrong answers fail", async () => {
    const gradable: [ReturnType<typeof load>, number][] = [
      [dotfiles, 0],
      [pythonpath, 0],
      [spool, 0],
      [gen, 0],
      [gen, 1],
      [dev, 0],
    ];
    for (const [s, i] of gradable) {
      const p = s.ps[i];
      const ref = await grade(s, i, p.reference);
      assert.deepEqual(ref, { pass: true, reason: "ok" }, `${p.instruction.slice(0, 60)}`);
      // As the model writes it: the block closed, something after it; or an Act: turn.
      assert.equal((await grade(s, i, `${p.reference}\n\`\`\`\nQ: next`)).pass, true);
      assert.equal((await grade(s, i, bash(p.reference))).pass, true);
      for (const wrong of [answer("0"), "", "echo 0", gen.ps[(i + 1) % 2].reference]) {
        const g = await grade(s, i, wrong);
        assert.equal(g.pass, false, `${p.instruction.slice(0, 60)}: ${wrong}`);
        assert.notEqual(g.gradable, false);
      }
    }
    // Answers that attack the session fail, and are graded (never "not gradable").
    for (const [s, i] of [
      [gen, 0],
      [spool, 0],
    ] as const) {
      for (const hostile of [
        "kill -9 -1",
        "kill -9 $PPID",
        "exec true",
        "exit 0",
        "cat /dev/zero",
      ]) {
        const g = await grade(s, i, hostile);
        assert.equal(g.pass, false, `${hostile}: ${g.reason}`);
        assert.notEqual(g.gradable, false, `${hostile}: ${g.reason}`);
      }
    }
    // `start` ran in the agent's shell: its `cd` holds for the answer's command.
    assert.equal((await grade(spool, 0, answer("spool-q3"))).pass, true);
    assert.equal((await grade(spool, 0, "pwd")).pass, false);
    assert.equal((await grade(spool, 0, "Act: finish")).reason, "finish instead of an answer");
    assert.equal((await grade(gen, 0, "")).reason, "empty answer");
  });

  test("a failed setup makes a problem not gradable here, whatever the answer, and says why", async () => {
    const answers = (p: OsInteractionProblem) => [p.reference, answer("0"), "", "Act: finish"];
    // Known from the text: nothing runs.
    for (const a of answers(parcels.ps[0])) {
      assert.deepEqual(await grade(parcels, 0, a), {
        pass: false,
        gradable: false,
        reason: "not gradable here: writes /usr/share/parcels.tsv (read-only here)",
      });
    }
    // Found out by running the setup: its exit status and the end of its output.
    const all = { gradeUnsupported: true };
    const cases: [ReturnType<typeof load>, RegExp][] = [
      [
        load("1/parcels.json", "1", all),
        /^not gradable here: setup failed \(read-only path\): create\.init\[0\] exit 1: .*\/usr\/share\/parcels\.tsv: Read-only file system$/,
      ],
      [
        load("3/todo-count.json", "3", all),
        /^not gradable here: setup failed \(absent path\): create\.init\[0\] exit 1: .*\/root\/.*No such file or directory$/,
      ],
      [
        load("4/other-user.json", "4", all),
        /^not gradable here: setup failed \([a-z ]+\): start exit [1-9]\d*: .*useradd/,
      ],
    ];
    for (const [s, reason] of cases) {
      for (const a of answers(s.ps[0])) {
        const g = await grade(s, 0, a);
        assert.equal(g.gradable, false, `${a}: ${g.reason}`);
        assert.equal(g.pass, false);
        assert.match(g.reason, reason);
      }
    }
    // An episode ends at its first step, with the same verdict.
    const [r] = await runEpisodes(
      scripted(() => bash("grep -c returned /usr/share/parcels.tsv")),
      [
        osEpisode(await runner, load("1/parcels.json", "1", all).ps[0], {
          gradeUnsupported: true,
        }),
      ],
      { maxRounds: 8, maxTokens: 200, stop: OS_EPISODE_STOP },
    );
    assert.deepEqual([r.pass, r.gradable, r.rounds], [false, false, 1]);
    assert.match(r.reason, /setup failed \(read-only path\)/);
  });

  test("evaluation reports not-gradable problems with a count, outside the pass rate", async () => {
    const files = [
      "1/parcels.json",
      "3/todo-count.json",
      "4/other-user.json",
      "4/pythonpath.json",
      "4/spool-dir.json",
      "6/generated.json",
      "dev.json",
    ];
    // Every record of these files names only scripts that scripts/1 holds too.
    const skill = loadOsInteractionSkill(
      { files: { test: files.map((f) => join(root, "data", f)) } },
      { scriptDir: join(root, "scripts", "1") },
    );
    const ps = skill.problems("test");
    assert.equal(ps.length, 8);
    const refs = new Map(ps.map((p) => [skill.format(p), `${p.reference}\n\`\`\``]));
    const model: SkillModel = {
      generate: async (reqs) =>
        reqs.map((r) => ({ text: refs.get(r.prompt) ?? "", tokens: 1, finish: "stop" as const })),
      score: async () => [],
    };
    const res = await evaluateSkills(model, [skill], "test", {
      runner: await runner,
      likelihood: false,
    });
    const r = res[skill.name];
    assert.equal(r.ungradable, 3);
    assert.equal(r.score, 1);
    assert.deepEqual(
      r.details.filter((d) => !d.gradable).map((d) => d.reason.split(":")[0]),
      ["not gradable here", "not gradable here", "not gradable here"],
    );
  });

  test("checks run in a fresh process: answers that change the agent's shell still pass", async () => {
    const run = await runner;
    // The check sees the sandbox's own environment and home, not the agent's shell.
    const s = new ShellSession(run, { files: {} });
    await s.exec("export FOO=agent; cd /tmp; alias ls=false");
    assert.equal((await s.exec("echo $FOO $PWD")).output, "agent /tmp\n");
    const j = await s.judge("x", [
      { language: "bash", code: '[ -z "$FOO" ] && [ "$PWD" = "$HOME" ] && ls >/dev/null' },
    ]);
    assert.equal(j.passed, true, JSON.stringify(j));

    // pythonpath.json: the answer sources ~/.bashrc in the agent's shell; the check reruns the
    // example in a fresh shell and counts the same 4 entries (in the agent's shell, a second
    // `source` would make them 8). One turn, and over several turns (after a `cd` too).
    assert.deepEqual(await grade(pythonpath, 0, pythonpath.ps[0].reference), {
      pass: true,
      reason: "ok",
    });
    const countEntries = "echo \"$PYTHONPATH\" | tr ':' '\\n' | wc -l";
    const [e] = await episodes(
      pythonpath.ps[0],
      1,
      (t, turn) =>
        [bash("source ~/.bashrc; cd /tmp"), bash(countEntries), answer(lastOutput(t))][turn],
    );
    assert.deepEqual([e.pass, e.reason, e.rounds], [true, "ok", 3]);
    assert.equal(lastOutput(e.turns[1].observation), "4");
    // Sourcing it once more in the agent's shell doubles the entries there, not in the check.
    const [twice] = await episodes(
      pythonpath.ps[0],
      1,
      (t, turn) =>
        [bash("source ~/.bashrc; source ~/.bashrc"), bash(countEntries), answer(lastOutput(t))][
          turn
        ],
    );
    assert.equal(lastOutput(twice.turns[1].observation), "8");
    assert.equal(twice.pass, false);

    // dotfiles.json: the setting must outlive the agent's shell. Exporting PROJECT_CONF there
    // is not enough (the check is a fresh process); writing ~/.bashrc is.
    const p = dotfiles.ps[0];
    const [onlyShell, bashrc] = await Promise.all([
      episodes(
        p,
        1,
        (_t, turn) =>
          [
            bash("export PROJECT_CONF=$(find ~/projects -type f -name settings.conf)"),
            bash("cat $PROJECT_CONF"),
            "Act: finish",
          ][turn],
      ),
      episodes(
        p,
        1,
        (_t, turn) => [bash(p.reference), bash("source ~/.bashrc"), "Act: finish"][turn],
      ),
    ]);
    assert.match(onlyShell[0].turns[1].observation, /port=8080/);
    assert.equal(onlyShell[0].pass, false);
    assert.deepEqual([bashrc[0].pass, bashrc[0].reason], [true, "ok"]);
  });

  test("a random setup is judged against the data the episode saw", async () => {
    const run = await runner;
    // Setup runs once: two turns see the same random data, in files named by `date`.
    const s = new ShellSession(run, {
      files: {},
      init: gen.ps[0].init,
    });
    const a = await s.exec(
      "cat readings/*.csv | md5sum; ls readings | md5sum; ls readings | wc -l",
    );
    const b = await s.exec(
      "cat readings/*.csv | md5sum; ls readings | md5sum; ls readings | wc -l",
    );
    assert.equal(a.output, b.output);
    assert.match(a.output, /^[0-9a-f]{32} {2}-\n[0-9a-f]{32} {2}-\n6\n$/);

    // The agent finds the largest value, then answers: right in every episode; one off is wrong.
    const largest = (plus: number) => (t: string, turn: number) =>
      turn === 0 ? bash(gen.ps[0].reference) : answer(String(Number(lastOutput(t)) + plus));
    const right = await episodes(gen.ps[0], 3, largest(0));
    assert.deepEqual(
      right.map((r) => [r.pass, r.reason]),
      Array(3).fill([true, "ok"]),
    );
    const off = await episodes(gen.ps[0], 2, largest(1));
    assert.deepEqual(
      off.map((r) => r.pass),
      [false, false],
    );
    // /dev/urandom data, counted in one turn and answered in the next.
    const urandom = await episodes(gen.ps[1], 2, (t, turn) =>
      turn === 0 ? bash("tr -s ' ' '\\n' < bytes.hex | grep -c '^ff$'") : answer(lastOutput(t)),
    );
    assert.deepEqual(
      urandom.map((r) => r.pass),
      [true, true],
    );
  });
});
