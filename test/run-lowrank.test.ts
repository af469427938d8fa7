import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { lowRankFactors, materialiseGguf, openFactors } from "../src/materialise/index.ts";
import { decodeGenome } from "../src/qd/index.ts";
import {
  AUTO_LOWRANK_RANK,
  defaultConfig,
  LOWRANK_ABOVE,
  resolveGenome,
} from "../src/run/config.ts";
import {
  ConfigError,
  ModelEvaluator,
  parseConfig,
  RunStore,
  run,
  validateConfig,
} from "../src/run/index.ts";
import { evaluatorSetup } from "../src/run/model-evaluator.ts";
import { openGguf } from "../src/tensors/gguf.ts";
import { tinyConfig, writeTinyZoo } from "./run-fixtures.ts";

let dir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "cycleqd-run-lowrank-"));
  await writeTinyZoo(dir);
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("low-rank runs (genome: lowrank)", () => {
  test("need a rank and no Gaussian mutation", () => {
    const bad = (over: Record<string, unknown>) => {
      try {
        validateConfig(tinyConfig(dir, { genome: "lowrank", ...over }), dir);
      } catch (e) {
        assert.ok(e instanceof ConfigError, String(e));
        return e.message;
      }
      assert.fail("expected the config to be rejected");
    };
    assert.match(
      bad({ mutation: { rank: "full" } }),
      /genome: lowrank needs a rank.*mutation\.rank/,
    );
    assert.match(bad({ mutation: { rank: 4, method: "gaussian" } }), /Gaussian mutation/);
    assert.match(bad({ genome: "adapter" }), /genome/);
    assert.equal(parseConfig("genome: lowrank\nmutation: {rank: 4}\n").genome, "lowrank");
  });

  test("genome: auto (the default) is low-rank from 1B base parameters, exact below", () => {
    const d = defaultConfig();
    assert.equal(d.genome, "auto");
    assert.equal(resolveGenome(d, 894_848).genome, "exact");
    const big = resolveGenome(d, LOWRANK_ABOVE);
    assert.equal(big.genome, "lowrank");
    assert.equal(big.mutation.rank, AUTO_LOWRANK_RANK);
    const ranked = { ...d, mutation: { ...d.mutation, rank: 16 } };
    assert.equal(resolveGenome(ranked, 8e9).mutation.rank, 16);
    const gaussian = { ...d, mutation: { ...d.mutation, method: "gaussian" as const } };
    assert.equal(resolveGenome(gaussian, 8e9).genome, "exact");
    assert.equal(resolveGenome({ ...d, genome: "exact" }, 8e9).genome, "exact");
  });

  test("children run as adapters on the base, and score as their low-rank models in full", async () => {
    const out = join(dir, "run");
    const config = validateConfig(
      tinyConfig(dir, {
        genome: "lowrank",
        mutation: { rank: 4, wMax: 0.5 },
        generations: 3,
        likelihood: true,
        final: { evaluate: false, writeModel: true },
      }),
      dir,
    );
    await run(config, { out });
    // The adapters were temporary.
    const tmp = join(out, "tmp");
    const left = existsSync(tmp) ? await readdir(tmp) : [];
    assert.deepEqual(left, [], "temporary files left behind");
    assert.ok(existsSync(join(out, "model.gguf")), "the aggregate is written in full");

    const store = await RunStore.open(out, { readonly: true });
    const child = store.children({ withGenomes: true })[0];
    const seed = store.seeds()[1];
    store.close();
    // Each, written in full through lowRankFactors and evaluated as a plain model file,
    // scores what the run recorded for it as an adapter.
    const factorsDir = (await readdir(join(dir, "cache"))).map((d) => join(dir, "cache", d));
    assert.equal(factorsDir.length, 1, "one factor cache entry");
    const factors = lowRankFactors(await openFactors(factorsDir[0]));
    const base = await openGguf(join(dir, "base.gguf"));
    const plain = { ...config, genome: "exact" as const };
    const ev = await ModelEvaluator.create(
      evaluatorSetup(plain, dir, join(dir, "base.gguf"), factorsDir[0]),
    );
    try {
      for (const [name, rec] of [
        ["child", child],
        ["seed", seed],
      ] as const) {
        const path = join(dir, `${name}-full.gguf`);
        const genome = decodeGenome(rec.genome as Uint8Array, factors.layout);
        await materialiseGguf(path, genome, base, factors);
        const r = await ev.evaluate({ name, target: { kind: "file", path }, split: "opt" });
        for (const skill of config.skills) {
          assert.equal(r.scores[skill].score, rec.scores[skill].score, `${name} ${skill}`);
          const d = Math.abs(
            r.scores[skill].meanLogLikelihood - rec.scores[skill].meanLogLikelihood,
          );
          assert.ok(d < 1e-4, `${name} ${skill}: log-likelihood differs by ${d}`);
        }
      }
      // The seed was scored as the adapter its genome gives (rank 4, the base's norms), not
      // as its expert's file.
      const expert = await ev.evaluate({
        name: "expert",
        target: { kind: "file", path: join(dir, `${config.skills[1]}.gguf`) },
        split: "opt",
      });
      const moved = config.skills.some(
        (s) => expert.scores[s].meanLogLikelihood !== seed.scores[s].meanLogLikelihood,
      );
      assert.ok(moved, "the seed scored exactly as its expert's file");
    } finally {
      await ev.close();
      await base.close();
      await factors.close();
    }
  });
});
