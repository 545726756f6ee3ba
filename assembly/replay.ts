// What crosses between the client and a backup: the replayed request's headers, the backup answer's
// headers as the client gets them, and what the client is told about the fallback. Pure.
import { Header, findHeader } from "./headers";
import { asciiLower, byteStringFromMemory, byteStringToBuffer, jsonQuote } from "./bytes";
import { Attempt, formatAttempts } from "./fallback_machine";
import { Backup, PASS_THROUGH, isCredentialHeader } from "./config";
import { scanTopLevel } from "./json_scan";

// Response headers that tell the client (and operators) what the fallback did.
export const HEADER_SERVICE = "x-ai-fallback-service";
export const HEADER_MODEL = "x-ai-fallback-model";
export const HEADER_TRIGGER = "x-ai-fallback-trigger";
export const HEADER_ATTEMPTS = "x-ai-fallback-attempts";

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
 * Query parameters that carry a credential (Gemini's `?key=`, Azure's `api-key`, OAuth's
 * `access_token`): dropped when a backup brings its own. Names compare case-insensitively and
 * percent-decoded, as a server might read them.
 */
export const CREDENTIAL_QUERY_PARAMETERS = ["key", "api-key", "api_key", "access_token"];

/**
 * The client's request headers as `backup` gets them: hop-by-hop headers dropped; when the backup
 * brings its own credential, the client's credential headers, its cookie and credential query
 * parameters dropped; the backup's dropHeaders dropped; the backup's path, authority and headers in
 * place of the client's.
 */
export function backupRequestHeaders(client: Header[], backup: Backup): Header[] {
  const out = new Array<Header>();
  for (let i = 0; i < client.length; i++) {
    let h = client[i];
    if (isHopByHop(h.name)) continue;
    if (backup.replacesCredentials && (isCredentialHeader(h.name) || h.name == "cookie")) continue;
    if (h.name == ":path" && backup.path !== null) continue;
    if (h.name == ":authority" && backup.authority !== null) continue;
    if (findHeader(backup.headers, h.name) !== null) continue;
    if (backup.dropHeaders.includes(h.name)) continue;
    if (h.name == ":path" && backup.replacesCredentials) h = new Header(":path", withoutCredentialParameters(h.value));
    out.push(h);
  }
  const path = backup.path;
  if (path !== null) out.push(new Header(":path", path));
  const authority = backup.authority;
  if (authority !== null) out.push(new Header(":authority", authority));
  for (let i = 0; i < backup.headers.length; i++) out.push(backup.headers[i]);
  return out;
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
 * Appends the headers that report a fallback: what triggered it and, unless the topology is hidden,
 * every attempt (cluster names and results).
 */
export function addReportHeaders(headers: Header[], trigger: string, attempts: Attempt[], hideTopology: bool): Header[] {
  headers.push(new Header(HEADER_TRIGGER, trigger));
  if (!hideTopology) headers.push(new Header(HEADER_ATTEMPTS, formatAttempts(attempts)));
  return headers;
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
  // An override that was written, or NOT_REWRITTEN.
  if (modelLabel != PASS_THROUGH) return modelLabel;
  const scan = scanTopLevel(body, length);
  if (!scan.isObject || scan.modelValues.length == 0) return PASS_THROUGH;
  const span = scan.modelValues[scan.modelValues.length - 1];
  if (load<u8>(body + span.start) != 0x22) return PASS_THROUGH;
  return byteStringFromMemory(body + span.start + 1, span.end - span.start - 2);
}
