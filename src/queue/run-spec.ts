/**
 * A run as the coordinator publishes it to Redis for its workers: the evaluator setup
 * without this machine's paths, every input file (base model, seed experts, seed factors,
 * skill data) with its sha256, size and path, the versions that produced it, and a digest
 * of all of it. Small files also go into Redis itself, content-addressed, so that a worker
 * without the coordinator's filesystem can still fetch them.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { basename, join, relative } from "node:path";
import type { Redis } from "ioredis";
import { nodeLlamaCppVersion } from "../engine/internals.ts";
import { PACKAGE_ROOT } from "../run/config.ts";
import type { EvaluatorSetup } from "../run/model-evaluator.ts";
import { dataFiles } from "../run/skill-sources.ts";
import { listFiles } from "../util/files.ts";
import { keys, sha256 } from "./job.ts";

/** Files larger than this are not put into Redis: workers read them from a shared path. */
export const PUBLISH_MAX_BYTES = 256 * 1024 * 1024;

/** What must match between a coordinator and a worker for their scores to agree. */
export interface Versions {
  cycleqd: string;
  nodeLlamaCpp: string;
}

export interface InputFile {
  /** "base", "expert:K", "factors" or "data:SKILL". */
  role: string;
  /** The name a worker gives its copy (factors: the file's path inside the factor folder). */
  name: string;
  /** The coordinator's path: read directly where a shared filesystem shows the same file. */
  path: string;
  sha256: string;
  size: number;
  /** Its bytes are in Redis under `keys.blob(sha256)`. */
  inRedis: boolean;
}

/** The evaluator setup minus local paths; a worker fills them in from its cache. */
export type PortableSetup = Omit<EvaluatorSetup, "tmpDir" | "basePath" | "factorsDir">;

export interface RunSpec {
  runId: string;
  versions: Versions;
  setup: PortableSetup;
  files: InputFile[];
  /** sha256 over versions, setup and the files' roles, names and hashes. */
  digest: string;
}

let versions: Versions | undefined;

/** This installation's cycleqd and node-llama-cpp versions. */
export async function localVersions(): Promise<Versions> {
  if (!versions) {
    const pkg = JSON.parse(await readFile(join(PACKAGE_ROOT, "package.json"), "utf8"));
    versions = { cycleqd: String(pkg.version), nodeLlamaCpp: nodeLlamaCppVersion() };
  }
  return versions;
}

/** The digest of a spec's contents (paths and transport left out: they differ by machine). */
export function specDigest(spec: Omit<RunSpec, "digest">): string {
  const files = spec.files.map((f) => [f.role, f.name, f.sha256, f.size]);
  return sha256(JSON.stringify({ versions: spec.versions, setup: spec.setup, files }));
}

/** The sha256 of a file's bytes (as `sha256sum` prints it). */
export async function fileSha256(path: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 22 })) h.update(chunk);
  return h.digest("hex");
}

async function describeFile(
  role: string,
  name: string,
  path: string,
  maxBytes: number,
): Promise<InputFile> {
  const [info, sha] = await Promise.all([stat(path), fileSha256(path)]);
  return { role, name, path, sha256: sha, size: info.size, inRedis: info.size <= maxBytes };
}

/**
 * Publishes a run for remote workers: hashes every input, uploads those up to
 * `maxBytes` (default PUBLISH_MAX_BYTES) that Redis does not hold yet, and writes the spec
 * under the run's key. `experts` are the seed experts' GGUF paths in skill order.
 */
export async function publishRun(
  redis: Redis,
  runId: string,
  setup: EvaluatorSetup,
  experts: readonly string[],
  maxBytes = PUBLISH_MAX_BYTES,
): Promise<RunSpec> {
  const { tmpDir: _t, basePath, factorsDir, ...portable } = setup;
  const describe = (role: string, name: string, path: string) =>
    describeFile(role, name, path, maxBytes);
  const files: InputFile[] = [await describe("base", basename(basePath), basePath)];
  for (const [k, path] of experts.entries()) {
    files.push(await describe(`expert:${k}`, basename(path), path));
  }
  for (const path of await listFiles(factorsDir)) {
    files.push(await describe("factors", relative(factorsDir, path), path));
  }
  for (const [skill, src] of Object.entries(setup.skillSources)) {
    for (const path of dataFiles(src))
      files.push(await describe(`data:${skill}`, basename(path), path));
  }
  for (const f of files) {
    if (!f.inRedis) continue;
    const key = keys.blob(f.sha256);
    if (!(await redis.exists(key))) await redis.set(key, await readFile(f.path));
  }
  const body = { runId, versions: await localVersions(), setup: portable, files };
  const spec: RunSpec = { ...body, digest: specDigest(body) };
  await redis.set(keys.run(runId), JSON.stringify(spec));
  return spec;
}

/** A run's spec as published, or null when Redis holds none for it. */
export async function readRunSpec(redis: Redis, runId: string): Promise<RunSpec | null> {
  const text = await redis.get(keys.run(runId));
  return text === null ? null : (JSON.parse(text) as RunSpec);
}
