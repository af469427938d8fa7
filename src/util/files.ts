/** Files on disk. */
import { readdir } from "node:fs/promises";
import { join } from "node:path";

/** Every file under `dir`, recursively, as paths joined to `dir`, sorted. */
export async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await listFiles(p)));
    else if (e.isFile()) out.push(p);
  }
  return out.sort();
}
