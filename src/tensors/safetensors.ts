/** Safetensors: single files and Hugging Face sharded checkpoints; a lazy reader and a writer. */
export {
  type HeaderEntry,
  INDEX_FILE,
  type ParsedHeader,
  parseHeader,
  SafetensorsError,
} from "./safetensors-format.ts";
export { openSafetensors, type SafetensorsReader } from "./safetensors-read.ts";
export {
  type ShardedWriteOptions,
  type ShardedWriteResult,
  writeSafetensors,
  writeShardedSafetensors,
} from "./safetensors-write.ts";
