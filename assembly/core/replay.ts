// What crosses between the client and a backup: the replayed request's headers, the backup answer's
// headers as the client gets them, and what the client is told about the fallback. Pure.
import { Header, findHeader } from "./headers";
import { decimalDigits, writePair } from "./header_pairs";
import { asciiLower, byteStringFromMemory, byteStringToBuffer, jsonQuote, writeByteString } from "./bytes";
import { headerNameAt } from "./header_names";
import { Attempt, formatAttempts } from "./attempts";
import { Backup, PASS_THROUGH } from "./config/config";
import { scanTopLevel } from "./json_scan";
import { statusText } from "./status_text";

// Response headers that tell the client (and operators) what the fallback did.
export const HEADER_SERVICE = "x-ai-fallback-service";
export const HEADER_MODEL = "x-ai-fallback-model";
export const HEADER_TRIGGER = "x-ai-fallback-trigger";
export const HEADER_ATTEMPTS = "x-ai-fallback-attempts";
/** On an error passed through unreplayed because of what it means, e.g. `never_trigger=content_filter`. */
export const HEADER_DECLINED = "x-ai-fallback-declined";
/**
 * Streamed mode: set by an attempt's upstream filter on an answer the router should retry (the
 * generated route's retriable_headers), and removed by the route before the client sees it.
 */
export const HEADER_RETRY = "x-ai-fallback-retry";
/** The report headers' common prefix: a backup's own (a chained gateway's) never reach the client. */
export const REPORT_HEADER_PREFIX = "x-ai-fallback-";

