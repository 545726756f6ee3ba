// How an answer reaches the client, the way the FallbackMachine chose (core/fallback_steps.ts
// Delivery): the backup answer kept until it is served, the answer being served, and the host calls
// that write it (a local reply, the held response's headers, the held error's buffered body). The
// response side (fallback_stream.ts) decides when; a backup call is backup_caller.ts.
import { BufferType, LogLevel, MapType, StreamType, WasmResult } from "../abi/enums";
import * as host from "../abi/hostcalls";
import { findSerializedHeader } from "../core/header_pairs";
import { clientResponsePairs } from "../core/replay";
import { ByteSink } from "../core/byte_sink";
import { FallbackMachine } from "../core/fallback_machine";
import { Delivery, Phase } from "../core/fallback_steps";
import { Header } from "../core/headers";
import { OWN_REPLY_DETAILS } from "../core/policy";
import { FallbackRoot } from "./fallback_root";
import { HandoffCaller } from "./handoff_caller";

/** No headers added (takeAnswer replaces the list; this one is never changed). */
const NO_EXTRA: StaticArray<string> = [];

/**
 * A backup's HTTP answer, kept until it is served or replaced by a later one: its header map as the
 * host gave it (wire format, well-formed), decoded only for what is asked of it.
 */
export class Answer {
  /** The headers added when it is served (the report: name, value, ...), after its own (core/replay.ts clientResponsePairs). */
  extra: StaticArray<string> = NO_EXTRA;
  /** `bytes`: what it holds of the memory budget. */
  constructor(public status: i32, public headerMap: ArrayBuffer, public body: ByteSink, public bytes: i64) {}

  /** One of its headers' value (a lower-case name), or null. */
  header(lowerName: string): string | null {
    return findSerializedHeader(changetype<usize>(this.headerMap), this.headerMap.byteLength, lowerName);
  }

  /** Its headers as the client gets them, then `extra`: `:status` first when `withStatus`. */
  clientPairs(withStatus: bool): ArrayBuffer {
    return clientResponsePairs(changetype<usize>(this.headerMap), this.headerMap.byteLength, this.extra, withStatus ? this.status : 0);
  }
}

/** A kept answer's header map is charged this many times its wire bytes: the map, and the maps written from it when it is served. */
export const DECODED_HEADERS_FACTOR: i64 = 3;

/**
 * A held error announcing a body larger than this is taken to be stopped by Envoy's buffer limit
 * (flow control), not slow: Higress's default per-connection limit is 32 KiB, Envoy's 1 MiB.
 */
export const FLOW_CONTROLLED_BODY_BYTES: i32 = 16 * 1024;

export class AnswerDelivery extends HandoffCaller {
  constructor(id: u32, root: FallbackRoot) {
    super(id, root);
  }

  /** The latest backup answer, kept until it is served or replaced. */
  protected lastAnswer: Answer | null = null;
  /** The answer as the client gets it (report headers added), while it is written into the response. */
  protected served: Answer | null = null;
  /** The size of the held error body read for its meaning (Delivery.SwapBuffered replaces it). */
  protected heldErrorBytes: u32 = 0;

  /**
   * Drops the body copy and any kept answer: nothing will be replayed or served any more. The
   * header copy (small) stays for the request id in log lines.
   */
  protected release(): void {
    this.clearBody();
    this.dropAnswer();
    this.dropServed();
  }

  /** The kept answer with the headers added for the client (`extra`); it takes over the answer's share of the budget. */
  protected takeAnswer(answer: Answer, extra: StaticArray<string>): Answer {
    this.lastAnswer = null;
    answer.extra = extra;
    return answer;
  }

  protected dropServed(): void {
    const served = this.served;
    if (served === null) return;
    this.share.give(served.bytes);
    served.body.clear();
    this.served = null;
  }

  protected dropAnswer(): void {
    const answer = this.lastAnswer;
    if (answer === null) return;
    this.share.give(answer.bytes);
    answer.body.clear();
    this.lastAnswer = null;
  }

  /** Carries an answer (headers as the client gets them) to the client the way the machine chose. */
  protected serve(machine: FallbackMachine, answer: Answer): void {
    const delivery = machine.delivery;
    this.served = answer;
    if (delivery == Delivery.Direct) {
      this.replyAnswer(answer);
      return;
    }
    if (delivery == Delivery.SwapBuffered && answer.body.length > FLOW_CONTROLLED_BODY_BYTES) {
      // Envoy's buffer would refuse it (its limit turns it into a 500): sent straight to the client.
      machine.delivery = Delivery.Direct;
      machine.phase = Phase.Replying;
      this.replyAnswer(answer);
      return;
    }
    if (delivery == Delivery.SwapBuffered) {
      // The held error's body waits in Envoy's buffer: the answer takes its place there, then goes on.
      this.writeServedHeaders();
      const result = host.setBufferBytes(BufferType.HttpResponseBody, 0, this.heldErrorBytes, answer.body.ptr, answer.body.length);
      if (result != WasmResult.Ok) {
        host.logBytes(LogLevel.Error, "the host refused the answer's body (status " + result.toString() + "); it is sent directly" + this.requestIdSuffix());
        this.replyAnswer(answer);
        return;
      }
      host.continueStream(StreamType.Response);
      this.release();
      return;
    }
    if (delivery == Delivery.SwapInPlace) {
      // The held primary becomes the answer; its body comes back to onResponseBody, which writes
      // the answer's body in its place.
      this.writeServedHeaders();
      host.continueStream(StreamType.Response);
      return;
    }
    // ThroughFilterChain: the local reply passes this filter's own callbacks, which write the answer
    // over whatever local_reply_config made of it. Its body is the answer's too, so that a body
    // callback follows the headers (and the answer arrives even if nothing rewrote it).
    const result = host.sendLocalResponsePairs(answer.status, OWN_REPLY_DETAILS, answer.body.ptr, answer.body.length, answer.clientPairs(false));
    if (result != WasmResult.Ok) {
      host.logBytes(LogLevel.Error, "the host refused the reply (status " + result.toString() + ")" + this.requestIdSuffix());
      this.release();
    }
  }

  /** The response headers become the served answer's: its status, its headers, nothing else. */
  protected writeServedHeaders(): void {
    const served = this.served;
    if (served === null) return;
    const pairs = served.clientPairs(true);
    const result = host.setHeaderPairs(MapType.HttpResponseHeaders, pairs);
    if (result != WasmResult.Ok) {
      host.logBytes(LogLevel.Error, "the host refused the answer's headers (status " + result.toString() + ")" + this.requestIdSuffix());
    }
  }

  /** Sends `answer` as this filter's reply (replyWith). */
  protected replyAnswer(answer: Answer): void {
    this.replyWith(host.sendLocalResponsePairs(answer.status, OWN_REPLY_DETAILS, answer.body.ptr, answer.body.length, answer.clientPairs(false)));
  }

  /** Sends this filter's reply in place of the primary's response; it is the stream's last word. */
  protected reply(status: i32, headers: Header[], body: usize, bodySize: i32): void {
    this.replyWith(host.sendLocalResponse(status, OWN_REPLY_DETAILS, body, bodySize, headers));
  }

  /** After a reply was sent (`result`: the host's answer): the stream's copies go. */
  private replyWith(result: WasmResult): void {
    if (result != WasmResult.Ok) {
      host.logBytes(LogLevel.Error, "the host refused the reply (status " + result.toString() + ")" + this.requestIdSuffix());
    }
    this.release();
  }
}
