/** GGUF (llama.cpp's model format): typed metadata, a lazy reader and a streaming writer. */
export { type GgufReader, type GgufTensorInfo, openGguf } from "./gguf-read.ts";
export {
  type GgmlTypeInfo,
  type GgufArray,
  type GgufArrayItem,
  type GgufMetadata,
  type GgufValue,
  type GgufValueType,
  ggmlTypeById,
  ggmlTypeByName,
  gguf,
  type PlainValue,
  plainMetadata,
  plainValue,
} from "./gguf-types.ts";
export { type WriteGgufOptions, writeGguf } from "./gguf-write.ts";
