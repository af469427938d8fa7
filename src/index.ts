/**
 * cycleqd as a library: the QD core (ask/tell over archives), runs with resume, aggregation,
 * baseline merges, the inference engine, the skills and the tensor files.
 */
export * from "./engine/index.ts";
export * from "./materialise/index.ts";
export * from "./merge/index.ts";
export * from "./qd/index.ts";
export { aggregateRun, exportElite, type WrittenModel } from "./run/export.ts";
export * from "./run/index.ts";
export { checkSandbox, runSandboxed } from "./sandbox/index.ts";
export { createMiniSkills, evaluateSkills } from "./skills/index.ts";
export { openGguf, writeGguf } from "./tensors/gguf.ts";
export { openTensorFile } from "./tensors/open.ts";
export { openSafetensors, writeSafetensors } from "./tensors/safetensors.ts";
export { Rng } from "./util/rng.ts";
