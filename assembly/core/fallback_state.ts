// What one request's fallback knows: its phase, the primary's held response, the chain's attempts and
// clocks. The transitions are fallback_machine.ts's. Pure.
import { Policy } from "./config/config";
import { Attempt } from "./attempts";
import { Backup } from "./config/config";
import { Delivery, Phase } from "./fallback_steps";
import { HeldError } from "./held_error";
import { TriggerKind } from "./policy";

export class FallbackState {
  phase: Phase = Phase.Request;
  /** Why the request cannot be replayed ("" while it can). */
  notReplayableReason: string = "";
  /** A model service's 4xx held until its body says what it means. */
  readonly heldError: HeldError = new HeldError();
  /** Absolute deadline for the first response packet, ms; 0 = none. */
  firstPacketDeadlineMs: u64 = 0;
  /**
   * A streaming request waits for Envoy to pick the primary's upstream before its first-packet
   * timer starts: a request still held by a filter behind this one (ext_authz, jwt_authn...) has
   * not reached the primary, and is never replayed by the timer.
   */
  awaitingUpstream: bool = false;
  /** A streaming 2xx's headers may be held for its first packet (false where Envoy would not show their body). */
  holdsFirstPacketHeaders: bool = true;
  /** The primary's response headers are paused in Envoy. */
  primaryHeld: bool = false;
  /** ... with every frame after them (Step.HoldWhole): its body will be replayed to this filter. */
  primaryHeldWhole: bool = false;
  /** ... and they ended the stream: no body callback will follow them. */
  primaryHeadersOnly: bool = false;
  /**
   * A held error's body (or its end) has not all reached Envoy yet (the glue asks Envoy: slow, or
   * stalled): swapped in, the answer would wait for it, so it goes straight to the client instead.
   */
  primaryBodyPending: bool = false;
  /** ... or it announced trailers, and may end with them and no body that could carry the answer. */
  primaryMayLackBody: bool = false;
  primaryStatus: i32 = 0;
  /** How the answer reaches the client (set when one is served). */
  delivery: Delivery = Delivery.Direct;
  protected answerHeadersWritten: bool = false;
  protected answerBodyWritten: bool = false;
  /** Why a response that would trigger a fallback was passed through ("" when none was). */
  declined: string = "";
  /** ... because it was a gateway reply and backendErrorsOnly is on. */
  declinedIntercepted: bool = false;
  /** The first-packet timer fired after 2xx headers had arrived (their body never reached this filter). */
  timedOutAfterHeaders: bool = false;
  /** What started the fallback, e.g. "status=503" or "first_packet_timeout". */
  trigger: string = "";
  triggerKind: TriggerKind = TriggerKind.Status;
  attempts: Attempt[] = roomForTwo();
  currentBackup: Backup | null = null;
  callTimeoutMs: u32 = 0;
  /** A backup answered with an HTTP error; the glue keeps the latest such answer. */
  haveBackupError: bool = false;
  /** The next backup of the policy to try (a handoff hop starts past its own). */
  nextIndex: i32 = 0;
  protected chainDeadlineMs: u64 = 0;
  protected callStartedMs: u64 = 0;
  protected bodyBytes: u64 = 0;
  /** When the request left for the primary (the first-packet timer's start), ms. */
  protected upstreamStartedMs: u64 = 0;
  /** The firstPacketTimeout the deadline was set by (the rule chosen at the request's headers). */
  protected timedByMs: u32 = 0;
  /** `hedge`: the glue lets this request race (under the worker's bound) if its first packet is late. */
  hedgeAllowed: bool = false;
  /** A race is on: the primary's first content may still win against the backups' answers. */
  racing: bool = false;
  /** The backup served won a race (the primary was still running). */
  backupWonRace: bool = false;
  /** How many times Envoy's router tried the primary (`retry`: it resends a failed primary itself). */
  primaryTries: i32 = 1;
  /** `retry`: when the current backup is called again (0: no retry waits). */
  retryAtMs: u64 = 0;
  /** ... the retries the current backup had so far; the dispatch at hand is one of them. */
  retriesOnService: i32 = 0;

  /** The rule that applies: the one of the route chosen at the request's headers, until followRoute. */
  constructor(public policy: Policy) {}

  /** Nothing is decided yet: no answer has passed, no fallback has started. */
  get undecided(): bool {
    return this.phase <= Phase.HoldingFirstPacket || this.phase == Phase.ReadingErrorBody; // Request, AwaitingResponse, HoldingFirstPacket
  }

  /** A held error whose body (or end) is still to come: whether it has all reached Envoy matters to the delivery. */
  get awaitsHeldErrorBody(): bool {
    return this.primaryHeldWhole && !this.primaryHeadersOnly && this.primaryStatus >= 400;
  }

  get replayable(): bool {
    return this.notReplayableReason.length == 0;
  }
}

/** An empty list with room for a fallback's usual two attempts (the primary, one backup): no regrowth on the way. */
function roomForTwo(): Attempt[] {
  const list = new Array<Attempt>(2);
  list.length = 0;
  return list;
}
