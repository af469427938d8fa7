/**
 * Just enough tar to move files into and out of a sandbox through a pipe: the sandbox's
 * own `tar`, running as the sandbox user, unpacks and packs them, so nothing privileged
 * ever touches a path the sandboxed program could have replaced with a symlink.
 */

const BLOCK = 512;

function octal(buf: Buffer, off: number, len: number, value: number): void {
  buf.write(`${value.toString(8).padStart(len - 1, "0")}\0`, off, len, "ascii");
}

function header(name: string, size: number, mode: number, type: string): Buffer {
  const h = Buffer.alloc(BLOCK);
  let prefix = "";
  let base = name;
  if (Buffer.byteLength(name) > 100) {
    // ustar splits long names at a slash: prefix (155) + name (100).
    const cut = name.lastIndexOf("/", 155);
    if (cut <= 0 || Buffer.byteLength(name.slice(cut + 1)) > 100)
      throw new Error(`sandbox: file name too long for the work dir transfer: ${name}`);
    prefix = name.slice(0, cut);
    base = name.slice(cut + 1);
  }
  h.write(base, 0, 100, "utf8");
  octal(h, 100, 8, mode);
  octal(h, 108, 8, 0);
  octal(h, 116, 8, 0);
  octal(h, 124, 12, size);
  octal(h, 136, 12, Math.floor(Date.now() / 1000));
  h.fill(" ", 148, 156);
  h.write(type, 156, 1, "ascii");
  h.write("ustar\u000000", 257, 8, "ascii");
  h.write(prefix, 345, 155, "utf8");
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, 8, "ascii");
  return h;
}

/** A tar stream of regular files; a file starting with "#!" is made executable. */
export function packTar(files: { path: string; data: Buffer }[]): Buffer {
  const parts: Buffer[] = [];
  for (const { path, data } of files) {
    const exec = data.length >= 2 && data[0] === 0x23 && data[1] === 0x21;
    parts.push(header(path, data.length, exec ? 0o755 : 0o644, "0"), data);
    const pad = (BLOCK - (data.length % BLOCK)) % BLOCK;
    if (pad) parts.push(Buffer.alloc(pad));
  }
  parts.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(parts);
}

function field(buf: Buffer, off: number, len: number): string {
  const end = buf.indexOf(0, off);
  return buf.toString("utf8", off, end === -1 || end > off + len ? off + len : end);
}

/**
 * Reads a tar stream chunk by chunk, keeping regular files and at most `maxBytes` of each.
 * Handles ustar and GNU long names, which is what GNU tar writes by default.
 */
export class TarReader {
  readonly files: Record<string, string> = {};
  truncated = false;
  private pending: Buffer = Buffer.alloc(0);
  private remaining = 0;
  private padding = 0;
  private current: { name: string; chunks: Buffer[]; kept: number; kind: string } | null = null;
  private longName: string | null = null;
  private done = false;

  constructor(private readonly maxBytes: number) {}

  push(chunk: Buffer): void {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    while (!this.done) {
      if (this.current) {
        if (this.remaining > 0) {
          if (this.pending.length === 0) return;
          const take = Math.min(this.remaining, this.pending.length);
          this.body(this.pending.subarray(0, take));
          this.pending = this.pending.subarray(take);
          this.remaining -= take;
          if (this.remaining > 0) return;
        }
        if (this.pending.length < this.padding) return;
        this.pending = this.pending.subarray(this.padding);
        this.finish();
        continue;
      }
      if (this.pending.length < BLOCK) return;
      const h = this.pending.subarray(0, BLOCK);
      this.pending = this.pending.subarray(BLOCK);
      if (h.every((b) => b === 0)) {
        this.done = true;
        return;
      }
      const size = Number.parseInt(field(h, 124, 12).trim() || "0", 8);
      let name = field(h, 0, 100);
      const magic = h.toString("ascii", 257, 263);
      if (magic === "ustar\0") {
        const prefix = field(h, 345, 155);
        if (prefix) name = `${prefix}/${name}`;
      }
      if (this.longName !== null) {
        name = this.longName;
        this.longName = null;
      }
      const kind = String.fromCharCode(h[156] || 0x30);
      this.current = { name, chunks: [], kept: 0, kind };
      this.remaining = size;
      this.padding = (BLOCK - (size % BLOCK)) % BLOCK;
    }
  }

  private body(data: Buffer): void {
    const c = this.current;
    if (!c || (c.kind !== "0" && c.kind !== "L")) return;
    const limit = c.kind === "L" ? 4096 : this.maxBytes;
    const room = limit - c.kept;
    if (data.length > room) {
      if (c.kind === "0") this.truncated = true;
      data = data.subarray(0, Math.max(0, room));
    }
    if (data.length) {
      c.chunks.push(Buffer.from(data));
      c.kept += data.length;
    }
  }

  private finish(): void {
    const c = this.current;
    this.current = null;
    if (!c) return;
    const text = Buffer.concat(c.chunks);
    if (c.kind === "L") this.longName = field(text, 0, text.length);
    else if (c.kind === "0") this.files[c.name.replace(/^(\.\/)+/, "")] = text.toString("utf8");
  }
}
