/**
 * Engine benchmarks: `node --import tsx bench/engine.ts [section...]` runs the named
 * sections (all by default) and prints throughputs and ratios; nothing here asserts times.
 */
import { benchInference } from "./engine-infer.ts";
import { benchTraining } from "./train.ts";

const sections: Record<string, () => Promise<unknown>> = {
  training: () => benchTraining(),
  inference: () => benchInference(),
};

const wanted = process.argv.slice(2);
for (const name of wanted) {
  if (!(name in sections)) {
    console.error(`unknown section "${name}"; sections: ${Object.keys(sections).join(", ")}`);
    process.exit(2);
  }
}
for (const name of wanted.length > 0 ? wanted : Object.keys(sections)) await sections[name]();
