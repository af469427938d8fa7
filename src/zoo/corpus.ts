/**
 * The zoo's pretraining data, drawn from a seed.
 *
 * Stage 1 teaches the base to copy: a tiny model that cannot copy names and numbers from its
 * prompt garbles every value a skill asks for. As a stream, 40% of the documents are copy
 * tasks (half real words from the skills' vocabularies, half invented ones), 15% format/extract
 * tasks, 20% generic Q/A and 25% plain sentences; trained on answers only, the plain sentences
 * drop out and the rest keep their ratio. Stage 2 mixes in Q/A of the skills' `pretrain` split
 * (never train/opt/test) so the base gains the weak partial skill that experts refine.
 *
 * Documents use the skills' prompt format ("Q: ...\nA: answer\n"). They become either one
 * token stream (each document BOS + text + EOS) or (prompt, answer) examples with BOS before
 * the prompt, as llama.cpp sees a prompt (it prepends BOS).
 */
import type { Example, TrainData } from "../llm/batches.ts";
import { encode } from "../llm/tokenizer.ts";
import type { Skill } from "../skills/types.ts";
import { DIRS, FILES, FUNCTION_NAMES, LOG_WORDS, NAMES, WORDS } from "../skills/vocab.ts";
import { Rng } from "../util/rng.ts";

export const DOC_KINDS = ["copy", "format", "qa", "prose"] as const;
export type DocKind = (typeof DOC_KINDS)[number];

/** Stage-1 document shares of the stream form (DESIGN: copy-heavy pretraining). */
export const STAGE1_MIX: Readonly<Record<DocKind, number>> = Object.freeze({
  copy: 0.4,
  format: 0.15,
  qa: 0.2,
  prose: 0.25,
});

/** The same without plain sentences, for training on answers only. */
export const ANSWER_MIX: Readonly<Record<DocKind, number>> = Object.freeze({
  copy: 0.55,
  format: 0.2,
  qa: 0.25,
  prose: 0,
});

export interface Doc {
  kind: DocKind | "skill";
  text: string;
}

const pick = <T>(rng: Rng, xs: ArrayLike<T>): T => xs[rng.int(xs.length)];
const num = (rng: Rng, n = 100) => String(rng.int(n));

const CONSONANTS = "bcdfghjklmnprstvwz";
const VOWELS = "aeiou";
const UPPER_WORDS = ["SELECT", "FROM", "WHERE", "ORDER", "LIMIT", "COUNT", "GROUP"];

/** A pronounceable made-up word, so copying cannot rely on knowing the word. */
export function inventedWord(rng: Rng): string {
  const syllables = 1 + rng.int(3);
  let w = "";
  for (let i = 0; i < syllables; i++) w += pick(rng, CONSONANTS) + pick(rng, VOWELS);
  if (rng.uniform() < 0.5) w += pick(rng, CONSONANTS);
  if (rng.uniform() < 0.1) w += String(rng.int(10));
  return w;
}

/** A real value of the kind the skills ask to copy: names, words, numbers, paths, files. */
function realItem(rng: Rng): string {
  switch (rng.int(8)) {
    case 0:
      return pick(rng, FUNCTION_NAMES);
    case 1:
      return pick(rng, WORDS);
    case 2:
      return pick(rng, NAMES);
    case 3:
      return pick(rng, DIRS);
    case 4:
      return pick(rng, FILES);
    case 5:
      return `${pick(rng, DIRS)}/${pick(rng, FILES)}`;
    case 6:
      return pick(rng, LOG_WORDS);
    default:
      return num(rng);
  }
}

/** Half real items, half invented (sometimes shaped like a file or a path). */
function item(rng: Rng): string {
  if (rng.uniform() < 0.5) return realItem(rng);
  const w = inventedWord(rng);
  const r = rng.uniform();
  if (r < 0.15) return `${w}.${pick(rng, ["txt", "log", "csv", "md"])}`;
  if (r < 0.25) return `${inventedWord(rng)}/${w}`;
  if (r < 0.35) return num(rng, 1000);
  return w;
}

function items(rng: Rng, lo: number, hi: number): string[] {
  const n = lo + rng.int(hi - lo + 1);
  return Array.from({ length: n }, () => item(rng));
}

const qa = (q: string, a: string) => `Q: ${q}\nA: ${a}\n`;

function copyDoc(rng: Rng): string {
  const xs = items(rng, 1, 5);
  const x = xs.join(" ");
  switch (rng.int(8)) {
    case 0:
    case 1:
      return qa(`repeat ${x}`, x);
    case 2:
      return qa(`Repeat after me: ${x}`, x);
    case 3:
      return qa(`Say ${x}.`, x);
    case 4:
      return qa(`Copy this: ${x}`, x);
    case 5:
      return qa(`Write ${xs[0]} twice.`, `${xs[0]} ${xs[0]}`);
    case 6:
      return qa(`Echo ${x} back.`, x);
    default:
      return qa(`Type the words ${x}.`, x);
  }
}

