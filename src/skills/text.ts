/** Small text helpers shared by the skills. */

/** The answer part of a generation: up to the first stop string, without outer blanks. */
export function extractAnswer(text: string, stop: readonly string[]): string {
  let end = text.length;
  for (const s of stop) {
    if (s === "") continue;
    const i = text.indexOf(s);
    if (i >= 0 && i < end) end = i;
  }
  return text.slice(0, end).trim();
}

/** True when every character is printable ASCII or a newline. */
export function isPrintableAscii(s: string): boolean {
  return /^[\x20-\x7e\n]*$/.test(s);
}

/** Cuts a long string for a reason message. */
export function clip(s: string, max = 80): string {
  const one = s.replace(/\s+/g, " ").trim();
  return one.length <= max ? one : `${one.slice(0, max - 3)}...`;
}

/** Lines with trailing blanks removed, blank lines at the ends dropped. */
export function normaliseOutput(s: string): string {
  return s
    .split("\n")
    .map((l) => l.trimEnd())
    .join("\n")
    .trim();
}

/** A random hex token the graded program cannot guess. */
export function nonce(): string {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** True when a run ended on its wall clock or its CPU-time limit: both mean "too slow". */
export function ranTooLong(res: {
  timedOut: boolean;
  reason?: string;
  signal?: string | null;
}): boolean {
  return res.timedOut || res.signal === "SIGXCPU" || /cpu time/i.test(res.reason ?? "");
}
