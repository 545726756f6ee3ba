// A growable byte buffer: the request body is appended chunk by chunk as it streams past. Pure.

export class ByteSink {
  private data: ArrayBuffer = new ArrayBuffer(0);
  length: i32 = 0;
  /** Growth never goes past this many bytes (more is only taken when appended). */
  limit: i32 = i32.MAX_VALUE;

  /** Where the bytes start; valid until the next append or clear. */
  get ptr(): usize {
    return changetype<usize>(this.data);
  }

  /** Makes room for `size` more bytes (doubling, up to `limit`) and returns where they go. */
  reserve(size: i32): usize {
    const need = this.length + size;
    if (need > this.data.byteLength) {
      let capacity = this.data.byteLength < 1024 ? 1024 : this.data.byteLength;
      while (capacity < need) capacity <<= 1;
      if (capacity > this.limit) capacity = this.limit > need ? this.limit : need;
      const grown = new ArrayBuffer(capacity);
      memory.copy(changetype<usize>(grown), changetype<usize>(this.data), this.length);
      this.data = grown;
    }
    return changetype<usize>(this.data) + this.length;
  }

  append(ptr: usize, size: i32): void {
    memory.copy(this.reserve(size), ptr, size);
    this.length += size;
  }

  /**
   * The bytes so far, as a buffer of exactly `length` bytes. The spare capacity is given up, so a
   * finished body is trimmed once and every later call (one per backup attempt) copies nothing.
   */
  toBuffer(): ArrayBuffer {
    if (this.data.byteLength != this.length) this.data = this.data.slice(0, this.length);
    return this.data;
  }

  clear(): void {
    this.data = new ArrayBuffer(0);
    this.length = 0;
  }
}
