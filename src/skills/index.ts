/** Skills: problems in disjoint splits, prompts, and graders that execute model output. */
import { createCodeSkill } from "./code/skill.ts";
import { createDbSkill } from "./db/skill.ts";
import type { MiniOptions } from "./mini.ts";
import { createOsSkill } from "./os/skill.ts";
import type { Skill } from "./types.ts";

export { type Environment, type EpisodeOptions, type EpisodeResult, runEpisodes } from "./agent.ts";
export {
  type ChatConfig,
  type ChatFormatter,
  chatFormatter,
  chatFormatterFor,
  readChatFormatter,
} from "./chat.ts";
export { type CodeProblem, createCodeSkill } from "./code/skill.ts";
export { createDbSkill, type DbProblem } from "./db/skill.ts";
export { type EvaluateOptions, evaluateSkills } from "./evaluate.ts";
export { type DbBenchProblem, loadDbBenchSkill } from "./loaders/dbbench.ts";
export { type JsonlOptions, type JsonlProblem, loadJsonlSkill } from "./loaders/generic.ts";
export { loadMbppSkill, type MbppProblem, mbppSplitOf } from "./loaders/mbpp.ts";
export {
  loadOsInteractionSkill,
  OS_EPISODE_STOP,
  type OsInteractionProblem,
  osEpisode,
} from "./loaders/os-interaction.ts";
export { DataError } from "./loaders/records.ts";
export type { SplitSources } from "./loaders/splits.ts";
export { MINI_STOP, MINI_TERMINATOR, type MiniOptions, miniPrompt } from "./mini.ts";
export { createOsSkill, type OsProblem } from "./os/skill.ts";
export { resolveRunner } from "./runner.ts";
export { DEFAULT_SIZES, type SplitSizes } from "./splits.ts";
export * from "./types.ts";

/** The three miniature skills of the demo: code, os and db, all from one seed. */
export function createMiniSkills(opts: MiniOptions = {}): Skill[] {
  return [createCodeSkill(opts), createOsSkill(opts), createDbSkill(opts)] as Skill[];
}
