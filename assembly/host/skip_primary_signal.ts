// How the dispatch filter asks the primary guard (upstream/guard_stream.ts) to keep a request from a
// cooling primary: a stream property (filter state `wasm.ai_fallback.skip_primary`, which no client
// can set), read by the guard only while some request of its VM asked (cooldownStore.pendingSkips),
// so a healthy request costs the guard nothing. The guard runs after every filter before the
// router: a request some filter refused never gets this far, and never reaches a backup.
import { WasmResult } from "../abi/enums";
import { getPropertyAt, propertyPath, setProperty } from "../abi/hostcalls";

const SKIP_PRIMARY_PATH = propertyPath(["ai_fallback.skip_primary"]);
const COOLING = String.UTF8.encode("cooling");

/** Downstream: this request skips the primary (one host call, only while the primary cools). */
export function tellGuardToSkip(): WasmResult {
  return setProperty(SKIP_PRIMARY_PATH, COOLING);
}

/** Upstream (the guard): whether the downstream filter asked to skip the primary. */
export function guardAskedToSkip(): bool {
  const value = getPropertyAt(SKIP_PRIMARY_PATH);
  return value !== null && value.byteLength > 0;
}
