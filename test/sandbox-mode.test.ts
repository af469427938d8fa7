import assert from "node:assert/strict";
import { test } from "node:test";
import { checkSandbox } from "../src/sandbox/index.ts";
import { modeProblems, pickMode, usernsFix } from "../src/sandbox/mode.ts";

const isRoot = process.getuid?.() === 0;

test("auto picks root as root and rootless otherwise; a bad mode is refused", () => {
  assert.equal(pickMode(), isRoot ? "root" : "rootless");
  assert.equal(pickMode("rootless"), "rootless");
  assert.throws(() => pickMode("user" as "root"), /must be root, rootless or auto, got "user"/);
});

test("the mode that cannot work here is refused with the reason and what to do", async () => {
  const other = isRoot ? "rootless" : "root";
  const c = await checkSandbox({ mode: other });
  assert.equal(c.ok, false);
  assert.equal(c.mode, other);
  assert.match(c.problems.join("; "), isRoot ? /for ordinary users/ : /needs root/);
  assert.match(c.fix, /leave the mode on auto|run as root/);
  assert.deepEqual(modeProblems(other).length > 0, true);
});

test("disabled user namespaces name the sysctl and the command that enables them", () => {
  const fixes = usernsFix([
    "unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone = 0)",
    "user namespaces are disabled (user.max_user_namespaces = 0)",
    "kernel.apparmor_restrict_unprivileged_userns = 1: unprivileged user namespaces get no capabilities",
  ]).join("\n");
  assert.match(fixes, /sudo sysctl -w kernel\.unprivileged_userns_clone=1/);
  assert.match(fixes, /sudo sysctl -w user\.max_user_namespaces=15000/);
  assert.match(fixes, /profile cycleqd-unshare \/usr\/bin\/unshare flags=\(unconfined\)/);
  assert.match(fixes, /apparmor_parser -r/);
  assert.deepEqual(usernsFix([]), []);
});
