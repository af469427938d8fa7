/**
 * AgentBench DB as multi-turn episodes (`dbEpisode` with `runEpisodes`), on the records of
 * test/fixtures/dbbench-format/standard.jsonl, in the real sandbox: a scripted agent runs SQL
 * ("Action: Operation"), reads the result rows, and commits ("Action: Answer"); the episode's
 * database persists from turn to turn.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { GenerateRequest } from "../src/engine/types.ts";
import { type EpisodeResult, runEpisodes } from "../src/skills/agent.ts";
import { SqlSession } from "../src/skills/db/session.ts";
import { evaluateSkills } from "../src/skills/evaluate.ts";
import {
  DB_EPISODE_STOP,
  type DbBenchProblem,
  dbEpisode,
  dbEpisodePrompt,
  loadDbBenchSkill,
  parseAnswerList,
  parseDbAction,
} from "../src/skills/loaders/dbbench.ts";
import { type Grader, openGrader } from "../src/skills/runner.ts";
import type { SkillModel } from "../src/skills/types.ts";

const file = join(import.meta.dirname, "fixtures", "dbbench-format", "standard.jsonl");
const skill = loadDbBenchSkill({ files: { test: file } }, { strict: true });
const ps = skill.problems("test");
/** The problem on fixture line `n` (1-based). */
const at = (n: number): DbBenchProblem => ps[n - 1];

let grader: Grader;
before(async () => {
  grader = await openGrader();
});
after(async () => {
  await grader?.close();
});

/** A scripted agent: it reads its transcript (and the turn number) to choose its next turn. */
function scripted(policy: (transcript: string, turn: number) => string): SkillModel {
  return {
    generate: async (reqs: GenerateRequest[]) =>
      reqs.map((r) => ({
        text: policy(r.prompt, (r.prompt.match(/\nDatabase: /g) ?? []).length),
        tokens: 1,
        finish: "stop" as const,
      })),
    score: async () => [],
  };
}

/** A turn that runs one statement. */
const sql = (s: string) => `I will look at the table.\nAction: Operation\n\`\`\`sql\n${s}\n\`\`\``;
/** A turn that commits an answer list (written as given). */
const answer = (list: string) => `That settles it.\nAction: Answer\nFinal Answer: ${list}`;

/** What the database said last in a transcript. */
function lastObservation(transcript: string): string {
  const i = transcript.lastIndexOf("\nDatabase: ");
  return i < 0 ? "" : transcript.slice(i + 11).split("\nAgent: ")[0];
}

/** Runs one episode of problem `n` with a list of turns (or a policy). */
async function episode(
  n: number,
  turns: string[] | ((transcript: string, turn: number) => string),
  maxRounds = 6,
): Promise<EpisodeResult> {
  const policy = Array.isArray(turns) ? (_: string, k: number) => turns[k] ?? "" : turns;
  const [r] = await runEpisodes(scripted(policy), [dbEpisode(grader.run, at(n))], {
    maxRounds,
    maxTokens: 200,
    stop: DB_EPISODE_STOP,
  });
  return r;
}