/** Connection-level headers that never cross a hop, plus framing the host recomputes. */
export function isHopByHop(name: string): bool {
  // By length first: every header of every replayed request and answer is asked.
  switch (name.length) {
    case 2: return name == "te";
    case 6: return name == "expect";
    case 7: return name == "upgrade" || name == "trailer";
    case 10: return name == "connection" || name == "keep-alive";
    case 14: return name == "content-length";
    case 16: return name == "proxy-connection";
    case 17: return name == "transfer-encoding";
    default: return false;
  }
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
 * Query parameters that carry a credential (Gemini's `?key=`, Azure's `api-key`, OAuth's
 * `access_token`, Azure API Management's `subscription-key`, an AWS presigned request's
 * signature, key id and session token): dropped when a backup brings its own. Names compare
 * case-insensitively and percent-decoded, as a server might read them.
 */
export const CREDENTIAL_QUERY_PARAMETERS = [
  "key", "api-key", "api_key", "access_token", "subscription-key",
  "x-amz-signature", "x-amz-credential", "x-amz-security-token",
];

/**
 * The client's request headers as `backup` gets them, in the ABI's wire format in and out (the
 * client's serialized headers as kept at the request, the call's headers as proxy_http_call takes
 * them): hop-by-hop headers dropped; when the backup brings its own credential, the client's
 * credential headers, its cookie and credential query parameters dropped; the backup's dropHeaders
 * dropped; the backup's path, authority and headers in place of the client's. The client's values
 * are copied as bytes, never decoded (only each name is, for the decision): a fallback's dispatch
 * makes three allocations here rather than one per name and value.
 */
export function backupRequestPairs(client: usize, clientSize: usize, backup: Backup): ArrayBuffer {
  const count = clientSize >= 4 ? <i32>load<u32>(client) : 0;
  if (<usize>4 + 8 * <usize>count > clientSize) return backupOnlyPairs(backup);
  // First pass: which client headers go, and the size of what is written.
  const kept = keptFlags(count);
  let keptCount = 0;
  let size: usize = 4;
  // Values written in place of the client's, by index: its path without credential parameters,
  // when the backup brings its own credential.
  let replaced: StaticArray<string | null> | null = null;
  let data = client + 4 + 8 * <usize>count;
  const end = client + clientSize;
  for (let i = 0; i < count; i++) {
    const nameSize = <usize>load<u32>(client + 4 + 8 * <usize>i);
    const valueSize = <usize>load<u32>(client + 8 + 8 * <usize>i);
    if (data + nameSize + valueSize + 2 > end) return backupOnlyPairs(backup);
    const name = headerNameAt(data, nameSize);
    if (forwardsClientHeader(name, backup)) {
      kept[i] = true;
      keptCount++;
      let written = valueSize;
      if (name == ":path" && backup.replacesCredentials) {
        const stripped = withoutCredentialParameters(byteStringFromMemory(data + nameSize + 1, valueSize));
        let values = replaced;
        if (values === null) {
          values = new StaticArray<string | null>(count);
          replaced = values;
        }
        values[i] = stripped;
        written = <usize>stripped.length;
      }
      size += 8 + nameSize + written + 2;
    }
    data += nameSize + valueSize + 2;
  }
  const backupPath = backup.path;
  const authority = backup.authority;
  const added = (backupPath !== null ? 1 : 0) + (authority !== null ? 1 : 0) + backup.headers.length;
  if (backupPath !== null) size += 8 + 5 + <usize>backupPath.length + 2;
  if (authority !== null) size += 8 + 10 + <usize>authority.length + 2;
  for (let i = 0; i < backup.headers.length; i++) {
    size += 8 + <usize>backup.headers[i].name.length + <usize>backup.headers[i].value.length + 2;
  }
  // Second pass: written once, in the same order as the decoded form would be.
  const out = new ArrayBuffer(<i32>size);
  const base = changetype<usize>(out);
  store<u32>(base, keptCount + added);
  let sizes = base + 4;
  let to = base + 4 + 8 * <usize>(keptCount + added);
  data = client + 4 + 8 * <usize>count;
  for (let i = 0; i < count; i++) {
    const nameSize = <usize>load<u32>(client + 4 + 8 * <usize>i);
    const valueSize = <usize>load<u32>(client + 8 + 8 * <usize>i);
    if (kept[i]) {
      memory.copy(to, data, nameSize + 1);
      store<u32>(sizes, <u32>nameSize);
      const values = replaced;
      const value = values !== null ? values[i] : null;
      if (value !== null) {
        writeByteString(value, to + nameSize + 1);
        store<u8>(to + nameSize + 1 + <usize>value.length, 0);
        store<u32>(sizes + 4, <u32>value.length);
        to += nameSize + 1 + <usize>value.length + 1;
      } else {
        memory.copy(to + nameSize + 1, data + nameSize + 1, valueSize + 1);
        store<u32>(sizes + 4, <u32>valueSize);
        to += nameSize + valueSize + 2;
      }
      sizes += 8;
    }
    data += nameSize + valueSize + 2;
  }
  if (backupPath !== null) {
    to = writePair(sizes, to, ":path", backupPath);
    sizes += 8;
  }
  if (authority !== null) {
    to = writePair(sizes, to, ":authority", authority);
    sizes += 8;
  }
  for (let i = 0; i < backup.headers.length; i++) {
    to = writePair(sizes, to, backup.headers[i].name, backup.headers[i].value);
    sizes += 8;
  }
  return out;
}

// backupRequestPairs' first-pass flags, reused (one dispatch at a time: wasm is single-threaded).
let keptScratch = new StaticArray<bool>(64);

/** `count` flags, all false. */
function keptFlags(count: i32): StaticArray<bool> {
  if (count > keptScratch.length) keptScratch = new StaticArray<bool>(count);
  const flags = keptScratch;
  memory.fill(changetype<usize>(flags), 0, <usize>count);
  return flags;
}

/** A malformed client header map (never from Envoy): the backup gets only what it sets itself. */
function backupOnlyPairs(backup: Backup): ArrayBuffer {
  return backupRequestPairs(EMPTY_PAIRS, 4, backup);
}

const EMPTY_PAIRS = memory.data(4);

/** Whether a client request header (lower-case name) is forwarded to `backup` as the client sent it. */
function forwardsClientHeader(name: string, backup: Backup): bool {
  if (isHopByHop(name)) return false;
  if (backup.replacesCredentials && (backup.isCredentialHeader(name) || name == "cookie")) return false;
  if (name == ":path" && backup.path !== null) return false;
  if (name == ":authority" && backup.authority !== null) return false;
  if (findHeader(backup.headers, name) !== null) return false;
  if (backup.dropHeaders.includes(name)) return false;
  return true;
}

/** `path` (a byte string) without its credential query parameters; the rest as it was, in order. */
export function withoutCredentialParameters(path: string): string {
  const question = path.indexOf("?");
  if (question < 0) return path;
  const params = path.substring(question + 1).split("&");
  const kept = new Array<string>();
  for (let i = 0; i < params.length; i++) {
    const param = params[i];
    const equals = param.indexOf("=");
    const name = asciiLower(percentDecoded(equals < 0 ? param : param.substring(0, equals)));
    if (!CREDENTIAL_QUERY_PARAMETERS.includes(name)) kept.push(param);
  }
  if (kept.length == params.length) return path;
  return kept.length == 0 ? path.substring(0, question) : path.substring(0, question + 1) + kept.join("&");
}

/** %XX escapes decoded (byte strings: one char per byte); malformed escapes stay as written. */
function percentDecoded(s: string): string {
  if (!s.includes("%")) return s;
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c == 0x25 && i + 2 < s.length && hexDigit(s.charCodeAt(i + 1)) >= 0 && hexDigit(s.charCodeAt(i + 2)) >= 0) {
      out += String.fromCharCode(hexDigit(s.charCodeAt(i + 1)) * 16 + hexDigit(s.charCodeAt(i + 2)));
      i += 2;
    } else {
      out += String.fromCharCode(c);
    }
  }
  return out;
}

