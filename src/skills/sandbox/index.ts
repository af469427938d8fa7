/**
 * Runs untrusted programs (what a model wrote) in a throw-away sandbox: namespaces, a
 * read-only system, size-capped private /work and /tmp, no network, a uid of its own
 * without capabilities, resource limits and a wall clock that kills the whole tree.
 */
export { type CheckOptions, checkSandbox, type SandboxCheck } from "./check.ts";
export { runSandboxed, type SandboxRunOptions } from "./run.ts";
export {
  DEFAULTS as SANDBOX_DEFAULTS,
  SandboxError,
  type SandboxOptions,
  type SandboxResult,
  type SandboxTool,
} from "./types.ts";
export { runUnsandboxed } from "./unsandboxed.ts";
