// How the primary guard (upstream/guard_stream.ts) learns that a request's first packet is timed
// downstream, without copying and scanning its body a second time. The downstream role that decided
// it (ai-fallback with firstPacketTimeout, or the streamed mode's role that sets the per-try timeout)
// sets a stream property; Envoy keeps it as filter state of the downstream request
// (`wasm.ai_fallback.first_packet_timed`), and an upstream filter's stream info is the downstream
// request's (Envoy's UpstreamFilterManager::streamInfo), so the guard on the primary's cluster reads
// it. Only gateway code sets filter state: no client can.
import { WasmResult } from "./abi/enums";
import { getProperty, setProperty } from "./abi/hostcalls";

export const FIRST_PACKET_PROPERTY = "ai_fallback.first_packet_timed";

export const enum FirstPacketTiming {
  /** Nothing downstream times this request's first packet: the guard holds nothing. */
  NotTimed = 0,
  /** Any body byte is the first packet. */
  AnyByte = 1,
  /** SSE comment and blank lines are not (keepAliveIsNotFirstPacket). */
  NotKeepAlive = 2,
}

/** The property's value for a timing (pure). */
export function timingValue(keepAliveIsNotFirstPacket: bool): string {
  return keepAliveIsNotFirstPacket ? "keep-alives-wait" : "any-byte";
}

/** A value read back (pure); anything else, or nothing, is NotTimed. */
export function parseTiming(value: string | null): FirstPacketTiming {
  if (value === null) return FirstPacketTiming.NotTimed;
  if (value == "any-byte") return FirstPacketTiming.AnyByte;
  if (value == "keep-alives-wait") return FirstPacketTiming.NotKeepAlive;
  return FirstPacketTiming.NotTimed;
}

/** Downstream: this request's first packet is timed (one host call, streaming requests only). */
export function tellFirstPacketTimed(keepAliveIsNotFirstPacket: bool): WasmResult {
  return setProperty(FIRST_PACKET_PROPERTY, timingValue(keepAliveIsNotFirstPacket));
}

/** Upstream (the guard): what the downstream role said, if anything (one host call). */
export function readFirstPacketTiming(): FirstPacketTiming {
  const bytes = getProperty([FIRST_PACKET_PROPERTY]);
  return parseTiming(bytes === null ? null : String.UTF8.decode(bytes));
}
