// How the streamed mode skips services that cool: the downstream role (streamed/streamed_stream.ts)
// sets the stream property `ai_fallback.start` (filter state `wasm.ai_fallback.start`, which no client
// can set) to the attempt the chain starts at, and clears the route cache; the generated routes
// (scripts/streamed_config_lib.cjs cooldownRoutes) match that filter state and start their priority
// groups there. The services skipped go in `ai_fallback.skipped`, for the backups' report.
import { WasmResult } from "../abi/enums";
import { callForeignFunction, getStringPropertyAt, propertyPath, setProperty } from "../abi/hostcalls";
import { Attempt } from "../core/attempts";
import { byteStringToBuffer } from "../core/bytes";
import { RESULT_COOLING } from "../core/policy";

const START_PATH = propertyPath(["ai_fallback.start"]);
const SKIPPED_PATH = propertyPath(["ai_fallback.skipped"]);
const CLEAR_ROUTE_CACHE = String.UTF8.encode("clear_route_cache");
const ENTRY_SEPARATOR = "\n";
const MODEL_SEPARATOR = "\t";

/**
 * Downstream: the chain starts at `attempt` (2 = the first backup), past the services `skipped`
 * ("service\tmodel" labels, byte strings); the route is chosen again.
 */
export function tellStart(attempt: i32, skipped: string[]): WasmResult {
  setProperty(SKIPPED_PATH, byteStringToBuffer(skipped.join(ENTRY_SEPARATOR)));
  const result = setProperty(START_PATH, String.UTF8.encode(attempt.toString()));
  if (result != WasmResult.Ok) return result;
  return callForeignFunction(CLEAR_ROUTE_CACHE);
}

/** A skipped service's entry for tellStart. */
export function skippedEntry(service: string, model: string): string {
  return service + MODEL_SEPARATOR + model;
}

/** Upstream (a backup): the services the chain started past, as `cooling` attempts; none when it started at the primary. */
export function readSkipped(): Attempt[] {
  const out = new Array<Attempt>();
  const value = getStringPropertyAt(SKIPPED_PATH);
  if (value === null || value.length == 0) return out;
  const entries = value.split(ENTRY_SEPARATOR);
  for (let i = 0; i < entries.length; i++) {
    const tab = entries[i].indexOf(MODEL_SEPARATOR);
    if (tab < 0) continue;
    out.push(new Attempt(entries[i].slice(0, tab), entries[i].slice(tab + 1), RESULT_COOLING));
  }
  return out;
}
