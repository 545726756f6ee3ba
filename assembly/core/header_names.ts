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
  // FNV-1a over four bytes at a time, then mixed so that the slot (its low bits) depends on every byte.
  let hash: u32 = 2166136261;
  let i: usize = 0;
  for (; i + 4 <= size; i += 4) hash = (hash ^ load<u32>(ptr + i)) * 16777619;
  for (; i < size; i++) hash = (hash ^ <u32>load<u8>(ptr + i)) * 16777619;
  hash ^= hash >>> 16;
  hash *= 0x85ebca6b;
  hash ^= hash >>> 13;
  const slot = <i32>(hash & (SLOTS - 1));
  const last = unchecked(shared[slot]);
  if (changetype<usize>(last) != 0 && <usize>last!.length == size && sameBytes(last!, ptr, size)) return last!;
  const name = byteStringFromMemory(ptr, size);
  unchecked(shared[slot] = name);
  return name;
}

function sameBytes(s: string, ptr: usize, size: usize): bool {
  const chars = changetype<usize>(s);
  let i: usize = 0;
  // Four bytes at a time against four UTF-16 units (each byte widened), then the rest one by one.
  for (; i + 4 <= size; i += 4) {
    const b = <u64>load<u32>(ptr + i);
    const wide = (b & 0xff) | ((b & 0xff00) << 8) | ((b & 0xff0000) << 16) | ((b & 0xff000000) << 24);
    if (load<u64>(chars + (i << 1)) != wide) return false;
  }
  for (; i < size; i++) {
    if (load<u16>(chars + (i << 1)) != <u16>load<u8>(ptr + i)) return false;
  }
  return true;
}
