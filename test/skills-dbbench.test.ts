/**
 * The AgentBench DB loader on records of our own written in AgentBench's standard.jsonl format
 * (test/fixtures/dbbench-format/, see its README.md; answer_md5 computed by its
 * make_answer_md5.py, MySQL's recipe re-implemented in Python), graded in the real sandbox.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { mysqlToSqlite } from "../src/skills/db/mysql.ts";
import {
  type DbBenchProblem,
  loadDbBenchSkill,
  parseAnswerMd5,
  tableHash,
} from "../src/skills/loaders/dbbench.ts";
import { DataError } from "../src/skills/loaders/records.ts";
import { type Grader, openGrader } from "../src/skills/runner.ts";
import type { Grade, Skill } from "../src/skills/types.ts";

const file = join(import.meta.dirname, "fixtures", "dbbench-format", "standard.jsonl");
const RECORDS = 27;

let grader: Grader;
before(async () => {
  grader = await openGrader();
});
after(async () => {
  await grader?.close();
});

describe("AgentBench DB, records in AgentBench's format", () => {
  const s: Skill<DbBenchProblem> = loadDbBenchSkill({ files: { test: file } }, { strict: true });
  const ps = s.problems("test");
  /** The problem on fixture line `n` (1-based). */
  const at = (n: number) => ps[n - 1];
  const grade = (n: number, sql: string): Promise<Grade> =>
    s.grade(at(n), sql, { run: grader.run });

  test("every record loads, the ragged ones too, strict or not", () => {
    assert.equal(ps.length, RECORDS);
    const lenient = loadDbBenchSkill({ files: { test: file } });
    assert.deepEqual(lenient.skipped, []);
    assert.equal(lenient.problems("test").length, RECORDS);
    assert.deepEqual(
      ps.map((p) => p.type),
      [
        "other",
        "other",
        "counting",
        "counting",
        "comparison",
        "ranking",
        "aggregation-SUM",
        "aggregation-MIN",
        "aggregation-MIN",
        "aggregation-MAX",
        "aggregation-AVG",
        ...Array(6).fill("INSERT"),
        ...Array(6).fill("UPDATE"),
        "other",
        "UPDATE",
        "DELETE",
        "other",
      ],
    );
  });

  test("answer_md5 as AgentBench writes it, and the change's statement from label[0]", () => {
    const ins = at(12);
    const raw = JSON.parse(readFileSync(file, "utf8").split("\n")[11]);
    assert.equal(raw.answer_md5, "[('b3b31d88471d7906cdb73601c97b4cc1',)]");
    assert.equal(ins.answerMd5, "b3b31d88471d7906cdb73601c97b4cc1");
    assert.equal(ins.reference, raw.label[0]);
    assert.match(ins.reference, /^INSERT INTO `Table of Season, Club, and Position`/);
    const changes = ps.filter((x) => ["INSERT", "UPDATE", "DELETE"].includes(x.type));
    assert.equal(changes.length, 14);
    for (const p of changes) {
      assert.match(p.answerMd5 ?? "", /^[0-9a-f]{32}$/, p.id);
      assert.match(p.reference, /^(INSERT|UPDATE|DELETE) /, p.id);
    }
    // A query's reference stays sql.query; its label is the answer.
    assert.equal(
      at(1).reference,
      `SELECT Opening FROM "Regional Chess Results" WHERE White = 'Ilse Varga';`,
    );
    assert.deepEqual(at(1).label, ["Caro-Kann Defence"]);
  });

  test("tables AgentBench cannot build are kept as its MySQL leaves them", () => {
    // Row 7 of "Library Branches" has 3 of 5 values, row 9 of kart_heat_results none:
    // AgentBench's one multi-row INSERT fails as a whole, so the table exists, empty.
    assert.deepEqual(at(3).setupIssues, [
      { table: "Library Branches", outcome: "empty", why: "row 7 has 3 values for 5 columns" },
    ]);
    assert.equal(at(3).tables[0].rows.length, 0);
    assert.deepEqual(at(8).setupIssues, [
      { table: "kart_heat_results", outcome: "empty", why: "row 9 has 0 values for 8 columns" },
    ]);
    assert.equal(at(8).tables[0].rows.length, 0);
    // Two columns named Score, or one with no name: MySQL's CREATE TABLE fails, no table.
    assert.deepEqual(at(2).setupIssues, [
      {
        table: "Curling_Match_Results",
        outcome: "absent",
        why: 'the column name "Score" appears twice',
      },
    ]);
    assert.deepEqual(at(27).setupIssues, [
      { table: "Lighthouse_Keepers", outcome: "absent", why: "a column has an empty name" },
    ]);
    const clean = ps.filter((_, i) => ![2, 3, 8, 27].includes(i + 1));
    assert.ok(clean.every((p) => p.setupIssues.length === 0));
  });

  test("the gold answers pass in the sandbox; SQLite's limits are not gradable", async () => {
    const gold = await Promise.all(ps.map((p) => s.grade(p, p.reference, { run: grader.run })));
    const verdict = (g: Grade) => (g.gradable === false ? "ungradable" : g.pass ? "pass" : "fail");
    const expected = ps.map((_, i) => {
      const n = i + 1;
      if (n === 17 || n === 19) return "ungradable";
      if ([2, 3, 8, 27].includes(n)) return "fail"; // AgentBench's broken tables, below
      return "pass";
    });
    assert.deepEqual(
      gold.map(verdict),
      expected,
      gold.map((g, i) => `${i + 1}: ${g.reason}`).join("\n"),
    );
    // 17: SQLite cannot read the unquoted name 1987_Kestrel_Cup_Final_0 that MySQL takes.
    assert.match(gold[16].reason, /^not gradable here: the reference statement fails in SQLite/);
    // 19: the gold's WHERE names 'Sao Vicente North Quay', which MySQL's accent-insensitive
    // collation matches to the row 'São Vicente North Quay' and SQLite's NOCASE does not, so
    // SQLite leaves the table unchanged, and answer_md5 is not that table's hash.
    assert.equal(
      gold[18].reason,
      "not gradable here: the reference statement does not give answer_md5 in SQLite",
    );
    assert.notEqual(tableHash(at(19).tables[0].rows), at(19).answerMd5);
  });

  test("an ungradable problem is ungradable whatever the answer", async () => {
    for (const sql of [
      "SELECT 1",
      "",
      "UPDATE `Ferry Terminals` SET `Rank` = '1'",
      "UPDATE `Ferry Terminals` SET `Rank` = '2' WHERE `Terminal` = 'São Vicente North Quay'",
    ]) {
      const g = await grade(19, sql);
      assert.equal(g.gradable, false, sql);
      assert.equal(g.pass, false);
    }
  });

  test("the ragged and broken tables behave as in AgentBench", async () => {
    // The table is there but empty: the gold counts 0, not the label's 2.0.
    const count = await grade(3, at(3).reference);
    assert.equal(count.pass, false);
    assert.equal(count.gradable, undefined);
    assert.equal(
      count.reason,
      'wrong result: got ["0"], expected ["2.0"] (table "Library Branches" is empty, as in AgentBench: row 7 has 3 values for 5 columns)',
    );
    const min = await grade(8, "SELECT MIN(Grid) FROM kart_heat_results");
    assert.match(min.reason, /^wrong result: got \["None"\], expected \["2"\]/);
    // In AgentBench the agent may still give the label without the data; so may a query.
    assert.equal((await grade(3, "SELECT 2.0")).pass, true);
    assert.equal((await grade(8, "SELECT 2")).pass, true);
    // No table at all where MySQL refused to create it.
    const absent = await grade(2, at(2).reference);
    assert.equal(absent.pass, false);
    assert.match(absent.reason, /^SQL error: no such table: Curling_Match_Results/);
    const unnamed = await grade(27, at(27).reference);
    assert.equal(unnamed.pass, false);
    assert.match(unnamed.reason, /^SQL error: no such table: Lighthouse_Keepers/);
    assert.equal((await grade(27, "SELECT 'Angus Rae'")).pass, true);
  });

  test("wrong answers fail", async () => {
    const cases: [number, string, RegExp][] = [
      // Wrong SQL.
      [1, "SELEC Opening FROM `Regional Chess Results`", /^SQL error/],
      [
        12,
        "INSERT INTO `Table of Season Club and Position` VALUES ('2021', 'Harrow Borough', 'Assistant manager')",
        /^SQL error/,
      ],
      // Right SQL, wrong values.
      [
        1,
        "SELECT Opening FROM `Regional Chess Results` WHERE White = 'Oren Castellano'",
        /^wrong result/,
      ],
      [11, "SELECT AVG(`Time (min)`) FROM `Marathon Finishers`", /^wrong result/],
      [
        6,
        "SELECT Crew FROM `Rowing Regatta Entries` WHERE Club LIKE '%Harbour%' ORDER BY Time DESC LIMIT 1",
        /^wrong result/,
      ],
      [6, "SELECT Crew FROM `Rowing Regatta Entries` ORDER BY Time ASC LIMIT 1", /^wrong result/],
      [7, "SELECT SUM(`Assists`) FROM `Season Assists by Player`", /^wrong result/],
      [
        12,
        "INSERT INTO `Table of Season, Club, and Position` VALUES ('2021', 'Harrow Boro', 'Assistant manager')",
        /^wrong table contents/,
      ],
      [
        12,
        "INSERT INTO `Table of Season, Club, and Position` (Season, Club) VALUES ('2021', 'Harrow Borough')",
        /^wrong table contents/,
      ],
      [
        13,
        "INSERT INTO census_households VALUES ('Households with internet', '412', '107', '305')",
        /^wrong table contents/,
      ],
      // An empty string where the gold leaves NULL: CONCAT_WS keeps the one, skips the other.
      [
        14,
        "INSERT INTO concert_recordings VALUES ('2016', 'Live at Brandon Hall', 'Fieldfare Records', 'Vinyl', '')",
        /^wrong table contents/,
      ],
      // An UPDATE touching the wrong row, or the right row with a wrong value, or every row.
      [
        18,
        "UPDATE Crew_Nationality_Summary SET Total = '27' WHERE Nationality = 'Norway'",
        /^wrong table contents/,
      ],
      [
        18,
        "UPDATE Crew_Nationality_Summary SET Total = '28' WHERE Nationality = 'Portugal'",
        /^wrong table contents/,
      ],
      [18, "UPDATE Crew_Nationality_Summary SET Total = '27'", /^wrong table contents/],
      [
        20,
        "UPDATE `Cup Record by Opponent` SET Played = '7', Won = '3', Lost = '4', Percentage = '42.86%' WHERE `First game` = '2008'",
        /^wrong table contents/,
      ],
      [
        22,
        "UPDATE Cheese_Dairies SET Cheese = 'Tomme de Savoie Fermiere' WHERE Dairy = 'Ferme Rouillé'",
        /^wrong table contents/,
      ],
      // Doing nothing, or deleting the row instead.
      [23, "SELECT * FROM `Regatta Medal Table`", /^wrong table contents/],
      [23, "DELETE FROM `Regatta Medal Table` WHERE `Rank`='7'", /^wrong table contents/],
      [25, "", /^empty answer$/],
      // Deleting another day's rows, or only some of the day's.
      [26, "DELETE FROM tide_gauge_readings WHERE `Day` = '13'", /^wrong table contents/],
      [
        26,
        "DELETE FROM tide_gauge_readings WHERE `Day` = '12' AND Station <> 'Gull Point'",
        /^wrong table contents/,
      ],
    ];
    const got = await Promise.all(cases.map(([n, sql]) => grade(n, sql)));
    for (const [k, g] of got.entries()) {
      const [n, sql, reason] = cases[k];
      assert.equal(g.pass, false, `${n}: ${sql}`);
      assert.notEqual(g.gradable, false, `${n}: ${sql}`);
      assert.match(g.reason, reason, `${n}: ${sql}: ${g.reason}`);
    }
  });

  test("answers MySQL takes as the gold's equal pass", async () => {
    const cases: [number, string][] = [
      // Numbers into AgentBench's TEXT columns read as the same text.
      [
        12,
        "INSERT INTO `Table of Season, Club, and Position` VALUES (2021, 'Harrow Borough', 'Assistant manager')",
      ],
      [18, "UPDATE Crew_Nationality_Summary SET Total = 27 WHERE Nationality = 'Portugal'"],
      [26, "DELETE FROM tide_gauge_readings WHERE Day = 12"],
      // Columns in another order; the one left out is NULL, as in the gold.
      [
        14,
        "INSERT INTO concert_recordings (Title, Year, Format, Label) VALUES ('Live at Brandon Hall', 2016, 'Vinyl', 'Fieldfare Records')",
      ],
      // MySQL compares text without regard to case.
      [18, "UPDATE Crew_Nationality_Summary SET Total = '27' WHERE Nationality = 'portugal'"],
      [1, "SELECT Opening FROM `Regional Chess Results` WHERE White = 'ilse varga'"],
      [
        22,
        "UPDATE Cheese_Dairies SET Cheese = 'Tomme de Savoie Fermière' WHERE Dairy = 'ferme rouillé'",
      ],
      // MySQL's backslash escapes and # comments.
      [
        21,
        "UPDATE `Borough Council Election Results, 1998-2010` SET `Candidates` = " +
          "'Mary Okafor (L) 61.2%\\nDavid Penrose (C) 38.8%', `Result` = 'Re-elected' " +
          "WHERE `Ward` = 'Eastgate' AND `Incumbent` = 'Mary Okafor'",
      ],
      [
        15,
        "INSERT INTO `Parishes of the Lower Wyle Valley` VALUES ('Ashcombe Fold', 'Civil parish', " +
          "'1,204', 'Ashcombe', 'Wyle Rural District\\nuntil 1974')",
      ],
      [
        1,
        "SELECT Opening FROM `Regional Chess Results` WHERE White = 'Ilse Varga' AND Opening <> 'Don\\'t' # why",
      ],
      // Another statement with the same effect.
      [
        23,
        "UPDATE `Regatta Medal Table` SET `Total`='5', `Silver`='3' WHERE `Rank`='7' AND `Total` <> 'x'",
      ],
      [10, "SELECT `Source` FROM river_sources WHERE `Rank` = 41"],
      [4, "SELECT COUNT(*) FROM (SELECT DISTINCT Variety FROM orchard_harvest WHERE Week = '3')"],
    ];
    const got = await Promise.all(cases.map(([n, sql]) => grade(n, sql)));
    for (const [k, g] of got.entries()) assert.equal(g.pass, true, `${cases[k][1]}: ${g.reason}`);
  });

  test("the table hash sees the first 1024 bytes of GROUP_CONCAT, as in MySQL", async () => {
    // Line 26's table keeps 195 rows after the gold DELETE: 195 row hashes of 5 characters
    // joined by commas are 1,169 bytes, which MySQL cuts to group_concat_max_len (1024).
    const p = at(26);
    const kept = p.tables[0].rows.filter((r) => r[0] !== "12");
    assert.equal(kept.length, 195);
    assert.equal(tableHash(kept), p.answerMd5);
    const md5 = (x: string) => createHash("md5").update(x).digest("hex");
    const full = kept.map((r) => md5(r.join(",")).slice(0, 5)).sort();
    assert.notEqual(md5(full.join(",")), p.answerMd5);
    // So a row whose hash sorts past the cut is invisible to the grader, in AgentBench as
    // here: deleting it as well still passes (the row of day 1 at Rook Island hashes to
    // fe35b, after the cut at the 171st hash).
    assert.equal(md5("1,Rook Island,4.0,0.2").slice(0, 5), "fe35b");
    assert.ok("fe35b" > full[170]);
    const extra = await grade(
      26,
      "DELETE FROM tide_gauge_readings WHERE `Day` = '12' OR (`Day` = '1' AND Station = 'Rook Island')",
    );
    assert.deepEqual(extra, { pass: true, reason: "ok" });
  });
});

