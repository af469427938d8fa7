/**
 * Request validation and stop-string search shared by every engine, so that all of them
 * reject the same bad input with the same message and cut text at the same place.
 */
import type { GenerateRequest, ScoreRequest } from "./types.ts";

export function validateGenerateRequests(requests: GenerateRequest[]): void {
  if (!Array.isArray(requests)) throw new Error("generate needs an array of requests");
  requests.forEach((r, i) => {
    const at = `generate request ${i}`;
    if (r === null || typeof r !== "object") throw new Error(`${at} must be an object`);
    if (typeof r.prompt !== "string") throw new Error(`${at}: prompt must be a string`);
    if (!(Number.isSafeInteger(r.maxTokens) && r.maxTokens > 0)) {
      throw new Error(`${at}: maxTokens must be a positive integer, got ${String(r.maxTokens)}`);
    }
    if (r.stop !== undefined) {
      if (!Array.isArray(r.stop)) throw new Error(`${at}: stop must be an array of strings`);
      for (const s of r.stop) {
        if (typeof s !== "string" || s.length === 0) {
          throw new Error(`${at}: every stop string must be a non-empty string`);
        }
      }
    }
    checkSpecial(r.special, at);
  });
}

export function validateScoreRequests(requests: ScoreRequest[]): void {
  if (!Array.isArray(requests)) throw new Error("score needs an array of requests");
  requests.forEach((r, i) => {
    const at = `score request ${i}`;
    if (r === null || typeof r !== "object") throw new Error(`${at} must be an object`);
    if (typeof r.prompt !== "string") throw new Error(`${at}: prompt must be a string`);
    if (typeof r.continuation !== "string" || r.continuation.length === 0) {
      throw new Error(`${at}: continuation must be a non-empty string`);
    }
    checkSpecial(r.special, at);
  });
}

function checkSpecial(special: unknown, at: string): void {
  if (special !== undefined && typeof special !== "boolean") {
    throw new Error(`${at}: special must be a boolean, got ${String(special)}`);
  }
}

export function validateParallel(value: unknown, what: string): number {
  if (!(typeof value === "number" && Number.isSafeInteger(value) && value > 0)) {
    throw new Error(`${what} must be a positive integer, got ${String(value)}`);
  }
  return value;
}

/**
 * Index of the earliest stop string in `text` that starts at or after `from`, or -1. Callers
 * that grow the text step by step pass `from` just far enough back to catch a stop string
 * that the newest characters completed.
 */
export function findStop(text: string, stops: readonly string[], from = 0): number {
  let best = -1;
  for (const s of stops) {
    const i = text.indexOf(s, Math.max(0, from));
    if (i >= 0 && (best < 0 || i < best)) best = i;
  }
  return best;
}
