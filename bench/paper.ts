/**
 * The CycleQD paper's main table and ablations in miniature, on a zoo: base and experts,
 * merging baselines (average, task arithmetic, TIES, DARE), a mixed-data fine-tune, CycleQD
 * and its cumulative ablation, with a paired bootstrap of CycleQD against each baseline.
 * Writes paper.md, paper.json and paper.svg. `npm run bench:paper -- --help`.
 */
import { ConfigError } from "../src/run/config.ts";
import { main } from "./paper/main.ts";
import { UsageError } from "./paper/settings.ts";

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (e) {
  // Mistakes in the flags or the settings say what to fix; anything else keeps its stack.
  if (!(e instanceof UsageError || e instanceof ConfigError)) throw e;
  console.error(e.message);
  process.exitCode = 2;
}
