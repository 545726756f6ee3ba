// The handoff way to fall back (`"handoff": "higress-route-fallback"`): the filter decides as in
// the dispatch mode but calls no backup; it marks the answer it falls back on, and Higress's route
// fallback (custom_response's redirect policy) recreates the stream on a fallback route, one hop
// per backup. What is carried from one hop to the next, and its wire form. Pure.
import { Attempt } from "./attempts";
import { Backup } from "./config/config";

/** The `handoff` value that turns the handoff on ("dispatch", the default, keeps backup calls). */
export const HANDOFF_ROUTE_FALLBACK = "higress-route-fallback";
export const HANDOFF_DISPATCH = "dispatch";

/**
 * The response header custom_response's matcher selects: present only on an answer this filter
 * decided to fall back on. Its value is the next hop's number (1 = the first backup).
 */
export const HANDOFF_MARKER = "x-ai-fallback-handoff";
/** The request header Higress's route fallback adds to the recreated request (the fallback routes match it). */
export const FALLBACK_FROM_HEADER = "x-higress-fallback-from";
/** The request header a hop sets to its number, so that each hop's route can send it to its backup's service. */
export const HOP_HEADER = "x-ai-fallback-hop";
/**
 * The stream property that carries the chain from one hop to the next: declared with the lifespan
 * of the downstream request, Envoy keeps it across a recreated stream (an internal redirect).
 */
export const CHAIN_PROPERTY = "ai_fallback.handoff_chain";
/** The status of the filter's own marked reply, and of a held 2xx whose first packet was late. */
export const HANDOFF_TIMEOUT_STATUS: i32 = 504;

/**
 * The chain so far, as one hop hands it to the next: the next hop's number, the trigger, and the
 * attempts (each `service`, `model`, `result`), every field separated by a tab (labels have none;
 * a chain that does not read back is no chain: the hop rewrites nothing).
 */
export class HandoffChain {
  constructor(public nextHop: i32, public trigger: string, public attempts: Attempt[]) {}

  encode(): string {
    let out = this.nextHop.toString() + "\t" + this.trigger;
    for (let i = 0; i < this.attempts.length; i++) {
      const a = this.attempts[i];
      out += "\t" + a.service + "\t" + a.model + "\t" + a.result;
    }
    return out;
  }
}

/** A carried chain read back; null when absent or not one this filter wrote. */
export function decodeChain(text: string | null): HandoffChain | null {
  if (text === null || text.length == 0) return null;
  const f = text.split("\t");
  if (f.length < 2 || (f.length - 2) % 3 != 0) return null;
  const hop = parseHop(f[0]);
  if (hop <= 0) return null;
  const attempts: Attempt[] = [];
  for (let i = 2; i < f.length; i += 3) attempts.push(new Attempt(f[i], f[i + 1], f[i + 2]));
  return new HandoffChain(hop, f[1], attempts);
}

/** A hop number (1..999); 0 when `text` is not one. */
export function parseHop(text: string): i32 {
  if (text.length == 0 || text.length > 3) return 0;
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return 0;
    n = n * 10 + (c - 0x30);
  }
  return n;
}

/** The status of this filter's own reply for a hop whose backup could not take the request. */
export const HANDOFF_SKIPPED_STATUS: i32 = 502;

/**
 * The headers earlier hops' backups set (lower case): a recreated stream keeps the request header
 * map of the stream before it, so hop `hop` (1-based) removes them unless its own backup sets them.
 */
export function earlierBackupHeaders(backups: Backup[], hop: i32): string[] {
  const names: string[] = [];
  for (let i = 0; i < hop - 1 && i < backups.length; i++) {
    const headers = backups[i].headers;
    for (let j = 0; j < headers.length; j++) if (!names.includes(headers[j].name)) names.push(headers[j].name);
  }
  return names;
}
