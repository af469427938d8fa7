/** A merge method's parameters: defaults, ranges, and the errors that name what to fix. */
import type { MergeMethod, MergeParams, ParamName } from "./methods.ts";

/** What a caller may set; anything left out takes its default. */
export interface MergeParamsInput {
  weights?: readonly number[];
  lambda?: number;
  density?: number;
  drop?: number;
  /** Required by the DARE methods: every random choice comes from an explicit seed. */
  seed?: number;
  normalize?: boolean;
}

export const DEFAULT_LAMBDA = 1;
export const DEFAULT_DENSITY = 0.5;
export const DEFAULT_DROP = 0.5;

const RANGES: Record<ParamName, { ok: (v: number) => boolean; text: string }> = {
  lambda: { ok: Number.isFinite, text: "a finite number (the scale of the merged task vector)" },
  density: {
    ok: (v) => v > 0 && v <= 1,
    text: "in (0, 1] (the fraction of each task vector kept)",
  },
  drop: { ok: (v) => v >= 0 && v < 1, text: "in [0, 1) (the probability of dropping an entry)" },
  seed: {
    ok: (v) => Number.isInteger(v) && v >= 0 && v <= 0xffffffff,
    text: "an integer in [0, 2^32)",
  },
};

/**
 * Fills in defaults and checks every value for `method` merging `experts` experts. Setting a
 * parameter the method does not read is an error, so a typo never changes a result silently.
 */
export function resolveParams(
  method: MergeMethod,
  input: MergeParamsInput,
  experts: number,
): MergeParams {
  const where = `merge ${method.name}`;
  if (experts < method.minExperts) {
    throw new Error(
      `${where} needs at least ${method.minExperts} expert${method.minExperts === 1 ? "" : "s"}, got ${experts}; add more experts or use ${method.minExperts > 1 ? "task-arithmetic or linear" : "another method"}`,
    );
  }
  for (const name of Object.keys(RANGES) as ParamName[]) {
    const v = input[name];
    if (v === undefined) continue;
    if (!method.params.includes(name)) {
      const uses = method.params.length ? method.params.join(", ") : "only weights and normalize";
      throw new Error(`${where} does not use ${name} (it uses ${uses}); leave ${name} out`);
    }
    if (typeof v !== "number" || !RANGES[name].ok(v)) {
      throw new Error(`${where}: ${name} must be ${RANGES[name].text}, got ${String(v)}`);
    }
  }
  if (method.params.includes("seed") && input.seed === undefined) {
    throw new Error(`${where} draws random drop masks and needs a seed (an integer in [0, 2^32))`);
  }
  const weights = input.weights ?? new Array<number>(experts).fill(1);
  if (!Array.isArray(weights) || weights.length !== experts) {
    throw new Error(
      `${where}: weights has ${Array.isArray(weights) ? weights.length : "no"} values for ${experts} experts; give one weight per expert, in the experts' order`,
    );
  }
  weights.forEach((w, k) => {
    if (typeof w !== "number" || !Number.isFinite(w)) {
      throw new Error(`${where}: weight ${k + 1} must be a finite number, got ${String(w)}`);
    }
  });
  const normalize = input.normalize ?? method.defaultNormalize;
  const sum = weights.reduce((a, b) => a + b, 0);
  const signElecting = method.name === "ties" || method.name === "dare-ties";
  if (normalize && !signElecting && Math.abs(sum) < 1e-8) {
    throw new Error(
      `${where}: the weights sum to ${sum}, so they cannot be normalised; change the weights or turn normalize off`,
    );
  }
  return {
    weights: [...weights],
    lambda: input.lambda ?? DEFAULT_LAMBDA,
    density: input.density ?? DEFAULT_DENSITY,
    drop: input.drop ?? DEFAULT_DROP,
    seed: input.seed ?? 0,
    normalize,
  };
}
