/**
 * A tiny `llama` GGUF whose greedy output is known in advance: each listed character predicts
 * a fixed successor (another character, or EOS). Every token's embedding carries a large value
 * in one "state" dimension that dominates the residual stream (the random layers are small),
 * and the output row of the successor reads that dimension.
 */
import { writeGguf } from "../../src/tensors/gguf.ts";
import { tinyLlamaConfig, tinyLlamaMetadata, tinyLlamaTensors, tinyVocab } from "./tiny-gguf.ts";

export const EOS = "</s>";

/**
 * `successors` maps a character to the character (or EOS) that follows it. Tokens not listed
 * share a default state that predicts `fallback`.
 */
export async function writeRuleModel(
  path: string,
  successors: Record<string, string>,
  fallback: string,
): Promise<void> {
  const cfg = tinyLlamaConfig({ nEmbd: 32, nLayer: 2, nHead: 4, nFf: 64, std: 0.02, seed: 5 });
  const vocab = tinyVocab();
  const idOf = (s: string): number => {
    const token = s === " " ? "▁" : s;
    const id = vocab.tokens.indexOf(token);
    if (id < 0) throw new Error(`rule model: no token for ${JSON.stringify(s)}`);
    return id;
  };
  const keys = Object.keys(successors);
  if (keys.length + 1 > cfg.nEmbd) throw new Error("rule model: too many rules");
  const tensors = tinyLlamaTensors(cfg);
  const data = (name: string) => {
    const t = tensors.find((x) => x.name === name);
    if (!(t?.data instanceof Float32Array)) throw new Error(`rule model: no tensor ${name}`);
    return t.data;
  };
  const embd = data("token_embd.weight");
  const out = data("output.weight");
  const e = cfg.nEmbd;
  const defaultState = keys.length;
  for (let id = 0; id < cfg.nVocab; id++) embd[id * e + defaultState] += 10;
  keys.forEach((ch, state) => {
    const id = idOf(ch);
    embd[id * e + defaultState] -= 10;
    embd[id * e + state] += 10;
    out[idOf(successors[ch]) * e + state] = 4;
  });
  out[idOf(fallback) * e + defaultState] = 4;
  await writeGguf(path, tinyLlamaMetadata(cfg), tensors);
}
