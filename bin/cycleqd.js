#!/usr/bin/env node
// The `cycleqd` command. An installed package runs the compiled JavaScript in dist/; a
// checkout (which has src/) runs the TypeScript sources through tsx, so edits need no build.
import { existsSync } from "node:fs";

const source = new URL("../src/cli/main.ts", import.meta.url);
let main;
if (existsSync(source)) {
  const { register } = await import("tsx/esm/api");
  register();
  ({ main } = await import(source.href));
} else {
  ({ main } = await import("../dist/cli/main.js"));
}
process.exitCode = await main(process.argv.slice(2));
