// How the primary guard (upstream/guard_stream.ts) learns that a request's first packet is timed
// downstream, without copying and scanning its body a second time. The downstream role that decided
// it (ai-fallback with firstPacketTimeout, or the streamed mode's role that sets the per-try timeout)
// sets a stream property; Envoy keeps it as filter state of the downstream request
// (`wasm.ai_fallback.first_packet_timed`), and an upstream filter's stream info is the downstream
// request's (Envoy's UpstreamFilterManager::streamInfo), so the guard on the primary's cluster reads
// it. Only gateway code sets filter state: no client can.
import { WasmResult } from "../abi/enums";
import { getStringPropertyAt, propertyPath, setProperty } from "../abi/hostcalls";

export const FIRST_PACKET_PROPERTY = "ai_fallback.first_packet_timed";
const ANY_BYTE_VALUE = "any-byte";
const KEEP_ALIVES_WAIT_VALUE = "keep-alives-wait";
// Encoded once: the guard reads it on every response, the downstream roles set it per timed request
// (a one-segment path is the name's bytes, as proxy_set_property takes it too).
const PROPERTY_PATH = propertyPath([FIRST_PACKET_PROPERTY]);
const ANY_BYTE = String.UTF8.encode(ANY_BYTE_VALUE);
const KEEP_ALIVES_WAIT = String.UTF8.encode(KEEP_ALIVES_WAIT_VALUE);

export const enum FirstPacketTiming {
  /** Nothing downstream times this request's first packet: the guard holds nothing. */
  NotTimed = 0,
  /** Any body byte is the first packet. */
  AnyByte = 1,
  /** SSE comment and blank lines are not (keepAliveIsNotFirstPacket). */
  NotKeepAlive = 2,
}

/** A value read back (pure); anything else, or nothing, is NotTimed. */
export function parseTiming(value: string | null): FirstPacketTiming {
  if (value === null) return FirstPacketTiming.NotTimed;
  if (value == ANY_BYTE_VALUE) return FirstPacketTiming.AnyByte;
  if (value == KEEP_ALIVES_WAIT_VALUE) return FirstPacketTiming.NotKeepAlive;
  return FirstPacketTiming.NotTimed;
}

/** Downstream: this request's first packet is timed (one host call, streaming requests only). */
export function tellFirstPacketTimed(keepAliveIsNotFirstPacket: bool): WasmResult {
  return setProperty(PROPERTY_PATH, keepAliveIsNotFirstPacket ? KEEP_ALIVES_WAIT : ANY_BYTE);
}

/** Upstream (the guard): what the downstream role said, if anything (one host call). */
export function readFirstPacketTiming(): FirstPacketTiming {
  return parseTiming(getStringPropertyAt(PROPERTY_PATH));
}
