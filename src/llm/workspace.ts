/**
 * Reusable buffers, so that repeated passes (a training run) do not allocate and page in
 * ~100 MB of fresh arrays per step. A buffer handed out under a key is overwritten the next
 * time that key is asked for; a larger request replaces it.
 */
export class Workspace {
  private readonly buffers = new Map<string, Float32Array>();

  f32(key: string, length: number): Float32Array {
    let b = this.buffers.get(key);
    if (!b || b.length < length) {
      b = new Float32Array(length);
      this.buffers.set(key, b);
    }
    return b.length === length ? b : b.subarray(0, length);
  }
}