function formatDoc(rng: Rng): string {
  const [a, b, c] = [item(rng), item(rng), item(rng)];
  switch (rng.int(12)) {
    case 0:
      return qa(`Put ${a} in quotes.`, `"${a}"`);
    case 1:
      return qa(`Put ${a} in single quotes.`, `'${a}'`);
    case 2:
      return qa(`Join ${a} and ${b} with a slash.`, `${a}/${b}`);
    case 3:
      return qa(`Call ${a} with ${b}.`, `${a}(${b})`);
    case 4:
      return qa(`What is the first word of: ${a} ${b} ${c}`, a);
    case 5:
      return qa(`What is the last word of: ${a} ${b} ${c}`, c);
    case 6: {
      const n = num(rng);
      return qa(`Find the number in: the ${pick(rng, WORDS)} has ${n} ${b}`, n);
    }
    case 7:
      return qa(`Set ${a} to ${b}.`, `${a} = ${b};`);
    case 8:
      return qa(`Wrap ${a} in parentheses.`, `(${a})`);
    case 9:
      return qa(`List ${a}, ${b} and ${c} with commas.`, `${a}, ${b}, ${c}`);
    case 10:
      return qa(`Write ${a} in capitals.`, a.toUpperCase());
    default: {
      const kw = pick(rng, UPPER_WORDS);
      return qa(`Write the keyword ${kw} then ${a}.`, `${kw} ${a}`);
    }
  }
}

const FACTS: readonly [string, string][] = [
  ["What color is a lemon?", "yellow"],
  ["What color is the sky?", "blue"],
  ["What color is grass?", "green"],
  ["What is the opposite of hot?", "cold"],
  ["What is the opposite of up?", "down"],
  ["What is the opposite of open?", "closed"],
  ["How many legs does a cat have?", "4"],
  ["How many days are in a week?", "7"],
  ["What do bees make?", "honey"],
  ["Where do fish live?", "in water"],
  ["What falls from clouds?", "rain"],
  ["What do you use to write?", "a pen"],
];

function qaDoc(rng: Rng): string {
  const a = rng.int(50);
  const b = rng.int(50);
  switch (rng.int(7)) {
    case 0:
      return qa(`What is ${a} plus ${b}?`, String(a + b));
    case 1:
      return qa(`What comes after ${a}?`, String(a + 1));
    case 2:
      return qa(`Which is larger, ${a} or ${b}?`, String(Math.max(a, b)));
    case 3:
      return qa(`Is ${a} less than ${b}?`, a < b ? "yes" : "no");
    case 4: {
      const xs = items(rng, 1, 5);
      return qa(`How many words are in: ${xs.join(" ")}`, String(xs.length));
    }
    case 5: {
      const w = pick(rng, WORDS);
      return qa(`How many letters are in ${w}?`, String(w.length));
    }
    default: {
      const [q, ans] = pick(rng, FACTS);
      return qa(q, ans);
    }
  }
}

const VERBS = ["found", "saw", "moved", "painted", "sold", "lost", "carried", "kept", "liked"];
const PREPS = ["near", "by", "under", "behind", "beside", "in"];

function sentence(rng: Rng): string {
  const who = pick(rng, NAMES);
  const Who = who[0].toUpperCase() + who.slice(1);
  switch (rng.int(4)) {
    case 0:
      return `${Who} ${pick(rng, VERBS)} the ${pick(rng, WORDS)} ${pick(rng, PREPS)} the ${pick(rng, WORDS)}.`;
    case 1:
      return `The ${pick(rng, WORDS)} had ${num(rng)} ${pick(rng, WORDS)}s.`;
    case 2:
      return `${Who} keeps ${pick(rng, FILES)} in the ${pick(rng, DIRS)} folder.`;
    default:
      return `${Who} wrote ${num(rng)} lines and then said ${pick(rng, LOG_WORDS)}.`;
  }
}

function proseDoc(rng: Rng): string {
  const n = 1 + rng.int(2);
  return `${Array.from({ length: n }, () => sentence(rng)).join(" ")}\n`;
}

const MAKERS: Record<DocKind, (rng: Rng) => string> = {
  copy: copyDoc,
  format: formatDoc,
  qa: qaDoc,
  prose: proseDoc,
};

function pickKind(rng: Rng, mix: Readonly<Record<DocKind, number>>): DocKind {
  const total = DOC_KINDS.reduce((s, k) => s + mix[k], 0);
  let u = rng.uniform() * total;
  for (const k of DOC_KINDS) {
    u -= mix[k];
    if (u < 0) return k;
  }
  return DOC_KINDS[DOC_KINDS.length - 1];
}

/** One stage-1 document. */
export function generalDoc(rng: Rng, mix = STAGE1_MIX): Doc {
  const kind = pickKind(rng, mix);
  return { kind, text: MAKERS[kind](rng) };
}

/** Held-out copy items (prompt, expected answer) to measure a base's copying. */
export function copyProbes(seed: number, n: number): { prompt: string; answer: string }[] {
  // Its own generator, so probes are never the training documents of the same seed.
  const rng = new Rng((seed ^ 0x5eed_c0de) >>> 0);
  return Array.from({ length: n }, () => {
    const text = copyDoc(rng);
    const cut = text.indexOf("\nA: ") + 4;
    return { prompt: text.slice(0, cut), answer: text.slice(cut, -1) };
  });
}

