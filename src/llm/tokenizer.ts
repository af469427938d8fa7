/**
 * The tiny models' character/byte tokenizer, laid out as a SentencePiece ("llama") vocabulary
 * so that llama.cpp tokenizes text to exactly the ids this module produces.
 *
 * llama.cpp's SPM tokenizer replaces every space by "▁" (U+2581), splits the text into UTF-8
 * characters, merges adjacent symbols only when their concatenation is itself a token (never
 * here: every normal token is one character), and spells any character missing from the
 * vocabulary as its UTF-8 bytes with the `<0xXX>` tokens. So: " " → "▁", each printable ASCII
 * character and "\n" → its own token, everything else → byte tokens.
 */

/** llama.cpp token types, as stored in `tokenizer.ggml.token_type`. */
export const TokenType = {
  normal: 1,
  unknown: 2,
  control: 3,
  byte: 6,
} as const;

export const UNK_ID = 0;
export const BOS_ID = 1;
export const EOS_ID = 2;
const FIRST_BYTE_ID = 3;
const SPACE_ID = FIRST_BYTE_ID + 256;
/** SentencePiece's whitespace marker. */
const SPM_SPACE = "\u2581";

export interface Vocabulary {
  tokens: string[];
  types: number[];
  scores: number[];
}

function buildVocabulary(): Vocabulary {
  const tokens = ["<unk>", "<s>", "</s>"];
  const types: number[] = [TokenType.unknown, TokenType.control, TokenType.control];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
    types.push(TokenType.byte);
  }
  tokens.push(SPM_SPACE);
  types.push(TokenType.normal);
  for (let c = 0x21; c <= 0x7e; c++) {
    tokens.push(String.fromCharCode(c));
    types.push(TokenType.normal);
  }
  tokens.push("\n");
  types.push(TokenType.normal);
  // Every normal token is a single character, so SPM never merges and scores cannot matter.
  return { tokens, types, scores: tokens.map(() => 0) };
}

const VOCAB = buildVocabulary();

/** Byte value → token id for bytes that are a whole character with their own token. */
const CHAR_ID = new Int32Array(256).fill(-1);
/** Token id → the bytes it decodes to (empty for control/unknown tokens). */
const TOKEN_BYTES: Uint8Array[] = [];
for (let id = 0; id < VOCAB.tokens.length; id++) {
  const type = VOCAB.types[id];
  if (type === TokenType.byte) {
    TOKEN_BYTES.push(Uint8Array.of(id - FIRST_BYTE_ID));
  } else if (type === TokenType.normal) {
    const text = VOCAB.tokens[id] === SPM_SPACE ? " " : VOCAB.tokens[id];
    const bytes = Buffer.from(text, "utf8");
    TOKEN_BYTES.push(new Uint8Array(bytes));
    CHAR_ID[bytes[0]] = id;
  } else {
    TOKEN_BYTES.push(new Uint8Array(0));
  }
}

/** The vocabulary, for the GGUF writer (`tokenizer.ggml.tokens/token_type/scores`). */
export function vocabulary(): Vocabulary {
  return { tokens: [...VOCAB.tokens], types: [...VOCAB.types], scores: [...VOCAB.scores] };
}

/** Number of tokens in the vocabulary. */
export const VOCAB_SIZE = VOCAB.tokens.length;

export interface EncodeOptions {
  /** Prepend `<s>` (default false). */
  bos?: boolean;
  /** Append `</s>` (default false). */
  eos?: boolean;
}

/**
 * Text → token ids, as llama.cpp tokenizes it with `add_space_prefix = false` and special
 * tokens not parsed (the text "<s>" is three characters, not BOS).
 */
export function encode(text: string, opts: EncodeOptions = {}): Int32Array {
  if (typeof text !== "string") throw new Error(`encode needs a string, got ${typeof text}`);
  const bytes = Buffer.from(text, "utf8");
  const out = new Int32Array(bytes.length + 2);
  let n = 0;
  if (opts.bos) out[n++] = BOS_ID;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    // A literal U+2581 is the same symbol as an escaped space.
    if (b === 0xe2 && bytes[i + 1] === 0x96 && bytes[i + 2] === 0x81) {
      out[n++] = SPACE_ID;
      i += 2;
      continue;
    }
    const id = CHAR_ID[b];
    out[n++] = id >= 0 ? id : FIRST_BYTE_ID + b;
  }
  if (opts.eos) out[n++] = EOS_ID;
  return out.slice(0, n);
}

/** The bytes that a sequence of token ids spells; control and unknown tokens spell nothing. */
export function decodeBytes(ids: ArrayLike<number>): Uint8Array {
  const parts: Uint8Array[] = [];
  let total = 0;
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (!(Number.isInteger(id) && id >= 0 && id < VOCAB_SIZE)) {
      throw new Error(`decode: token id ${id} at position ${i} is outside 0..${VOCAB_SIZE - 1}`);
    }
    parts.push(TOKEN_BYTES[id]);
    total += TOKEN_BYTES[id].length;
  }
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

const utf8 = new TextDecoder("utf-8");

/** Token ids → text (invalid UTF-8 byte runs become U+FFFD). */
export function decode(ids: ArrayLike<number>): string {
  return utf8.decode(decodeBytes(ids));
}
