/**
 * A worker's local, content-addressed cache of run inputs (DIR/sha256/HEX), every file
 * verified by its sha256 before use. A file comes from the coordinator's path where this
 * machine can read it (a shared filesystem), else from Redis where the coordinator put it.
 * Each run gets a folder of named links into the cache (DIR/runs/DIGEST), because loaders
 * know files by their names (a GGUF, the factor folder's manifest, a data file's extension).
 */
import { existsSync } from "node:fs";
import { copyFile, mkdir, rename, rm, symlink, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { Redis } from "ioredis";
import type { EvaluatorSetup } from "../run/model-evaluator.ts";
import type { SkillSource } from "../run/skill-sources.ts";
import { keys, sha256 } from "./job.ts";
import { fileSha256, type InputFile, type RunSpec } from "./run-spec.ts";

/** A worker cannot take a run's jobs; the message says why and what to do. */
export class Refusal extends Error {
  constructor(message: string) {
    super(message);
    this.name = "Refusal";
  }
}

const describe = (f: InputFile) =>
  f.role === "base"
    ? "the base model"
    : f.role.startsWith("expert:")
      ? `seed expert ${f.role.slice(7)}`
      : f.role === "factors"
        ? `the seed factors' ${f.name}`
        : `skill ${f.role.slice(5)}'s data file ${f.name}`;

export class InputCache {
  /** Blobs hashed by this process: each is checked once per process, not per job. */
  private readonly verified = new Set<string>();
  private readonly prepared = new Map<string, Promise<EvaluatorSetup>>();

  constructor(readonly dir: string) {}

  private blobPath(sha: string): string {
    return join(this.dir, "sha256", sha);
  }

  /**
   * The cached copy of `f`, fetched and verified first if needed. Throws a Refusal when it
   * can be had from neither the shared path nor Redis, or its bytes do not match.
   */
  async file(f: InputFile, redis: Redis): Promise<string> {
    const dest = this.blobPath(f.sha256);
    if (existsSync(dest)) {
      if (this.verified.has(f.sha256) || (await fileSha256(dest)) === f.sha256) {
        this.verified.add(f.sha256);
        return dest;
      }
      await rm(dest, { force: true }); // a damaged entry is fetched again
    }
    await mkdir(dirname(dest), { recursive: true });
    const part = `${dest}.part-${process.pid}-${Math.random().toString(36).slice(2)}`;
    let fromPath: string | null = null;
    if (existsSync(f.path)) {
      await copyFile(f.path, part);
      const got = await fileSha256(part);
      if (got === f.sha256) fromPath = f.path;
      else {
        await rm(part, { force: true });
        if (!f.inRedis) {
          throw new Refusal(
            `${describe(f)} at ${f.path} on this machine has sha256 ${got}, but the run's has ${f.sha256}; ` +
              "give this worker the run's own file at that path",
          );
        }
      }
    }
    if (fromPath === null) {
      if (!f.inRedis) {
        throw new Refusal(
          `${describe(f)} (${f.path}, ${f.size} bytes) cannot be read on this machine and is too large to travel through Redis; ` +
            "make that path readable here (a shared filesystem), with the same file",
        );
      }
      const bytes = await redis.getBuffer(keys.blob(f.sha256));
      if (bytes === null || sha256(bytes) !== f.sha256) {
        throw new Refusal(
          `${describe(f)} (sha256 ${f.sha256}) is ${bytes === null ? "missing from" : "damaged in"} Redis; ` +
            "resume the run from its coordinator to publish its inputs again",
        );
      }
      await writeFile(part, bytes);
    }
    await rename(part, dest);
    this.verified.add(f.sha256);
    return dest;
  }

  /**
   * The evaluator setup of a run with every path on this machine: the base, the seed
   * factors and the skills' data files linked by name into DIR/runs/DIGEST. Prepared once
   * per run and process.
   */
  setupFor(spec: RunSpec, redis: Redis): Promise<EvaluatorSetup> {
    let p = this.prepared.get(spec.digest);
    if (!p) {
      p = this.prepare(spec, redis);
      this.prepared.set(spec.digest, p);
      p.catch(() => this.prepared.delete(spec.digest));
    }
    return p;
  }

  /** The cached copy of one of a run's model files (a seed expert), by sha256. */
  async model(spec: RunSpec, sha: string, redis: Redis): Promise<string> {
    const f = spec.files.find((x) => x.sha256 === sha && x.role.startsWith("expert:"));
    if (!f)
      throw new Refusal(
        `the job names a model (sha256 ${sha}) that run ${spec.runId} does not have`,
      );
    return this.link(spec, f, join("models", f.role.slice(7)), redis);
  }

  private async link(spec: RunSpec, f: InputFile, sub: string, redis: Redis): Promise<string> {
    const blob = await this.file(f, redis);
    const path = join(this.dir, "runs", spec.digest, sub, f.name);
    if (!existsSync(path)) {
      await mkdir(dirname(path), { recursive: true });
      await symlink(blob, path).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== "EEXIST") throw e;
      });
    }
    return path;
  }

  private async prepare(spec: RunSpec, redis: Redis): Promise<EvaluatorSetup> {
    const base = spec.files.find((f) => f.role === "base");
    if (!base) throw new Refusal(`run ${spec.runId} published no base model`);
    const basePath = await this.link(spec, base, "base", redis);
    let factorsDir = join(this.dir, "runs", spec.digest, "factors");
    for (const f of spec.files.filter((x) => x.role === "factors")) {
      factorsDir = dirname(await this.link(spec, f, "factors", redis));
    }
    // Data files: the coordinator's paths become this machine's copies.
    const local = new Map<string, string>();
    for (const [i, f] of spec.files.entries()) {
      if (f.role.startsWith("data:"))
        local.set(f.path, await this.link(spec, f, `data/${i}`, redis));
    }
    const skillSources: Record<string, SkillSource> = {};
    for (const [name, src] of Object.entries(spec.setup.skillSources)) {
      skillSources[name] = localSource(name, src, local);
    }
    const tmpDir = join(this.dir, "tmp", String(process.pid));
    await mkdir(tmpDir, { recursive: true });
    return { ...spec.setup, skillSources, tmpDir, basePath, factorsDir };
  }
}

function localSource(name: string, src: SkillSource, local: Map<string, string>): SkillSource {
  const map = (p: string) => local.get(p) ?? p;
  const out: SkillSource = { ...src };
  if (src.files) {
    out.files = Object.fromEntries(Object.entries(src.files).map(([k, v]) => [k, v.map(map)]));
  }
  if (src.pool) out.pool = src.pool.map(map);
  // AgentBench OS records name check scripts beside their data file: those are read where
  // the coordinator has them, which a worker can only do through a shared filesystem.
  if (src.kind === "os-interaction") {
    const first = src.files ? Object.values(src.files).flat()[0] : src.pool?.[0];
    const scripts = src.scriptDir ?? (first ? dirname(first) : undefined);
    if (scripts && !existsSync(scripts)) {
      throw new Refusal(
        `skill ${name} reads its check scripts from ${scripts}, which this machine cannot see; mount it here at the same path`,
      );
    }
    out.scriptDir = scripts;
  }
  return out;
}
