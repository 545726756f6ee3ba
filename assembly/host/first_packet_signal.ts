// How the primary guard (upstream/guard_stream.ts) learns that a request's first packet is timed
// downstream, without copying and scanning its body a second time. The downstream role that decided
// it (ai-fallback with firstPacketTimeout, or the streamed mode's role that sets the per-try timeout)
// sets a stream property; Envoy keeps it as filter state of the downstream request
// (`wasm.ai_fallback.first_packet_timed`), and an upstream filter's stream info is the downstream
// request's (Envoy's UpstreamFilterManager::streamInfo), so the guard on the primary's cluster reads
// it. Only gateway code sets filter state: no client can.
import { WasmResult } from "../abi/enums";
import { getStringPropertyAt, propertyPath, setProperty } from "../abi/hostcalls";
import { FirstPacket } from "../core/config/config";

export const FIRST_PACKET_PROPERTY = "ai_fallback.first_packet_timed";
const ANY_BYTE_VALUE = "any-byte";
const KEEP_ALIVES_WAIT_VALUE = "keep-alives-wait";
const CONTENT_VALUE = "content";
// Encoded once: the guard reads it on every response, the downstream roles set it per timed request
// (a one-segment path is the name's bytes, as proxy_set_property takes it too).
const PROPERTY_PATH = propertyPath([FIRST_PACKET_PROPERTY]);
const ANY_BYTE = String.UTF8.encode(ANY_BYTE_VALUE);
const KEEP_ALIVES_WAIT = String.UTF8.encode(KEEP_ALIVES_WAIT_VALUE);
const CONTENT = String.UTF8.encode(CONTENT_VALUE);

export const enum FirstPacketTiming {
  /** Nothing downstream times this request's first packet: the guard holds nothing. */
  NotTimed = 0,
  /** Any body byte is the first packet. */
  AnyByte = 1,
  /** SSE comment and blank lines are not (firstPacket "event", keepAliveIsNotFirstPacket). */
  NotKeepAlive = 2,
  /** Only an SSE event with content is; an error event before it is a failure (firstPacket "content"). */
  Content = 3,
}

/** A value read back (pure); anything else, or nothing, is NotTimed. */
export function parseTiming(value: string | null): FirstPacketTiming {
  if (value === null) return FirstPacketTiming.NotTimed;
  if (value == ANY_BYTE_VALUE) return FirstPacketTiming.AnyByte;
  if (value == KEEP_ALIVES_WAIT_VALUE) return FirstPacketTiming.NotKeepAlive;
  if (value == CONTENT_VALUE) return FirstPacketTiming.Content;
  return FirstPacketTiming.NotTimed;
}

/** Downstream: this request's first packet is timed (one host call, streaming requests only). */
export function tellFirstPacketTimed(firstPacket: FirstPacket): WasmResult {
  return setProperty(PROPERTY_PATH, firstPacket == FirstPacket.Content ? CONTENT : firstPacket == FirstPacket.Event ? KEEP_ALIVES_WAIT : ANY_BYTE);
}

/**
 * `hedge`: the streamed role let this request race (the router hedges at its per-try timeout), so its
 * backups' first packets are timed too: their guard holds a 2xx until its first content.
 */
export const HEDGE_PROPERTY = "ai_fallback.hedged";
const HEDGE_PATH = propertyPath([HEDGE_PROPERTY]);

/** Downstream: this request races (one host call, hedged requests only). */
export function tellHedged(firstPacket: FirstPacket): WasmResult {
  return setProperty(HEDGE_PATH, firstPacket == FirstPacket.Content ? CONTENT : firstPacket == FirstPacket.Event ? KEEP_ALIVES_WAIT : ANY_BYTE);
}

/** Upstream (a backup's guard): whether the request races, and how its first packet counts (one host call). */
export function readHedgeTiming(): FirstPacketTiming {
  return parseTiming(getStringPropertyAt(HEDGE_PATH));
}

/** Upstream (the guard): what the downstream role said, if anything (one host call). */
export function readFirstPacketTiming(): FirstPacketTiming {
  return parseTiming(getStringPropertyAt(PROPERTY_PATH));
}

/**
 * firstPacket "content" in the streamed mode: the primary guard marks a 2xx whose first event is an
 * error with this response header, and the generated route's retry policy retries on it
 * (retriable_headers), as on a failed status.
 */
export const STREAM_ERROR_HEADER = "x-ai-fallback-stream-error";

/** What each of the guard's modes waits for, given what the downstream role said: the longer wait wins. */
export function waitFor(configured: FirstPacket, timing: FirstPacketTiming): FirstPacket {
  const told = timing == FirstPacketTiming.Content ? FirstPacket.Content
    : timing == FirstPacketTiming.NotKeepAlive ? FirstPacket.Event : FirstPacket.Byte;
  return told > configured ? told : configured;
}
