/**
 * The llama.cpp instance behind every engine, one per process and GPU setting: started by the
 * first engine that asks for it and kept for the process's lifetime.
 */
import { getLlama, type Llama, LlamaLogLevel } from "node-llama-cpp";
import { errorMessage, LogBuffer } from "./errors.ts";

/**
 * One llama.cpp instance per process and GPU setting, shared by every engine that asks for it
 * and never disposed here. The native log callback is process-wide: a second instance, or one
 * started after another was disposed, does not get it, and llama.cpp's warnings then go
 * straight to stderr (one line per tensor of every LoRA adapter, say). node-llama-cpp
 * disposes the instance at exit.
 */
export interface SharedLlama {
  key: string;
  llama: Llama;
  logs: LogBuffer;
}

const sharedLlamas = new Map<string, Promise<SharedLlama>>();

export async function acquireLlama(gpu: "auto" | false): Promise<SharedLlama> {
  const key = String(gpu);
  let entry = sharedLlamas.get(key);
  if (entry === undefined) {
    entry = startLlama(key, gpu);
    sharedLlamas.set(key, entry);
    entry.catch(() => sharedLlamas.delete(key));
  }
  return entry;
}

async function startLlama(key: string, gpu: "auto" | false): Promise<SharedLlama> {
  const logs = new LogBuffer();
  try {
    // build "never": a missing or broken binary must fail here, not start a compile.
    // maxThreads 0: each context then uses exactly the threads it asks for.
    const llama = await getLlama({
      build: "never",
      gpu,
      maxThreads: 0,
      logLevel: LlamaLogLevel.warn,
      logger: (level, message) => logs.add(level, message),
    });
    return { key, llama, logs };
  } catch (e) {
    throw new Error(
      `could not start llama.cpp (node-llama-cpp): ${errorMessage(e)}. ` +
        'Reinstall dependencies with "npm ci"; getLlama must run from a file, not "node -e".',
    );
  }
}