export interface CorpusStats {
  docs: Record<string, number>;
  /** Tokens per document kind (BOS/EOS included). */
  tokens: Record<string, number>;
  total: number;
}

/**
 * How documents become training data: one token stream with loss everywhere, or
 * (prompt, answer) examples with the loss on the answer only. The answer form made copying
 * emerge at about 2.2M tokens here; the stream had not started copying by 2.9M.
 */
export type CorpusForm = "stream" | "answers";
export const CORPUS_FORMS: readonly CorpusForm[] = ["stream", "answers"];

export interface Corpus {
  data: TrainData;
  stats: CorpusStats;
}

/** A Q/A document as an example: BOS + "Q: ...\nA: " is the prompt, "answer\n" the answer. */
export function toExample(text: string): Example {
  const cut = text.indexOf("\nA: ");
  if (cut < 0) throw new Error(`not a Q/A document: ${JSON.stringify(text.slice(0, 60))}`);
  return {
    prompt: encode(text.slice(0, cut + 4), { bos: true }),
    answer: encode(text.slice(cut + 4)),
  };
}

function assemble(docs: Iterable<Doc>, targetTokens: number, form: CorpusForm): Corpus {
  const stats: CorpusStats = { docs: {}, tokens: {}, total: 0 };
  const count = (d: Doc, n: number) => {
    stats.docs[d.kind] = (stats.docs[d.kind] ?? 0) + 1;
    stats.tokens[d.kind] = (stats.tokens[d.kind] ?? 0) + n;
    stats.total += n;
  };
  if (form === "answers") {
    const examples: Example[] = [];
    for (const d of docs) {
      const ex = toExample(d.text);
      examples.push(ex);
      count(d, ex.prompt.length + ex.answer.length);
      if (stats.total >= targetTokens) break;
    }
    return { data: { kind: "examples", examples }, stats };
  }
  const chunks: Int32Array[] = [];
  for (const d of docs) {
    const ids = encode(d.text, { bos: true, eos: true });
    chunks.push(ids);
    count(d, ids.length);
    if (stats.total >= targetTokens) break;
  }
  const tokens = new Int32Array(stats.total);
  let o = 0;
  for (const c of chunks) {
    tokens.set(c, o);
    o += c.length;
  }
  return { data: { kind: "stream", tokens }, stats };
}

function checkArgs(targetTokens: number, form: CorpusForm): void {
  if (!(Number.isInteger(targetTokens) && targetTokens > 0)) {
    throw new Error(`corpus size must be a positive integer of tokens, got ${targetTokens}`);
  }
  if (!CORPUS_FORMS.includes(form)) {
    throw new Error(`corpus form must be "stream" or "answers", got ${String(form)}`);
  }
}

/** The general documents' mix for a form (plain sentences have no answer to learn). */
export function mixFor(form: CorpusForm): Readonly<Record<DocKind, number>> {
  return form === "answers" ? ANSWER_MIX : STAGE1_MIX;
}

/** The stage-1 (copying) data of about `targetTokens` tokens. */
export function stage1Corpus(
  seed: number,
  targetTokens: number,
  form: CorpusForm = "answers",
): Corpus {
  checkArgs(targetTokens, form);
  const rng = new Rng(seed);
  const mix = mixFor(form);
  return assemble(
    (function* () {
      for (;;) yield generalDoc(rng, mix);
    })(),
    targetTokens,
    form,
  );
}

/** Q/A documents of every skill's `pretrain` split: the only skill data the base sees. */
export function skillPretrainDocs(skills: readonly Skill[]): Doc[][] {
  return skills.map((s) =>
    s.problems("pretrain").map((p) => ({ kind: "skill", text: `${s.format(p)}${p.reference}\n` })),
  );
}

/**
 * The stage-2 data: a share `skillShare` of documents are skill Q/A (skills in turn, each
 * split's problems drawn at random), the rest stage-1 documents from a different generator.
 */
export function stage2Corpus(
  seed: number,
  targetTokens: number,
  skills: readonly Skill[],
  skillShare = 0.4,
  form: CorpusForm = "answers",
): Corpus {
  checkArgs(targetTokens, form);
  if (!(skillShare >= 0 && skillShare <= 1)) {
    throw new Error(`skillShare must be in [0, 1], got ${skillShare}`);
  }
  const pools = skillPretrainDocs(skills);
  if (skillShare > 0 && pools.some((p) => p.length === 0)) {
    throw new Error("every skill needs problems in its pretrain split for the stage-2 corpus");
  }
  const rng = new Rng((seed * 7919 + 17) >>> 0);
  const mix = mixFor(form);
  let turn = 0;
  return assemble(
    (function* () {
      for (;;) {
        if (pools.length > 0 && rng.uniform() < skillShare) {
          const pool = pools[turn++ % pools.length];
          yield pool[rng.int(pool.length)];
        } else {
          yield generalDoc(rng, mix);
        }
      }
    })(),
    targetTokens,
    form,
  );
}
