// HTTP status codes as the text a fallback reports (`503`, `status=503`), each made once per code
// and then shared: every fallback reports its statuses, and a new string each time would cost an
// allocation and later a collection. Strings are never changed, so sharing one is safe. Pure.

const FIRST: i32 = 100;
const LAST: i32 = 599;
const digits = new StaticArray<string | null>(LAST - FIRST + 1);
const triggers = new StaticArray<string | null>(LAST - FIRST + 1);

/** `status` in decimal, e.g. "503". */
export function statusText(status: i32): string {
  if (status < FIRST || status > LAST) return status.toString();
  let text = unchecked(digits[status - FIRST]);
  if (changetype<usize>(text) == 0) {
    text = status.toString();
    unchecked(digits[status - FIRST] = text);
  }
  return text;
}

/** The trigger of a status that started a fallback, `status=503`. */
export function statusTrigger(status: i32): string {
  if (status < FIRST || status > LAST) return "status=" + status.toString();
  let text = unchecked(triggers[status - FIRST]);
  if (changetype<usize>(text) == 0) {
    text = "status=" + statusText(status);
    unchecked(triggers[status - FIRST] = text);
  }
  return text;
}
