/**
 * Where a run's seed factors live and how it gets them: from the shared cache, or computed
 * into it, so runs, exports and the demo over the same models and rank share one entry.
 */
import { homedir } from "node:os";
import { join } from "node:path";
import { createGemm } from "../linalg/index.ts";
import { loadOrComputeFactors, type SeedFactors } from "../materialise/factors.ts";
import { lowRankFactors } from "../materialise/lora.ts";
import type { RunConfig } from "./config.ts";

/** The seed-factor cache: config, $CYCLEQD_CACHE_DIR, $XDG_CACHE_HOME or ~/.cache. */
export function factorCacheDir(config: RunConfig): string {
  if (config.cacheDir) return config.cacheDir;
  if (process.env.CYCLEQD_CACHE_DIR) return process.env.CYCLEQD_CACHE_DIR;
  const xdg = process.env.XDG_CACHE_HOME || join(homedir(), ".cache");
  return join(xdg, "cycleqd", "factors");
}

/**
 * The seed factors of `experts` over `base` (GGUF paths) at the run's rank; for a low-rank
 * run, computed without residuals and seen as low-rank mode sees them (`lowRankFactors`), so
 * that final and exported models are the ones its adapters ran.
 */
export async function runFactors(
  config: RunConfig,
  base: string,
  experts: string[],
): Promise<SeedFactors> {
  const lowRank = config.genome === "lowrank";
  const gemm = await createGemm({ threads: config.engine.threads, warn: () => {} });
  try {
    const factors = await loadOrComputeFactors(base, experts, factorCacheDir(config), {
      rank: config.mutation.rank,
      gemm,
      ...(lowRank ? { residual: false } : {}),
    });
    return lowRank ? lowRankFactors(factors) : factors;
  } finally {
    await gemm.dispose();
  }
}
