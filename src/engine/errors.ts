/**
 * What an engine failure message says: the cause's own message, and the llama.cpp warnings and
 * errors logged meanwhile (node-llama-cpp hands those to the logger, not to the error).
 */
import { LlamaLogLevel } from "node-llama-cpp";

/** How many llama.cpp log lines to keep for error messages. */
const LOG_KEEP = 40;

/** Recent llama.cpp warnings and errors, to quote when an operation fails. */
export class LogBuffer {
  private lines: string[] = [];
  private total = 0;

  add(level: LlamaLogLevel, message: string): void {
    if (
      level !== LlamaLogLevel.warn &&
      level !== LlamaLogLevel.error &&
      level !== LlamaLogLevel.fatal
    ) {
      return;
    }
    const line = message.trim();
    if (line.length === 0) return;
    this.lines.push(line);
    this.total++;
    if (this.lines.length > LOG_KEEP) this.lines.shift();
  }

  mark(): number {
    return this.total;
  }

  /** Lines logged since `mark`, formatted for an error message (empty when none). */
  async since(mark: number): Promise<string> {
    // node-llama-cpp delivers log lines asynchronously, after the failing call has returned.
    await new Promise((resolve) => setTimeout(resolve, 20));
    const count = Math.min(this.total - mark, this.lines.length);
    if (count <= 0) return "";
    return ` (llama.cpp: ${this.lines.slice(-count).join("; ")})`;
  }
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
