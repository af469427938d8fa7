import { isAbsolute, posix } from "node:path";
import { DEFAULTS, type SandboxOptions } from "./types.ts";

/** SandboxOptions with every limit filled in and every input checked. */
export interface ResolvedOptions {
  command: string[];
  files: { path: string; data: Buffer }[];
  stdin: Buffer | null;
  timeoutMs: number;
  cpuSeconds: number;
  memoryBytes: number;
  maxProcesses: number;
  maxFileBytes: number;
  workdirBytes: number;
  tmpBytes: number;
  maxOutputBytes: number;
  env: Record<string, string>;
  collect: string[];
  readOnlyPaths: string[];
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function fail(msg: string): never {
  throw new Error(`sandbox: ${msg}`);
}

function positiveInt(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!(Number.isSafeInteger(value) && value > 0))
    fail(`${name} must be a positive integer, got ${String(value)}`);
  return value;
}

function noNul(what: string, s: string): void {
  if (s.includes("\0")) fail(`${what} must not contain NUL bytes`);
}

/** A path inside the work dir: relative, no "..", no NUL; returned normalised. */
function workPath(what: string, p: unknown): string {
  if (typeof p !== "string" || p.length === 0) fail(`${what} must be a non-empty string`);
  noNul(what, p);
  if (p.startsWith("/")) fail(`${what} "${p}" must be relative to the work dir, not absolute`);
  const n = posix.normalize(p).replace(/\/+$/, "");
  if (n === "." || n === "" || n === ".." || n.startsWith("../"))
    fail(`${what} "${p}" must name something inside the work dir`);
  return n;
}

export function resolveOptions(opts: SandboxOptions): ResolvedOptions {
  if (opts === null || typeof opts !== "object") fail("options must be an object");
  const { command } = opts;
  if (!Array.isArray(command) || command.length === 0)
    fail("command must be a non-empty array of strings (argv)");
  for (const a of command) {
    if (typeof a !== "string") fail("command must contain only strings");
    noNul("command arguments", a);
  }
  if (command[0] === "" || command[0].includes("="))
    fail(`command[0] "${command[0]}" must be a program name or path without "="`);
  if (opts.network !== undefined && opts.network !== false)
    fail("network must be false: sandboxed programs never get a network");

  const maxFileBytes = positiveInt("maxFileBytes", opts.maxFileBytes, DEFAULTS.maxFileBytes);
  const workdirBytes = positiveInt("workdirBytes", opts.workdirBytes, DEFAULTS.workdirBytes);
  const files: ResolvedOptions["files"] = [];
  let total = 0;
  for (const [p, content] of Object.entries(opts.files ?? {})) {
    const path = workPath("files key", p);
    if (Buffer.byteLength(path) > 255) fail(`files key "${p}" is longer than 255 bytes`);
    let data: Buffer;
    if (typeof content === "string") data = Buffer.from(content, "utf8");
    else if (content instanceof Uint8Array)
      data = Buffer.from(content.buffer, content.byteOffset, content.byteLength);
    else fail(`files["${p}"] must be a string or a Uint8Array`);
    if (data.length > maxFileBytes)
      fail(`files["${p}"] has ${data.length} bytes, more than maxFileBytes (${maxFileBytes})`);
    total += data.length + 4096;
    files.push({ path, data });
  }
  if (total > workdirBytes)
    fail(`files need about ${total} bytes, more than workdirBytes (${workdirBytes})`);

  let stdin: Buffer | null = null;
  if (typeof opts.stdin === "string") stdin = Buffer.from(opts.stdin, "utf8");
  else if (opts.stdin instanceof Uint8Array) stdin = Buffer.from(opts.stdin);
  else if (opts.stdin !== undefined) fail("stdin must be a string or a Uint8Array");

  const env: Record<string, string> = {
    PATH: DEFAULTS.path,
    HOME: "/work",
    LANG: DEFAULTS.lang,
  };
  for (const [k, v] of Object.entries(opts.env ?? {})) {
    if (!ENV_NAME.test(k)) fail(`env name "${k}" is not a valid variable name`);
    if (typeof v !== "string") fail(`env.${k} must be a string`);
    noNul(`env.${k}`, v);
    env[k] = v;
  }

  const collect = (opts.collect ?? []).map((p) => workPath("collect entry", p));

  const readOnlyPaths: string[] = [];
  for (const p of opts.readOnlyPaths ?? []) {
    if (typeof p !== "string" || !isAbsolute(p)) fail("readOnlyPaths entries must be absolute");
    noNul("readOnlyPaths", p);
    const n = posix.normalize(p).replace(/\/+$/, "");
    const top = n.split("/")[1] ?? "";
    if (n === "" || ["work", "tmp", "proc", "dev", "etc"].includes(top))
      fail(`readOnlyPaths entry "${p}" would hide part of the sandbox (/, /work, /tmp, ...)`);
    readOnlyPaths.push(n);
  }

  return {
    command: [...command],
    files,
    stdin,
    timeoutMs: positiveInt("timeoutMs", opts.timeoutMs, DEFAULTS.timeoutMs),
    cpuSeconds: positiveInt("cpuSeconds", opts.cpuSeconds, DEFAULTS.cpuSeconds),
    memoryBytes: positiveInt("memoryBytes", opts.memoryBytes, DEFAULTS.memoryBytes),
    maxProcesses: positiveInt("maxProcesses", opts.maxProcesses, DEFAULTS.maxProcesses),
    maxFileBytes,
    workdirBytes,
    tmpBytes: positiveInt("tmpBytes", opts.tmpBytes, DEFAULTS.tmpBytes),
    maxOutputBytes: positiveInt("maxOutputBytes", opts.maxOutputBytes, DEFAULTS.maxOutputBytes),
    env,
    collect: [...new Set(collect)],
    readOnlyPaths: [...new Set(readOnlyPaths)].sort(),
  };
}
