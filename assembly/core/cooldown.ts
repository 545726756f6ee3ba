// A model service known to be down is skipped for a while (its cooldown), then tried by one request
// (the probe); the probe's success puts it back in use at once. Each service's state is one line of
// a table every worker shares (host/cooldown_store.ts keeps it in proxy-wasm shared data); this file
// is the state machine and the table's text form. Pure. Times are ms on the gateway's monotonic clock.

/** The `cooldown` section of the configuration. */
export class CooldownSettings {
  /** Failures of one service within `windowMs` that start its cooldown. */
  failures: i32 = 3;
  windowMs: u32 = 10_000;
  /** How long a cooling service is skipped before one request probes it (and again after a failed probe). */
  durationMs: u32 = 30_000;
  /** A Retry-After (429/503) sets the cooldown to its own length, at most this. */
  maxRetryAfterMs: u32 = 60_000;
  /** The primary's cluster name where the configuration cannot learn it from the route (the streamed mode's generator sets it). */
  primary: string = "";
}

/** An answer that counts against a service: none at all (0), too many requests, or a 5xx. */
export function countsAsDown(status: i32): bool {
  return status == 0 || status == 429 || status >= 500;
}

export class ServiceState {
  /** In cooldown: skipped until `coolUntilMs`, then half-open (one probe at a time) until a success. */
  cooling: bool = false;
  coolUntilMs: u64 = 0;
  /** A probe went out and its result has not come: no other request probes before this time. */
  probeUntilMs: u64 = 0;
  /** Failures counted in the window that began at `windowStartMs` (while not cooling). */
  failures: i32 = 0;
  windowStartMs: u64 = 0;
}

export const enum Admission {
  /** Not cooling: the service is called. */
  Use = 0,
  /** Cooling: skipped. */
  Skip = 1,
  /** Its cooldown is over and no probe is out: this request may probe it (claimProbe). */
  Probe = 2,
}

export function admission(state: ServiceState | null, nowMs: u64): Admission {
  if (state === null || !state.cooling) return Admission.Use;
  if (nowMs < state.coolUntilMs || nowMs < state.probeUntilMs) return Admission.Skip;
  return Admission.Probe;
}

/** This request probes the service: no other does until its result, or until `leaseMs` passed without one. */
export function claimProbe(state: ServiceState, nowMs: u64, leaseMs: u64): void {
  state.probeUntilMs = nowMs + leaseMs;
}

/**
 * The service failed. `retryAfterMs` >= 0: it said when to come back (429/503 with Retry-After), and
 * that (capped) is its cooldown at once. Returns true when the service enters its cooldown now.
 */
export function recordFailure(state: ServiceState, settings: CooldownSettings, nowMs: u64, retryAfterMs: i64): bool {
  const wasCooling = state.cooling;
  if (retryAfterMs >= 0) {
    const ms = retryAfterMs < <i64>settings.maxRetryAfterMs ? <u64>retryAfterMs : <u64>settings.maxRetryAfterMs;
    startCooling(state, nowMs + ms);
    return !wasCooling;
  }
  if (wasCooling) {
    // A failed probe (or a request that left before the cooldown began): the cooldown starts again.
    startCooling(state, nowMs + settings.durationMs);
    return false;
  }
  if (state.failures == 0 || nowMs - state.windowStartMs > <u64>settings.windowMs) {
    state.windowStartMs = nowMs;
    state.failures = 0;
  }
  state.failures++;
  if (state.failures < settings.failures) return false;
  startCooling(state, nowMs + settings.durationMs);
  return true;
}

function startCooling(state: ServiceState, untilMs: u64): void {
  state.cooling = true;
  if (untilMs > state.coolUntilMs) state.coolUntilMs = untilMs;
  state.probeUntilMs = 0;
  state.failures = 0;
}

/** The service answered: it is used again at once. Returns true when it leaves its cooldown now. */
export function recordSuccess(state: ServiceState): bool {
  const was = state.cooling;
  state.cooling = false;
  state.coolUntilMs = 0;
  state.probeUntilMs = 0;
  state.failures = 0;
  return was;
}

/** Whether the state says anything (a service with none is dropped from the table). */
export function isTracked(state: ServiceState): bool {
  return state.cooling || state.failures > 0;
}

/** Services in cooldown (skipped or half-open). */
export function coolingCount(table: Map<string, ServiceState>): i32 {
  const states = table.values();
  let n = 0;
  for (let i = 0; i < states.length; i++) if (states[i].cooling) n++;
  return n;
}

// The table's text: one line per tracked service, "<service> <cooling 0|1> <coolUntil> <probeUntil> <failures> <windowStart>".
// Service names are Envoy cluster names (no spaces or line breaks).

export function formatTable(table: Map<string, ServiceState>): string {
  const names = table.keys();
  let out = "";
  for (let i = 0; i < names.length; i++) {
    const s = table.get(names[i]);
    if (!isTracked(s)) continue;
    out += names[i] + " " + (s.cooling ? "1" : "0") + " " + s.coolUntilMs.toString() + " " + s.probeUntilMs.toString() + " " +
      s.failures.toString() + " " + s.windowStartMs.toString() + "\n";
  }
  return out;
}

/** The table read back; a line that does not parse is left out (it is rewritten without it). */
export function parseTable(text: string): Map<string, ServiceState> {
  const table = new Map<string, ServiceState>();
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const f = lines[i].split(" ");
    if (f.length != 6 || f[0].length == 0) continue;
    const s = new ServiceState();
    s.cooling = f[1] == "1";
    s.coolUntilMs = parseU64(f[2]);
    s.probeUntilMs = parseU64(f[3]);
    s.failures = <i32>parseU64(f[4]);
    s.windowStartMs = parseU64(f[5]);
    table.set(f[0], s);
  }
  return table;
}

function parseU64(text: string): u64 {
  let n: u64 = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return 0;
    n = n * 10 + <u64>(c - 0x30);
  }
  return n;
}
