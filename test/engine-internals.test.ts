import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "node:test";
import { checkNodeLlamaCppVersion, nodeLlamaCppVersion } from "../src/engine/internals.ts";

test("the node-llama-cpp internals refuse any version but the one they were tested for", () => {
  for (const other of ["3.21.0", "3.22.0", "4.0.0", "^3.21.1", "(unknown version)"]) {
    assert.throws(
      () => checkNodeLlamaCppVersion(other),
      (e: Error) => {
        assert.ok(e.message.startsWith(`node-llama-cpp ${other} is installed`), e.message);
        assert.match(e.message, /written and tested for node-llama-cpp 3\.21\.1 only/);
        assert.match(e.message, /will not patch another version blind/);
        assert.match(e.message, /Install node-llama-cpp 3\.21\.1 \("npm ci"/);
        return true;
      },
    );
  }
  assert.doesNotThrow(() => checkNodeLlamaCppVersion("3.21.1"));
});

test("the installed node-llama-cpp and package.json's pin are the tested version", async () => {
  assert.doesNotThrow(() => checkNodeLlamaCppVersion(nodeLlamaCppVersion()));
  const pkg = JSON.parse(await readFile(new URL("../package.json", import.meta.url), "utf8"));
  assert.doesNotThrow(() => checkNodeLlamaCppVersion(pkg.dependencies["node-llama-cpp"]));
});
