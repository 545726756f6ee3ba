// AssemblyScript's abort (a failed assertion or a throw) reported through proxy_log before the trap,
// so Envoy's log says what went wrong instead of only "wasm trap".
import { proxy_log } from "./imports";

export function onAbort(message: string | null, fileName: string | null, line: u32, column: u32): void {
  let text = "abort: ";
  text += message !== null ? message : "(no message)";
  text += " at ";
  text += fileName !== null ? fileName : "?";
  text += ":" + line.toString() + ":" + column.toString();
  const bytes = String.UTF8.encode(text);
  proxy_log(5, changetype<usize>(bytes), bytes.byteLength);
  unreachable();
}
