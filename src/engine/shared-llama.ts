/**
 * The llama.cpp instance behind every engine, one per process and GPU setting: started by the
 * first engine that asks for it, counted, disposed when the last engine lets go.
 */
import { getLlama, type Llama, LlamaLogLevel } from "node-llama-cpp";
import { errorMessage, LogBuffer } from "./errors.ts";

/**
 * One llama.cpp instance per process and GPU setting, shared by every engine that asks for it.
 * The native log callback is process-wide: a second instance takes it over and llama.cpp's
 * warnings then go to the console, so engines share one instance (and one log buffer).
 */
export interface SharedLlama {
  key: string;
  llama: Llama;
  logs: LogBuffer;
  refs: number;
}

const sharedLlamas = new Map<string, Promise<SharedLlama>>();

export async function acquireLlama(gpu: "auto" | false): Promise<SharedLlama> {
  const key = String(gpu);
  for (;;) {
    let entry = sharedLlamas.get(key);
    if (entry === undefined) {
      entry = startLlama(key, gpu);
      sharedLlamas.set(key, entry);
      entry.catch(() => sharedLlamas.delete(key));
    }
    const shared = await entry;
    // The last engine may have released it while this call waited.
    if (shared.llama.disposed || (shared.refs === 0 && sharedLlamas.get(key) !== entry)) continue;
    shared.refs++;
    return shared;
  }
}

export async function releaseLlama(shared: SharedLlama): Promise<void> {
  shared.refs--;
  if (shared.refs > 0) return;
  sharedLlamas.delete(shared.key);
  await shared.llama.dispose();
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
    return { key, llama, logs, refs: 0 };
  } catch (e) {
    throw new Error(
      `could not start llama.cpp (node-llama-cpp): ${errorMessage(e)}. ` +
        'Reinstall dependencies with "npm ci"; getLlama must run from a file, not "node -e".',
    );
  }
}
