// Publishes a fallback's outcome (fallback_outcome.ts) as a stream property: Envoy keeps it as filter
// state `wasm.ai_fallback.outcome`, which an access log prints with %FILTER_STATE(wasm.ai_fallback.outcome:PLAIN)%.
// Only on a fallback: one host call, never on the happy path.
import { propertyPath, setStringProperty } from "../abi/hostcalls";
import { OUTCOME_PROPERTY } from "../core/fallback_outcome";

const OUTCOME_PATH = propertyPath([OUTCOME_PROPERTY]);

/** `text` (a byte string) becomes the request's outcome filter state. */
export function publishOutcome(text: string): void {
  setStringProperty(OUTCOME_PATH, text);
}