function hexDigit(c: i32): i32 {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

/**
 * A backup answer's headers as the client gets them (the status travels separately): without its
 * own report headers (a chained gateway's), which would contradict this filter's or name clusters
 * `hideTopology` hides.
 */
export function clientResponseHeaders(answer: Header[]): Header[] {
  const out = new Array<Header>();
  for (let i = 0; i < answer.length; i++) {
    const h = answer[i];
    if (reachesClient(h.name)) out.push(h);
  }
  return out;
}

/** Whether a backup answer's header (its name, a byte string) reaches the client (clientResponseHeaders). */
function reachesClient(name: string): bool {
  return !(name.startsWith(":") || isHopByHop(name) || name.startsWith(REPORT_HEADER_PREFIX));
}

/** reachesClient for a name's `size` bytes at `ptr` in the wire format: the same decision, no string made. */
function nameReachesClient(ptr: usize, size: usize): bool {
  if (size > 0 && load<u8>(ptr) == 0x3a) return false; // ":"
  if (size >= <usize>REPORT_HEADER_PREFIX.length && bytesAre(ptr, REPORT_HEADER_PREFIX)) return false;
  switch (<i32>size) {
    case 2: return !bytesAre(ptr, "te");
    case 6: return !bytesAre(ptr, "expect");
    case 7: return !(bytesAre(ptr, "upgrade") || bytesAre(ptr, "trailer"));
    case 10: return !(bytesAre(ptr, "connection") || bytesAre(ptr, "keep-alive"));
    case 14: return !bytesAre(ptr, "content-length");
    case 16: return !bytesAre(ptr, "proxy-connection");
    case 17: return !bytesAre(ptr, "transfer-encoding");
    default: return true;
  }
}

/** Whether the bytes at `ptr` start with `ascii`. */
function bytesAre(ptr: usize, ascii: string): bool {
  for (let i = 0; i < ascii.length; i++) {
    if (<u32>load<u8>(ptr + <usize>i) != <u32>ascii.charCodeAt(i)) return false;
  }
  return true;
}

/**
 * clientResponseHeaders on the wire format, then `extra` (the report headers: name, value, name,
 * value...), as one header map:
 * `:status` first when `status` > 0 (the map that replaces a response's headers), none when 0 (a
 * local reply's additional headers). The answer's values are copied as bytes, never decoded; a
 * malformed answer map (never from Envoy) adds none of its headers, as deserializeHeaders reads it.
 */
export function clientResponsePairs(answer: usize, answerSize: usize, extra: StaticArray<string>, status: i32): ArrayBuffer {
  let count = answerSize >= 4 ? <usize>load<u32>(answer) : 0;
  // Each pair takes at least 10 bytes (two sizes, two NULs): a count beyond that is a malformed map.
  if (<usize>4 + 8 * count > answerSize || count > answerSize / 10) count = 0;
  const end = answer + answerSize;
  // First pass: the answer's headers the client gets, and the size they take.
  const kept = keptFlags(<i32>count);
  let keptCount = 0;
  let keptBytes: usize = 0;
  let data = answer + 4 + 8 * count;
  for (let i: usize = 0; i < count; i++) {
    const nameSize = <usize>load<u32>(answer + 4 + 8 * i);
    const valueSize = <usize>load<u32>(answer + 8 + 8 * i);
    if (data + nameSize + valueSize + 2 > end) {
      count = keptCount = 0;
      keptBytes = 0;
      break;
    }
    if (nameReachesClient(data, nameSize)) {
      unchecked(kept[<i32>i] = true);
      keptCount++;
      keptBytes += nameSize + valueSize + 2;
    }
    data += nameSize + valueSize + 2;
  }
  const statusDigits: usize = status > 0 ? <usize>decimalDigits(status) : 0;
  const total = (status > 0 ? 1 : 0) + keptCount + (extra.length >> 1);
  let size: usize = 4 + 8 * <usize>total + keptBytes;
  if (status > 0) size += 7 + statusDigits + 2; // ":status"
  for (let i = 0; i + 1 < extra.length; i += 2) size += <usize>unchecked(extra[i]).length + <usize>unchecked(extra[i + 1]).length + 2;
  const out = new ArrayBuffer(<i32>size);
  const base = changetype<usize>(out);
  store<u32>(base, total);
  let sizes = base + 4;
  let to = base + 4 + 8 * <usize>total;
  if (status > 0) {
    to = writePair(sizes, to, ":status", statusText(status));
    sizes += 8;
  }
  data = answer + 4 + 8 * count;
  for (let i: usize = 0; i < count; i++) {
    const nameSize = <usize>load<u32>(answer + 4 + 8 * i);
    const valueSize = <usize>load<u32>(answer + 8 + 8 * i);
    if (unchecked(kept[<i32>i])) {
      store<u32>(sizes, <u32>nameSize);
      store<u32>(sizes + 4, <u32>valueSize);
      memory.copy(to, data, nameSize + valueSize + 2);
      sizes += 8;
      to += nameSize + valueSize + 2;
    }
    data += nameSize + valueSize + 2;
  }
  for (let i = 0; i + 1 < extra.length; i += 2) {
    to = writePair(sizes, to, unchecked(extra[i]), unchecked(extra[i + 1]));
    sizes += 8;
  }
  return out;
}


/**
 * Appends the headers that report a fallback: what triggered it and, unless the topology is hidden,
 * every attempt (cluster names and results).
 */
export function addReportHeaders(headers: Header[], trigger: string, attempts: Attempt[], hideTopology: bool): Header[] {
  headers.push(new Header(HEADER_TRIGGER, trigger));
  if (!hideTopology) headers.push(new Header(HEADER_ATTEMPTS, formatAttempts(attempts)));
  return headers;
}

/** addReportHeaders' headers as name, value pairs in one list (clientResponsePairs' `extra`), `attemptsText` formatted. */
export function reportPairs(trigger: string, attemptsText: string, hideTopology: bool): StaticArray<string> {
  return hideTopology ? [HEADER_TRIGGER, trigger] : [HEADER_TRIGGER, trigger, HEADER_ATTEMPTS, attemptsText];
}

/** The filter's own error when no response is at hand: an OpenAI-style JSON error. */
export function exhaustedErrorBody(status: i32, attempts: Attempt[], hideTopology: bool): ArrayBuffer {
  const tried = hideTopology ? "" : ",\"attempts\":" + jsonQuote(formatAttempts(attempts));
  return byteStringToBuffer("{\"error\":{\"type\":\"ai_fallback_exhausted\",\"code\":" + status.toString() +
    ",\"message\":\"every model service failed\"" + tried + "}}");
}

/**
 * The model a backup was asked for, as a byte string for a header: `modelLabel` when it is an
 * override, else the JSON body's own top-level "model" string (its text between the quotes, escapes
 * as written: never a control byte), else "pass-through".
 */
export function askedModel(modelLabel: string, body: usize, length: i32): string {
  // An override (a backup is only called once it was written).
  if (modelLabel != PASS_THROUGH) return modelLabel;
  const scan = scanTopLevel(body, length);
  if (!scan.isObject || scan.modelValues.length == 0) return PASS_THROUGH;
  const span = scan.modelValues[scan.modelValues.length - 1];
  if (load<u8>(body + span.start) != 0x22) return PASS_THROUGH;
  return byteStringFromMemory(body + span.start + 1, span.end - span.start - 2);
}
