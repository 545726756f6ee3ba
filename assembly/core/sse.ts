// Server-Sent Events: does a response prefix hold real content, or only keep-alives? Pure.
// Comment lines (starting with ':', e.g. ": ping") and blank lines (empty events) are keep-alives.

/** True when [ptr, ptr+length) has a line that is neither blank nor an SSE comment. */
export function isFirstPacket(ptr: usize, length: i32): bool {
  let lineStart = true;
  for (let i = 0; i < length; i++) {
    const c = load<u8>(ptr + i);
    if (c == 0x0a || c == 0x0d) {
      lineStart = true;
      continue;
    }
    if (lineStart) {
      if (c != 0x3a) return true;
      lineStart = false;
    }
  }
  return false;
}
