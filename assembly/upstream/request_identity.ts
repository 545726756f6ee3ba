// Which downstream request an attempt belongs to, and whether that request is gone, from what only
// Envoy sets: the downstream connection's id (a counter of the Envoy process) and the request's start
// time in ns. Every attempt's upstream filter reads them from the one downstream request's stream info,
// so all attempts of a request agree, and no client can set, choose or grow them (unlike x-request-id,
// which Envoy keeps from trusted or, without use_remote_address, any clients). Read on the error path only.
import { getPropertyAt, propertyPath } from "../abi/hostcalls";
import { RequestIdentity } from "./attempt_log";

const CONNECTION_ID = propertyPath(["connection", "id"]);
const REQUEST_TIME = propertyPath(["request", "time"]);
const RESPONSE_FLAGS = propertyPath(["response", "flags"]);
/** Envoy's legacy response flags: the client closed its connection (DC), or reset its stream (DR). */
const DOWNSTREAM_CONNECTION_TERMINATION: u64 = 0x4000;
const DOWNSTREAM_REMOTE_RESET: u64 = 0x10000000;

function u64Property(path: ArrayBuffer): u64 {
  const bytes = getPropertyAt(path);
  if (bytes == null || bytes.byteLength != 8) return 0;
  return load<u64>(changetype<usize>(bytes));
}

/** The request this attempt belongs to; null when Envoy does not say (then nothing is recorded). */
export function requestIdentity(): RequestIdentity | null {
  const connectionId = u64Property(CONNECTION_ID);
  const startNs = u64Property(REQUEST_TIME);
  if (startNs == 0) return null;
  return new RequestIdentity(connectionId, startNs);
}

/** The client left (closed its connection or reset its stream): no attempt follows this one. */
export function clientLeft(): bool {
  return (u64Property(RESPONSE_FLAGS) & (DOWNSTREAM_CONNECTION_TERMINATION | DOWNSTREAM_REMOTE_RESET)) != 0;
}