describe("AgentBench DB, answer_md5 and the table hash", () => {
  test("answer_md5 in each form AgentBench writes or computes", () => {
    const h = "b3b31d88471d7906cdb73601c97b4cc1";
    assert.equal(parseAnswerMd5(`[('${h}',)]`), h);
    assert.equal(parseAnswerMd5(`[("${h}",)]`), h);
    assert.equal(parseAnswerMd5(` [ ( '${h.toUpperCase()}' , ) ] `), h);
    assert.equal(parseAnswerMd5(h), h);
    assert.equal(parseAnswerMd5("[(None,)]"), "None");
    const h2 = "00000000000000000000000000000000";
    assert.equal(parseAnswerMd5(`${h}_${h2}`), `${h2}_${h}`);
    for (const bad of ["", "[]", "[('abc',)]", "b3b31d88", `[('${h}',), ('${h}',)]`, "None."]) {
      assert.equal(parseAnswerMd5(bad), undefined, bad);
    }
  });

  test("MySQL's hash: NULLs skipped by CONCAT_WS, an empty table is NULL", () => {
    const md5 = (x: string) => createHash("md5").update(x).digest("hex");
    const row = (x: string) => md5(x).slice(0, 5);
    const [r1, r2] = [row("a,b"), row("1")].sort();
    assert.equal(tableHash([["a", null, "b"], ["1"]]), md5(`${r1},${r2}`));
    assert.equal(tableHash([]), "None");
    assert.equal(tableHash([["a", null, "b"]]), tableHash([["a", "b"]]));
    assert.equal(tableHash([["1"], ["2"]]), tableHash([["2"], ["1"]]));
    assert.equal(tableHash([[1, "x"]]), tableHash([["1", "x"]]));
  });

  test("a malformed answer_md5 names the file, the line and the field", () => {
    const dir = mkdtempSync(join(tmpdir(), "dbbench-"));
    try {
      const lines = readFileSync(file, "utf8").split("\n");
      const rec = JSON.parse(lines[11]);
      rec.answer_md5 = "[('not a digest',)]";
      const bad = join(dir, "bad.jsonl");
      writeFileSync(bad, `${lines[0]}\n${JSON.stringify(rec)}\n`);
      assert.throws(
        () => loadDbBenchSkill({ files: { test: bad } }, { strict: true }),
        (e: Error) =>
          e instanceof DataError &&
          e.message.startsWith(`${bad}:2: field "answer_md5" is not a table hash`),
      );
      const lenient = loadDbBenchSkill({ files: { test: bad } });
      assert.deepEqual(
        lenient.skipped?.map((r) => [r.line, r.reason.slice(0, 38)]),
        [[2, 'field "answer_md5" is not a table hash']],
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("MySQL string syntax for SQLite", () => {
  test("backslash escapes, doubled quotes and # comments", () => {
    assert.equal(mysqlToSqlite("SELECT 1"), "SELECT 1");
    assert.equal(mysqlToSqlite("SELECT 'Don\\'t'"), "SELECT 'Don''t'");
    assert.equal(mysqlToSqlite("SELECT 'a\\nb', 'c''d'"), "SELECT 'a\nb', 'c''d'");
    assert.equal(mysqlToSqlite("SELECT 'a\\\\b'"), "SELECT 'a\\b'");
    assert.equal(mysqlToSqlite('SELECT "x\\"y"'), 'SELECT "x""y"');
    assert.equal(mysqlToSqlite("SELECT 'a%' LIKE 'a\\%'"), "SELECT 'a%' LIKE 'a\\%'");
    assert.equal(mysqlToSqlite("SELECT `a\\b` FROM t # note 'x"), "SELECT `a\\b` FROM t ");
    assert.equal(mysqlToSqlite("SELECT '#' -- it's\nFROM t"), "SELECT '#' -- it's\nFROM t");
    assert.equal(mysqlToSqlite("SELECT 'open\\"), "SELECT 'open\\");
  });
});
