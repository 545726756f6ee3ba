// Header names as byte strings, shared: the same few names (content-type, user-agent, :path...) come
// with every request and answer, so a name read from the wire format is the string made the last
// time the same bytes were read, not a new one each time (each new string costs an allocation, a
// copy and later a collection). Strings are never changed, so sharing one is safe. Pure.
import { byteStringFromMemory } from "./bytes";

/** Direct-mapped by a hash of the bytes; a slot holds the last name that hashed there. */
const SLOTS: u32 = 256;
/** Longer names are made each time (rare, and they would hold more memory). */
const LONGEST_SHARED: usize = 64;
const shared = new StaticArray<string | null>(<i32>SLOTS);

/** The `size` bytes at `ptr` (a header name) as a byte string, shared with earlier reads of the same bytes. */
export function headerNameAt(ptr: usize, size: usize): string {
  return sharedByteString(ptr, size);
}

/** The `size` bytes at `ptr` as a byte string, shared with earlier reads of the same bytes (a name, or a value with few forms). */
export function sharedByteString(ptr: usize, size: usize): string {
  if (size == 0 || size > LONGEST_SHARED) return byteStringFromMemory(ptr, size);
  let hash: u32 = 2166136261; // FNV-1a
  for (let i: usize = 0; i < size; i++) hash = (hash ^ <u32>load<u8>(ptr + i)) * 16777619;
  const slot = <i32>(hash & (SLOTS - 1));
  const last = unchecked(shared[slot]);
  if (last !== null && <usize>last.length == size && sameBytes(last, ptr, size)) return last;
  const name = byteStringFromMemory(ptr, size);
  unchecked(shared[slot] = name);
  return name;
}

function sameBytes(s: string, ptr: usize, size: usize): bool {
  const chars = changetype<usize>(s);
  for (let i: usize = 0; i < size; i++) {
    if (load<u16>(chars + (i << 1)) != <u16>load<u8>(ptr + i)) return false;
  }
  return true;
}
