/**
 * Closed vocabularies shared by every split of the miniature skills. A tiny character-level
 * model learns to copy these values from the prompt; splits differ only in how they combine.
 */

/** Identifiers for Python functions. */
export const FUNCTION_NAMES = [
  "calc",
  "solve",
  "helper",
  "compute",
  "convert",
  "measure",
  "adjust",
  "update",
  "score",
  "rate",
  "step",
  "pick",
  "apply",
  "make",
  "build",
  "check",
  "shift",
  "scale",
  "bump",
  "tweak",
  "fix",
  "grow",
  "trim",
  "mix",
  "tally",
  "judge",
  "fold",
  "walk",
  "spin",
  "label",
] as const;

/** Short lowercase words: string constants, grep patterns, table values. */
export const WORDS = [
  "apple",
  "river",
  "stone",
  "cloud",
  "tiger",
  "lemon",
  "piano",
  "robot",
  "candle",
  "forest",
  "silver",
  "planet",
  "window",
  "garden",
  "rocket",
  "pepper",
  "island",
  "mirror",
  "dragon",
  "coffee",
] as const;

/** Person-like names: table keys and owners. */
export const NAMES = [
  "ann",
  "bob",
  "cara",
  "dan",
  "eve",
  "finn",
  "gus",
  "hana",
  "ivan",
  "jade",
  "kai",
  "lola",
  "max",
  "nina",
  "otto",
  "pia",
  "quinn",
  "rex",
  "sam",
  "tara",
  "uma",
  "vic",
  "wes",
  "xena",
  "yuri",
  "zoe",
  "luna",
  "milo",
  "nora",
  "omar",
] as const;

/** Directory names. */
export const DIRS = [
  "data",
  "logs",
  "docs",
  "backup",
  "tmp",
  "src",
  "old",
  "archive",
  "notes",
  "music",
] as const;

/** File names. */
export const FILES = [
  "notes.txt",
  "log.txt",
  "app.log",
  "todo.txt",
  "report.txt",
  "data.csv",
  "readme.md",
  "list.txt",
  "error.log",
  "words.txt",
  "names.txt",
  "plan.txt",
  "items.csv",
  "server.log",
  "memo.txt",
  "draft.md",
  "scores.csv",
  "tasks.txt",
  "ideas.txt",
  "events.log",
] as const;

/** Words that fill log-like lines, also used as grep patterns. */
export const LOG_WORDS = [
  "error",
  "warn",
  "info",
  "start",
  "stop",
  "login",
  "logout",
  "disk",
  "user",
  "retry",
  "open",
  "close",
] as const;

export type Vocab = readonly string[];
