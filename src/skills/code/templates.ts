/**
 * Templates of the miniature coding skill: an English spec of a small function, answered by
 * a one-line Python definition `def f(x): return ...`, checked by generated asserts.
 */
import type { Rng } from "../../util/rng.ts";
import { pick, sample } from "../splits.ts";
import { FUNCTION_NAMES, WORDS } from "../vocab.ts";

export type Values = Record<string, string | number>;

export interface CodeTemplate {
  id: string;
  /** Draws the values that identify a problem (function name, parameter, constants). */
  draw(rng: Rng): Values;
  /** The signature, e.g. "calc(x)". */
  sig(v: Values): string;
  /** Phrasings of what the function does, each ending a sentence "... that <clause>.". */
  clauses: ((v: Values) => string)[];
  /** The one-line body after "def sig: ". */
  body(v: Values): string;
  /** Assert statements exercising the reference behaviour. */
  tests(v: Values, rng: Rng): string[];
}

const NUM_PARAMS = ["x", "n", "a", "num", "val"];
const STR_PARAMS = ["s", "text", "word", "name"];
const LIST_PARAMS = ["xs", "nums", "items", "vals"];
const PAIRS = ["a,b", "x,y", "m,n", "p,q"];

/** Python literal of a JS value (ASCII strings, numbers, booleans, arrays of those). */
export function py(v: unknown): string {
  if (typeof v === "boolean") return v ? "True" : "False";
  if (typeof v === "number") return String(v);
  if (typeof v === "string") return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(py).join(", ")}]`;
  throw new Error(`no Python literal for ${String(v)}`);
}

const int = (rng: Rng, lo: number, hi: number) => lo + rng.int(hi - lo + 1);
const call = (f: string | number, args: unknown[]) => `${f}(${args.map(py).join(", ")})`;
const eqTest = (f: string | number, args: unknown[], want: unknown) =>
  `assert ${call(f, args)} == ${py(want)}`;

/** A template of one numeric parameter and a constant k: f(p) = op(p, k). */
function numeric(
  id: string,
  kRange: [number, number],
  clauses: ((v: Values) => string)[],
  body: (p: string, k: number) => string,
  fn: (x: number, k: number) => unknown,
  inputs: (k: number, rng: Rng) => number[],
): CodeTemplate {
  return {
    id,
    draw: (rng) => ({
      f: pick(rng, FUNCTION_NAMES),
      p: pick(rng, NUM_PARAMS),
      k: int(rng, kRange[0], kRange[1]),
    }),
    sig: (v) => `${v.f}(${v.p})`,
    clauses,
    body: (v) => body(String(v.p), Number(v.k)),
    tests: (v, rng) => inputs(Number(v.k), rng).map((x) => eqTest(v.f, [x], fn(x, Number(v.k)))),
  };
}

const spread = (_k: number, rng: Rng) => [0, int(rng, 1, 49), int(rng, 50, 99), int(rng, 100, 300)];
const around = (k: number, rng: Rng) => [k, k + 1, k - 1, int(rng, 0, 99)];

function pair(id: string, clauses: ((v: Values) => string)[], fn: "max" | "min"): CodeTemplate {
  return {
    id,
    draw: (rng) => ({ f: pick(rng, FUNCTION_NAMES), ab: pick(rng, PAIRS) }),
    sig: (v) => `${v.f}(${String(v.ab).replace(",", ", ")})`,
    clauses,
    body: (v) => `return ${fn}(${String(v.ab).replace(",", ", ")})`,
    tests: (v, rng) => {
      const cases: [number, number][] = [
        [3, 8],
        [9, 2],
        [5, 5],
        [int(rng, -20, -1), int(rng, 0, 99)],
      ];
      return cases.map(([a, b]) => eqTest(v.f, [a, b], Math[fn](a, b)));
    },
  };
}

function stringTemplate(
  id: string,
  clauses: ((v: Values) => string)[],
  body: (s: string, v: Values) => string,
  fn: (s: string, v: Values) => string,
  withWord = false,
): CodeTemplate {
  return {
    id,
    draw: (rng) => {
      const v: Values = { f: pick(rng, FUNCTION_NAMES), s: pick(rng, STR_PARAMS) };
      if (withWord) v.w = pick(rng, WORDS);
      return v;
    },
    sig: (v) => `${v.f}(${v.s})`,
    clauses,
    body: (v) => body(String(v.s), v),
    tests: (v, rng) => {
      const inputs = [...sample(rng, WORDS, 2), "Ab", ""];
      return inputs.map((x) => eqTest(v.f, [x], fn(x, v)));
    },
  };
}

function listTemplate(
  id: string,
  clauses: ((v: Values) => string)[],
  body: (xs: string) => string,
  fn: (xs: number[]) => number,
  allowEmpty: boolean,
): CodeTemplate {
  return {
    id,
    draw: (rng) => ({ f: pick(rng, FUNCTION_NAMES), xs: pick(rng, LIST_PARAMS) }),
    sig: (v) => `${v.f}(${v.xs})`,
    clauses,
    body: (v) => body(String(v.xs)),
    tests: (v, rng) => {
      const lists: number[][] = [[4, 9, 1]];
      for (let i = 0; i < 2; i++) {
        lists.push(Array.from({ length: int(rng, 1, 5) }, () => int(rng, 0, 99)));
      }
      lists.push(allowEmpty ? [] : [7]);
      return lists.map((xs) => eqTest(v.f, [xs], fn(xs)));
    },
  };
}

export const CODE_TEMPLATES: CodeTemplate[] = [
  numeric(
    "add",
    [1, 99],
    [
      (v) => `returns ${v.p} plus ${v.k}`,
      (v) => `adds ${v.k} to ${v.p}`,
      (v) => `returns ${v.p} increased by ${v.k}`,
    ],
    (p, k) => `return ${p} + ${k}`,
    (x, k) => x + k,
    spread,
  ),
  numeric(
    "sub",
    [1, 99],
    [
      (v) => `returns ${v.p} minus ${v.k}`,
      (v) => `subtracts ${v.k} from ${v.p}`,
      (v) => `returns ${v.p} decreased by ${v.k}`,
    ],
    (p, k) => `return ${p} - ${k}`,
    (x, k) => x - k,
    spread,
  ),
  numeric(
    "mul",
    [2, 19],
    [
      (v) => `returns ${v.p} times ${v.k}`,
      (v) => `multiplies ${v.p} by ${v.k}`,
      (v) => `returns ${v.k} times ${v.p}`,
    ],
    (p, k) => `return ${p} * ${k}`,
    (x, k) => x * k,
    spread,
  ),
  numeric(
    "mod",
    [2, 19],
    [
      (v) => `returns the remainder of ${v.p} divided by ${v.k}`,
      (v) => `returns ${v.p} modulo ${v.k}`,
    ],
    (p, k) => `return ${p} % ${k}`,
    (x, k) => x % k,
    (k, rng) => [k, k + 1, int(rng, 20, 99), int(rng, 100, 300)],
  ),
  numeric(
    "gt",
    [0, 99],
    [
      (v) => `returns True if ${v.p} is greater than ${v.k}`,
      (v) => `checks whether ${v.p} is above ${v.k}`,
      (v) => `tells if ${v.p} exceeds ${v.k}`,
    ],
    (p, k) => `return ${p} > ${k}`,
    (x, k) => x > k,
    around,
  ),
  numeric(
    "lt",
    [0, 99],
    [
      (v) => `returns True if ${v.p} is less than ${v.k}`,
      (v) => `checks whether ${v.p} is below ${v.k}`,
      (v) => `tells if ${v.p} is under ${v.k}`,
    ],
    (p, k) => `return ${p} < ${k}`,
    (x, k) => x < k,
    around,
  ),
  pair(
    "max2",
    [
      (v) => `returns the larger of ${String(v.ab).replace(",", " and ")}`,
      (v) => `returns the maximum of ${String(v.ab).replace(",", " and ")}`,
      (v) => `returns whichever of ${String(v.ab).replace(",", " and ")} is bigger`,
    ],
    "max",
  ),
  pair(
    "min2",
    [
      (v) => `returns the smaller of ${String(v.ab).replace(",", " and ")}`,
      (v) => `returns the minimum of ${String(v.ab).replace(",", " and ")}`,
      (v) => `returns whichever of ${String(v.ab).replace(",", " and ")} is less`,
    ],
    "min",
  ),
  stringTemplate(
    "upper",
    [
      (v) => `returns ${v.s} in upper case`,
      (v) => `converts ${v.s} to capital letters`,
      (v) => `returns ${v.s} uppercased`,
    ],
    (s) => `return ${s}.upper()`,
    (x) => x.toUpperCase(),
  ),
  stringTemplate(
    "reverse",
    [
      (v) => `returns ${v.s} reversed`,
      (v) => `returns ${v.s} backwards`,
      (v) => `reverses the string ${v.s}`,
    ],
    (s) => `return ${s}[::-1]`,
    (x) => x.split("").reverse().join(""),
  ),
  stringTemplate(
    "suffix",
    [
      (v) => `returns ${v.s} followed by ${v.w}`,
      (v) => `appends the word ${v.w} to ${v.s}`,
      (v) => `adds ${v.w} to the end of ${v.s}`,
    ],
    (s, v) => `return ${s} + ${py(v.w)}`,
    (x, v) => x + v.w,
    true,
  ),
  listTemplate(
    "sum",
    [
      (v) => `returns the sum of the list ${v.xs}`,
      (v) => `adds up the numbers in ${v.xs}`,
      (v) => `returns the total of ${v.xs}`,
    ],
    (xs) => `return sum(${xs})`,
    (xs) => xs.reduce((s, x) => s + x, 0),
    true,
  ),
  listTemplate(
    "len",
    [
      (v) => `returns the length of ${v.xs}`,
      (v) => `returns how many items ${v.xs} has`,
      (v) => `counts the elements of ${v.xs}`,
    ],
    (xs) => `return len(${xs})`,
    (xs) => xs.length,
    true,
  ),
  listTemplate(
    "first",
    [
      (v) => `returns the first element of ${v.xs}`,
      (v) => `returns the first item of ${v.xs}`,
      (v) => `gives the first entry of ${v.xs}`,
    ],
    (xs) => `return ${xs}[0]`,
    (xs) => xs[0],
    false,
  ),
  {
    id: "cond",
    draw: (rng) => {
      const [w1, w2] = sample(rng, WORDS, 2);
      return { f: pick(rng, FUNCTION_NAMES), p: pick(rng, NUM_PARAMS), k: int(rng, 0, 99), w1, w2 };
    },
    sig: (v) => `${v.f}(${v.p})`,
    clauses: [
      (v) => `returns ${v.w1} if ${v.p} is greater than ${v.k}, else ${v.w2}`,
      (v) => `returns ${v.w1} when ${v.p} > ${v.k} and ${v.w2} otherwise`,
    ],
    body: (v) => `return ${py(v.w1)} if ${v.p} > ${v.k} else ${py(v.w2)}`,
    tests: (v, rng) =>
      around(Number(v.k), rng).map((x) => eqTest(v.f, [x], x > Number(v.k) ? v.w1 : v.w2)),
  },
];

/** Sentence heads around the clause. */
export const CODE_HEADS: ((sig: string, clause: string) => string)[] = [
  (sig, clause) => `Write a function ${sig} that ${clause}.`,
  (sig, clause) => `Define ${sig} that ${clause}.`,
  (sig, clause) => `Write ${sig}, which ${clause}.`,
];