describe("AgentBench DB episodes: queries", () => {
  test("a query answered from the rows of one SQL turn passes", async () => {
    const r = await episode(1, (t, k) =>
      k === 0
        ? sql("SELECT Opening FROM `Regional Chess Results` WHERE White = 'Ilse Varga';")
        : answer(JSON.stringify([lastObservation(t).match(/\('([^']*)',\)/)?.[1]])),
    );
    assert.deepEqual([r.pass, r.reason, r.rounds], [true, "ok", 2]);
    // The rows as AgentBench's MySQL client prints them: a Python list of tuples.
    assert.equal(r.turns[0].observation, "\nDatabase: [('Caro-Kann Defence',)]\nAgent: ");
    assert.equal(r.turns[1].observation, "");
    assert.ok(r.transcript.startsWith(dbEpisodePrompt(at(1))));
    assert.match(
      dbEpisodePrompt(at(1)),
      /\nQuestion: Which opening was played in the game where Ilse Varga had the white pieces\?\nThe name of this table is Regional Chess Results, and the headers of this table are Round,White,Black,Result,Opening,Moves\.\nAgent: $/,
    );
    assert.ok(r.transcript.endsWith('Final Answer: ["Caro-Kann Defence"]'));
  });

  test("a wrong final answer fails; so does an answer without a Final Answer line", async () => {
    const wrong = await episode(1, [
      sql("SELECT Opening FROM `Regional Chess Results`"),
      answer('["Ruy Lopez"]'),
    ]);
    assert.deepEqual([wrong.pass, wrong.rounds], [false, 2]);
    assert.equal(wrong.gradable, undefined);
    assert.equal(wrong.reason, 'wrong answer: got ["Ruy Lopez"], expected ["Caro-Kann Defence"]');
    const bare = await episode(1, ["Action: Answer\nIt is the Caro-Kann Defence."]);
    assert.deepEqual([bare.pass, bare.reason], [false, "committed without a Final Answer line"]);
  });

  test("answers compare as AgentBench's result processor compares them", async () => {
    // Numbers within 0.01, Python's quotes, several answers as a set.
    for (const [n, list, pass] of [
      [5, "[48]", true],
      [5, "['48.001']", true],
      [5, "[47]", false],
      [4, '["2"]', true],
      [1, "['caro-kann defence']", false],
      // The raw result row is not an answer, as in AgentBench.
      [1, "[('Caro-Kann Defence',)]", false],
      [1, "Caro-Kann Defence", true],
    ] as const) {
      const r = await episode(n, [answer(list)]);
      assert.equal(r.pass, pass, `${n}: ${list}: ${r.reason}`);
    }
  });

  test("an SQL error is the observation, and the episode goes on", async () => {
    const r = await episode(7, (t, k) => {
      if (k === 0) return sql("SELECT SUM(Asists) FROM `Season Assists by Player`");
      if (k === 1)
        return sql(
          "SELECT SUM(`Assists`) FROM `Season Assists by Player` WHERE Player IN ('Okonkwo', 'Lindqvist')",
        );
      return answer(`[${lastObservation(t).match(/\((\d+),\)/)?.[1]}]`);
    });
    assert.equal(r.turns[0].observation, "\nDatabase: Error: no such column: Asists\nAgent: ");
    assert.equal(lastObservation(r.turns[1].observation), "[(17,)]");
    assert.deepEqual([r.pass, r.rounds], [true, 3]);
  });

  test("a long result is cut at 800 characters, as AgentBench cuts it", async () => {
    const r = await episode(26, [sql("SELECT * FROM tide_gauge_readings"), answer("[]")]);
    const obs = lastObservation(r.turns[0].observation);
    assert.equal(obs.length, 800 + "[TRUNCATED]".length);
    assert.ok(obs.startsWith("[(1, 'Gull Point', '3.7', '0.7'), (1, 'Saltney Pier', "), obs);
    assert.ok(obs.endsWith("[TRUNCATED]"));
  });

  test("an Operation without a ```sql block ends the episode as a fail", async () => {
    const r = await episode(1, ["Action: Operation\nSELECT 1"]);
    assert.deepEqual(
      [r.pass, r.rounds, r.reason],
      [false, 1, "invalid action: Action: Operation without a ```sql block"],
    );
  });

  test("the turn limit reached gives a fail", async () => {
    const r = await episode(1, () => sql("SELECT COUNT(*) FROM `Regional Chess Results`"), 3);
    assert.deepEqual(
      [r.pass, r.gradable, r.rounds, r.reason],
      [false, undefined, 3, "round limit reached before an answer"],
    );
    assert.equal(r.turns.length, 3);
    assert.ok(r.turns.every((t) => lastObservation(t.observation) === "[(7,)]"));
  });
});

describe("AgentBench DB episodes: changes", () => {
  const update18 =
    "UPDATE Crew_Nationality_Summary SET Total = '27' WHERE Nationality = 'Portugal'";

  test("an UPDATE done in one turn, then Action: Answer, passes; a wrong UPDATE fails", async () => {
    const r = await episode(18, [sql(update18), answer('["done"]')]);
    assert.deepEqual([r.pass, r.reason, r.rounds], [true, "ok", 2]);
    // A change shows no rows.
    assert.equal(lastObservation(r.turns[0].observation), "[]");
    // The answer field of a change can be anything, as AgentBench's prompt says.
    const bare = await episode(18, [sql(update18), "Action: Answer\n"]);
    assert.equal(bare.pass, true, bare.reason);
    const wrong = await episode(18, [
      sql("UPDATE Crew_Nationality_Summary SET Total = '27' WHERE Nationality = 'Norway'"),
      answer("[]"),
    ]);
    assert.deepEqual(
      [wrong.pass, wrong.gradable, wrong.reason],
      [false, undefined, "wrong table contents (hash differs)"],
    );
    // Doing nothing leaves the table as it was: a fail.
    const none = await episode(18, [answer("[]")]);
    assert.deepEqual([none.pass, none.reason], [false, "wrong table contents (hash differs)"]);
  });

  test("the episode's database persists: insert in turn 1, update in turn 2", async () => {
    const table = "`Table of Season, Club, and Position`";
    const insert = `INSERT INTO ${table} (Season, Club, Position) VALUES ('2021', 'Harrow', 'Assistant manager')`;
    const fix = `UPDATE ${table} SET Club = 'Harrow Borough' WHERE Club = 'Harrow' AND Season = '2021'`;
    const look = `SELECT Club FROM ${table} WHERE Season = '2021'`;
    const r = await episode(12, [sql(insert), sql(fix), sql(look), answer("[]")]);
    assert.deepEqual([r.pass, r.reason, r.rounds], [true, "ok", 4]);
    assert.equal(lastObservation(r.turns[2].observation), "[('Harrow Borough',)]");
    // Without the second turn's update, the first turn's row is wrong: a fail.
    const half = await episode(12, [sql(insert), sql(look), answer("[]")]);
    assert.equal(lastObservation(half.turns[1].observation), "[('Harrow',)]");
    assert.deepEqual([half.pass, half.reason], [false, "wrong table contents (hash differs)"]);
    // A second insert of the same row is a second row: the table now differs from the gold.
    const twice = await episode(12, [sql(insert), sql(insert), sql(fix), answer("[]")]);
    assert.equal(twice.pass, false);
  });

  test("a failed statement changes nothing; a DELETE over several turns", async () => {
    const r = await episode(26, [
      sql("DELETE FROM tide_gauge_readings WHERE `Day` = '12' AND Station = 'Gull Point'"),
      sql("DELETE FROM tide_gauge_readings WHERE `Dya` = '12'"),
      sql("DELETE FROM tide_gauge_readings WHERE `Day` = '12'"),
      sql("SELECT COUNT(*) FROM tide_gauge_readings"),
      answer("[]"),
    ]);
    assert.match(r.turns[1].observation, /Error: no such column: Dya/);
    assert.equal(lastObservation(r.turns[3].observation), "[(195,)]");
    assert.deepEqual([r.pass, r.reason], [true, "ok"]);
  });

  test("the turn limit reached gives a fail, even after the right change", async () => {
    const r = await episode(18, (_, k) => (k === 0 ? sql(update18) : sql("SELECT 1")), 2);
    assert.deepEqual(
      [r.pass, r.gradable, r.rounds, r.reason],
      [false, undefined, 2, "round limit reached before an answer"],
    );
  });

  test("a change whose gold SQLite cannot reproduce stays not gradable", async () => {
    // Line 19: MySQL's accent-insensitive match that SQLite's NOCASE does not make; line 17:
    // a table name SQLite cannot read unquoted.
    const cases: [number, string[] | (() => string), number][] = [
      [
        19,
        [
          sql("UPDATE `Ferry Terminals` SET `Rank` = '2' WHERE `Terminal` LIKE 'S%o Vicente%'"),
          answer("[]"),
        ],
        4,
      ],
      [19, [answer("[]")], 4],
      [19, ["no action at all"], 4],
      [19, ["Action: Operation\nno block"], 4],
      [19, () => sql("SELECT 1"), 1],
      [17, [sql("SELECT * FROM `1987_Kestrel_Cup_Final_0`"), answer("[]")], 4],
    ];
    for (const [n, turns, maxRounds] of cases) {
      const r = await episode(n, turns, maxRounds);
      assert.equal(r.gradable, false, `${n}: ${r.reason}`);
      assert.equal(r.pass, false);
      assert.match(r.reason, /^not gradable here: the reference statement/);
      // It ends at its first step: no turns spent on a problem that cannot be graded.
      assert.equal(r.rounds, 1);
    }
  });
});

describe("AgentBench DB episodes: the skill", () => {
  test("`turns` makes the skill episodic, and evaluateSkills runs it", async () => {
    assert.equal(skill.episodes, undefined);
    const multi = loadDbBenchSkill({ files: { test: file } }, { strict: true, turns: 5 });
    assert.equal(multi.episodes?.maxRounds, 5);
    assert.deepEqual(multi.episodes?.stop, DB_EPISODE_STOP);
    // Lines 1, 2 and 3: the first answered, the second's table absent, the third's empty.
    const model = scripted((t, k) => {
      if (t.includes("Ilse Varga"))
        return k === 0
          ? sql("SELECT Opening FROM `Regional Chess Results` WHERE White = 'Ilse Varga'")
          : answer('["Caro-Kann Defence"]');
      if (t.includes("Curling")) return sql("SELECT * FROM Curling_Match_Results");
      return k === 0 ? sql("SELECT COUNT(*) FROM `Library Branches`") : answer("[0]");
    });
    const res = await evaluateSkills(model, [multi], "test", {
      runner: grader.run,
      likelihood: false,
      limit: 3,
    });
    const r = res[multi.name];
    assert.deepEqual(
      r.details.map((d) => [d.pass, d.reason]),
      [
        [true, "ok (2 turns)"],
        [false, "round limit reached before an answer (5 turns)"],
        [
          false,
          'wrong answer: got ["0"], expected ["2.0"] (table "Library Branches" is empty, as in AgentBench: row 7 has 3 values for 5 columns) (2 turns)',
        ],
      ],
    );
    assert.match(r.details[1].prompt, /Error: no such table: Curling_Match_Results/);
    assert.equal(r.score, 1 / 3);
  });
});

describe("AgentBench DB episodes: parsing and the session", () => {
  test("the first Action line decides; an Operation runs the first ```sql block", () => {
    assert.deepEqual(
      parseDbAction("Think.\nAction: Operation\n```sql\nSELECT 1;\n```\n```sql\nSELECT 2\n```"),
      {
        action: "operation",
        sql: "SELECT 1;",
      },
    );
    assert.deepEqual(parseDbAction("Action: Answer\nFinal Answer: [\"a\", 'b']"), {
      action: "answer",
      answer: ["a", "b"],
    });
    // Anything but an Operation commits (AgentBench's loop ends on it).
    assert.deepEqual(parseDbAction("The answer is 3.\nFinal Answer: [3]"), {
      action: "answer",
      answer: ["3"],
    });
    assert.deepEqual(parseDbAction("I give up."), { action: "answer", answer: null });
    assert.equal(parseDbAction("Action: Operation\nSELECT 1").action, "invalid");
    // "Final Answer:" only at the start of a line, as AgentBench's "\nFinal Answer:(.*)".
    assert.deepEqual(parseDbAction("Action: Answer\nMy Final Answer: [1]"), {
      action: "answer",
      answer: null,
    });
  });

  test("answer lists as Python's eval reads them, else the whole text", () => {
    assert.deepEqual(parseAnswerList(' ["Caro-Kann Defence"]'), ["Caro-Kann Defence"]);
    assert.deepEqual(parseAnswerList("['Don\\'t', \"a\\nb\", '\\u00e9']"), ["Don't", "a\nb", "é"]);
    assert.deepEqual(parseAnswerList("[17, 2.5, None, ]"), ["17", "2.5", "None"]);
    assert.deepEqual(parseAnswerList("('x',)"), ["x"]);
    assert.deepEqual(parseAnswerList("[]"), []);
    assert.deepEqual(parseAnswerList("[('a', 1), 'b']"), ["('a', 1)", "b"]);
    assert.deepEqual(parseAnswerList("Caro-Kann"), ["Caro-Kann"]);
    assert.deepEqual(parseAnswerList("['unclosed]"), ["['unclosed]"]);
    assert.deepEqual(parseAnswerList("[1] and more"), ["[1] and more"]);
  });

  test("the session carries the database file between sandboxes", async () => {
    const s = new SqlSession(
      grader.run,
      [{ name: "t", columns: [{ name: "a", type: "INTEGER" }], rows: [[1]] }],
      ["t", "u"],
    );
    assert.deepEqual(await s.exec("INSERT INTO t VALUES (2)"), { rows: "[]" });
    assert.deepEqual(await s.exec("CREATE TABLE u (b TEXT)"), { rows: "[]" });
    assert.deepEqual(await s.exec("INSERT INTO u SELECT 'x' || a FROM t"), { rows: "[]" });
    assert.deepEqual(await s.exec("SELECT * FROM t, u ORDER BY a, b"), {
      rows: "[(1, 'x1'), (1, 'x2'), (2, 'x1'), (2, 'x2')]",
    });
    // MySQL takes a COMMIT outside a transaction; each turn's statement is committed.
    assert.deepEqual(await s.exec("COMMIT"), { rows: "[]" });
    assert.deepEqual(await s.exec("BEGIN"), { rows: "[]" });
    assert.deepEqual(await s.exec("SELECT 1; SELECT 2"), {
      error: "You can only execute one statement at a time.",
    });
    assert.deepEqual(await s.state(), { state: { t: [[1], [2]], u: [["x1"], ["x2"]] } });
    // A statement that would grow the file past its cap is undone.
    const small = new SqlSession(
      grader.run,
      [{ name: "t", columns: [{ name: "a", type: "TEXT" }], rows: [] }],
      ["t"],
      {
        maxBytes: 64 * 1024,
      },
    );
    const big = await small.exec(
      "INSERT INTO t WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) SELECT printf('%0100d', i) FROM n",
    );
    assert.match(
      "error" in big ? big.error : "",
      /would grow past 65536 bytes; the statement was undone/,
    );
    assert.deepEqual(await small.state(), { state: { t: [] } });
    assert.equal(s.history.length, 7);
    // Rows are printed until the text is longer than maxChars: at most maxChars, the whole.
    const few = new SqlSession(
      grader.run,
      [{ name: "t", columns: [{ name: "a", type: "INTEGER" }], rows: [[1], [2], [3]] }],
      ["t"],
      { maxChars: 12 },
    );
    assert.deepEqual(await few.exec("SELECT a FROM t WHERE a < 3"), { rows: "[(1,), (2,)]" });
    const more = await few.exec("SELECT a FROM t");
    assert.ok("rows" in more && more.rows.length > 12, JSON.stringify(more));
  });
});
