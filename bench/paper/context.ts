/** What every part of the paper bench shares. */
import type { ZooCard } from "../../src/zoo/card.ts";
import type { PassEvaluator } from "./evaluate.ts";
import type { PaperSettings } from "./settings.ts";

export interface BenchContext {
  /** The output directory: runs/, models/, evals/ and the report. */
  out: string;
  zooDir: string;
  card: ZooCard;
  settings: PaperSettings;
  ev: PassEvaluator;
  log: (line: string) => void;
  /** Aborted by Ctrl-C: runs stop after the child in flight and can be resumed. */
  signal: AbortSignal;
}

/** Thrown when the bench was interrupted; a rerun continues where it stopped. */
export class Interrupted extends Error {}
