// What crosses between the client and a backup: the replayed request's headers, the backup answer's
// headers as the client gets them, and the labels reported about it. Pure.
import { Header, findHeader } from "./abi/header_pairs";
import { byteStringFromMemory } from "./bytes";
import { Backup, PASS_THROUGH, isCredentialHeader } from "./config";
import { scanTopLevel } from "./json_scan";

/** Connection-level headers that never cross a hop, plus framing the host recomputes. */
export function isHopByHop(name: string): bool {
  return name == "connection" || name == "keep-alive" || name == "proxy-connection" ||
    name == "transfer-encoding" || name == "upgrade" || name == "te" || name == "trailer" ||
    name == "content-length" || name == "expect";
}

/** A `:status` value as a number; 0 when absent or not three digits. */
export function parseStatus(s: string | null): i32 {
  if (s === null || s.length != 3) return 0;
  let code = 0;
  for (let i = 0; i < 3; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return 0;
    code = code * 10 + (c - 48);
  }
  return code;
}

/**
 * The client's request headers as `backup` gets them: hop-by-hop headers dropped, the client's
 * credentials dropped when the backup brings its own, and the backup's path, authority and headers
 * in place of the client's.
 */
export function backupRequestHeaders(client: Header[], backup: Backup): Header[] {
  const out = new Array<Header>();
  for (let i = 0; i < client.length; i++) {
    const h = client[i];
    if (isHopByHop(h.name)) continue;
    if (backup.replacesCredentials && isCredentialHeader(h.name)) continue;
    if (h.name == ":path" && backup.path !== null) continue;
    if (h.name == ":authority" && backup.authority !== null) continue;
    if (findHeader(backup.headers, h.name) !== null) continue;
    out.push(h);
  }
  const path = backup.path;
  if (path !== null) out.push(new Header(":path", path));
  const authority = backup.authority;
  if (authority !== null) out.push(new Header(":authority", authority));
  for (let i = 0; i < backup.headers.length; i++) out.push(backup.headers[i]);
  return out;
}

/** A backup answer's headers as the client gets them (the status travels separately). */
export function clientResponseHeaders(answer: Header[]): Header[] {
  const out = new Array<Header>();
  for (let i = 0; i < answer.length; i++) {
    const h = answer[i];
    if (h.name.startsWith(":") || isHopByHop(h.name)) continue;
    out.push(h);
  }
  return out;
}

/**
 * The model a backup was asked for, as a byte string: `modelLabel` when it is an override, else the
 * request body's own top-level "model" (its JSON text without the quotes), else "pass-through".
 */
export function askedModel(modelLabel: string, body: ArrayBuffer): string {
  if (modelLabel != PASS_THROUGH) return modelLabel;
  const base = changetype<usize>(body);
  const scan = scanTopLevel(base, body.byteLength);
  if (scan.modelValues.length == 0) return PASS_THROUGH;
  const span = scan.modelValues[scan.modelValues.length - 1];
  const quoted = span.end - span.start >= 2 && load<u8>(base + span.start) == 0x22;
  return quoted
    ? byteStringFromMemory(base + span.start + 1, span.end - span.start - 2)
    : byteStringFromMemory(base + span.start, span.end - span.start);
}
