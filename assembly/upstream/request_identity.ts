// Which downstream request an attempt belongs to, and whether that request is gone. The key is minted
// by the first attempt filter of a request that needs one (a counter of this VM: every attempt of a
// request runs on one worker, so in one VM) and left in the request's filter state
// `wasm.ai_fallback.key`, which every attempt's upstream filter shares (Envoy gives the upstream
// filters the downstream request's stream info). No client can set filter state, choose or share a key
// (unlike x-request-id, which Envoy keeps from trusted or, without use_remote_address, any clients),
// and the key ends with its request. Read and minted on the error path only.
import { getU64PropertyAt, propertyPath, setU64Property } from "../abi/hostcalls";
import { WasmResult } from "../abi/enums";
import { RequestIdentity } from "./attempt_log";

const KEY_PATH = propertyPath(["ai_fallback.key"]);
const RESPONSE_FLAGS = propertyPath(["response", "flags"]);
/** Envoy's legacy response flags: the client closed its connection (DC), or reset its stream (DR). */
const DOWNSTREAM_CONNECTION_TERMINATION: u64 = 0x4000;
const DOWNSTREAM_REMOTE_RESET: u64 = 0x10000000;
/** The last key this VM minted (0: none; keys start at 1). */
let lastKey: u64 = 0;

/** The request's key if an attempt of it minted one; null otherwise (then no attempt left a record). */
export function knownRequestIdentity(): RequestIdentity | null {
  const key = getU64PropertyAt(KEY_PATH, 0);
  return key == 0 ? null : new RequestIdentity(key);
}

/** The request's key, minted now if no attempt of it has one; null when Envoy keeps no filter state (then nothing is recorded). */
export function requestIdentity(): RequestIdentity | null {
  const known = knownRequestIdentity();
  if (known !== null) return known;
  const key = lastKey + 1;
  if (setU64Property(KEY_PATH, key) != WasmResult.Ok) return null;
  lastKey = key;
  return new RequestIdentity(key);
}

/** The client left (closed its connection or reset its stream): no attempt follows this one. */
export function clientLeft(): bool {
  return (getU64PropertyAt(RESPONSE_FLAGS, 0) & (DOWNSTREAM_CONNECTION_TERMINATION | DOWNSTREAM_REMOTE_RESET)) != 0;
}
