/**
 * The sandbox suite and the hostile-answer tests of batched grading again in rootless mode,
 * as an ordinary user. Started as root (as CI
 * is), it reruns test/sandbox.test.ts as the account .ci/run creates; started as an
 * ordinary user, test/sandbox.test.ts itself is already rootless and this file skips.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { findAccount, readableCopy, runAsUser, TEST_USER } from "./helpers/unprivileged.ts";

const isRoot = process.getuid?.() === 0;
const account = isRoot ? findAccount() : null;
const skip = !isRoot
  ? "not root: test/sandbox.test.ts runs rootless itself"
  : account || process.env.CI
    ? false
    : `no account ${TEST_USER} to run the rootless suite as (create it as .ci/run does)`;

test("the sandbox suite passes in rootless mode, as an ordinary user", { skip }, async () => {
  assert.ok(
    account,
    `no account "${TEST_USER}": create one with ` +
      `useradd --system --no-create-home --shell /usr/sbin/nologin ${TEST_USER}`,
  );
  const copy = readableCopy(
    ["src", "test/sandbox.test.ts", "test/grading-hostile.test.ts"],
    account,
  );
  try {
    const r = await runAsUser(
      account,
      copy,
      ["--test", "--test-reporter=tap", "test/sandbox.test.ts", "test/grading-hostile.test.ts"],
      // Plant a fake SSH key in the account's home for the suite to try to read.
      { CI: "true", CYCLEQD_TEST_PLANT_HOME: "1" },
    );
    const out = r.stdout + r.stderr;
    const count = (k: string) => Number(new RegExp(`^# ${k} (\\d+)$`, "m").exec(out)?.[1] ?? NaN);
    assert.equal(r.code, 0, out.slice(-6000));
    assert.equal(count("fail"), 0, out.slice(-6000));
    assert.ok(count("pass") >= 30, `only ${count("pass")} tests passed:\n${out.slice(-3000)}`);
    assert.match(out, /# rootless mode/, "the suite did not run in rootless mode");
  } finally {
    copy.dispose();
  }
});
