// The memory of host calls: the scratch words the host writes results into, where the memory it
// asks for through our malloc export goes, and the bytes it reads arguments from. hostcalls.ts wraps
// each host function on these.
import { byteStringFromMemory, byteStringToBuffer, writeByteString } from "../core/bytes";
import { allocatedLarge } from "./collector";

// Scratch words the host writes results into (one call at a time: wasm is single-threaded).
export const RETURN_PTR = memory.data(8);
export const RETURN_SIZE = memory.data(8);
export const RETURN_WORD = memory.data(8);

// What the host returns, it writes into memory it asks for through our malloc export
// (allocateForHost). Two kinds of result need no heap block of their own, and no copy:
// - a short value read at once (a `:status`, a method, a property's text) goes to SMALL_RESULT;
// - a result kept as an ArrayBuffer (a header map, a property, a body) is written into that
//   ArrayBuffer, allocated by the malloc call itself.
// Each is asked for just before one host call and given up right after it (resetTargets), so
// that no other allocation can get it.
const SMALL_RESULT_BYTES: usize = 256;
const SMALL_RESULT = memory.data(<i32>SMALL_RESULT_BYTES);
let mallocTarget: usize = 0;
let mallocTargetSize: usize = 0;
/** The next host allocation is a new ArrayBuffer (intoNewBuffer); the one made is `bufferGiven`. */
let mallocBuffer: bool = false;
let bufferGiven: usize = 0;

/** The malloc export: the prepared target when one is set and large enough, a new ArrayBuffer when one is wanted, else the heap. */
export function allocateForHost(size: usize): usize {
  const target = mallocTarget;
  mallocTarget = 0;
  if (target != 0 && size <= mallocTargetSize) return target;
  if (mallocBuffer) {
    mallocBuffer = false;
    bufferGiven = changetype<usize>(__new(size, idof<ArrayBuffer>()));
    return bufferGiven;
  }
  return heap.alloc(size);
}

/** Before a host call that returns a short value read at once: it is written to SMALL_RESULT if it fits. */
export function intoSmallResult(): void {
  clearReturn();
  mallocTarget = SMALL_RESULT;
  mallocTargetSize = SMALL_RESULT_BYTES;
}

/** Before a host call whose result is kept as an ArrayBuffer (takeBuffer): it is written into a new one. */
export function intoNewBuffer(): void {
  clearReturn();
  bufferGiven = 0;
  mallocBuffer = true;
}

/** Right after a host call made with intoSmallResult or intoNewBuffer, whatever its status. */
export function resetTargets(): void {
  mallocTarget = 0;
  mallocBuffer = false;
}

/** Gives back a block the host returned, unless it is SMALL_RESULT. */
export function freeReturned(ptr: usize): void {
  if (ptr != 0 && ptr != SMALL_RESULT) heap.free(ptr);
}

/** The result of a host call made with intoNewBuffer, as an ArrayBuffer (the one it was written into, if it fits). */
export function takeBuffer(): ArrayBuffer {
  const ptr = load<usize>(RETURN_PTR);
  const size = load<usize>(RETURN_SIZE);
  const given = bufferGiven;
  bufferGiven = 0;
  allocatedLarge(<i64>size);
  if (ptr != 0 && ptr == given && <usize>changetype<ArrayBuffer>(ptr).byteLength == size) return changetype<ArrayBuffer>(ptr);
  const out = new ArrayBuffer(<i32>size);
  if (ptr != 0) {
    memory.copy(changetype<usize>(out), ptr, size);
    if (ptr != given) heap.free(ptr);
  }
  return out;
}

/** The result of a host call made with intoSmallResult, as a byte string. */
export function takeByteString(): string {
  const ptr = load<usize>(RETURN_PTR);
  const size = load<usize>(RETURN_SIZE);
  if (ptr == 0) return "";
  const out = byteStringFromMemory(ptr, size);
  freeReturned(ptr);
  return out;
}

export function clearReturn(): void {
  store<usize>(RETURN_PTR, 0);
  store<usize>(RETURN_SIZE, 0);
}

/** Before a host call that returns into memory we prepared (a body copy's free space): `size` bytes at `ptr`. */
export function intoTarget(ptr: usize, size: usize): void {
  clearReturn();
  mallocTarget = ptr;
  mallocTargetSize = size;
}

// Header names and values the host reads during one call, written to scratch space when they fit
// (no ArrayBuffer per header read or edit).
export const NAME_ROOM: i32 = 128;
export const NAME_SPACE = memory.data(NAME_ROOM);
export const VALUE_ROOM: i32 = 1024;
export const VALUE_SPACE = memory.data(VALUE_ROOM);

/**
 * Where the host finds byte string `s` (s.length bytes) during the next call: `space` if it fits in
 * `room`, else a new buffer (never collected before the call: collections run only between callbacks).
 */
export function placed(s: string, space: usize, room: i32): usize {
  if (s.length <= room) {
    writeByteString(s, space);
    return space;
  }
  return changetype<usize>(byteStringToBuffer(s));
}

