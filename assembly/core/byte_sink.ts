// Bytes the filter owns outside the garbage collector: a request body appended chunk by chunk, or
// a backup answer taken over from the host. The memory is freed the moment `clear` is called, so
// what the memory budget counts (`capacity`) is what the VM holds. Pure.

export class ByteSink {
  private data: usize = 0;
  /** Bytes allocated (what the budget must cover). */
  capacity: i32 = 0;
  length: i32 = 0;
  /** Growth never goes past this many bytes (more is only taken when appended). */
  limit: i32 = i32.MAX_VALUE;

  /** Where the bytes start; valid until the next resize, append or clear. */
  get ptr(): usize {
    return this.data;
  }

  /** The capacity appending `size` more bytes needs: the current one when they fit, else doubled from 1 KiB up to `limit`. */
  capacityFor(size: i32): i32 {
    const need = <i64>this.length + size;
    if (need <= <i64>this.capacity) return this.capacity;
    let capacity: i64 = this.capacity < 1024 ? 1024 : this.capacity;
    while (capacity < need) capacity <<= 1;
    if (capacity > <i64>this.limit) capacity = <i64>this.limit > need ? <i64>this.limit : need;
    return <i32>capacity;
  }

  /** Makes the allocation exactly `capacity` bytes (at least `length`). */
  resize(capacity: i32): void {
    if (capacity == this.capacity) return;
    this.data = this.data == 0 ? heap.alloc(capacity) : heap.realloc(this.data, capacity);
    this.capacity = capacity;
  }

  /** Appends `size` bytes from `ptr`, growing as `capacityFor` says. */
  append(ptr: usize, size: i32): void {
    this.resize(this.capacityFor(size));
    memory.copy(this.data + this.length, ptr, size);
    this.length += size;
  }

  /** Takes over a block from heap.alloc holding exactly `size` bytes (what the host hands over). */
  adopt(ptr: usize, size: i32): void {
    this.clear();
    this.data = ptr;
    this.capacity = size;
    this.length = size;
  }

  clear(): void {
    if (this.data != 0) heap.free(this.data);
    this.data = 0;
    this.capacity = 0;
    this.length = 0;
  }
}
