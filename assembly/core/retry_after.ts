// A 429/503's Retry-After (RFC 9110 10.2.3): delay-seconds, or an HTTP-date (IMF-fixdate,
// "Sun, 06 Nov 1994 08:49:37 GMT"). Pure.

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** The wait in ms from `wallNowMs` (Unix ms), 0 for a date already past; -1 when absent or not understood. */
export function retryAfterMs(value: string | null, wallNowMs: u64): i64 {
  if (value === null) return -1;
  const v = value.trim();
  if (v.length == 0) return -1;
  const seconds = digits(v, 0, v.length);
  if (seconds >= 0) return seconds > 2_000_000_000 ? 2_000_000_000_000 : seconds * 1000;
  const at = httpDateMs(v);
  if (at < 0) return -1;
  return <u64>at > wallNowMs ? at - <i64>wallNowMs : 0;
}

/** IMF-fixdate as Unix ms; -1 when it is not one. */
export function httpDateMs(v: string): i64 {
  // "Sun, 06 Nov 1994 08:49:37 GMT": 29 characters.
  if (v.length != 29 || v.charCodeAt(3) != 0x2c || !v.endsWith(" GMT")) return -1;
  const day = digits(v, 5, 7);
  const month = MONTHS.indexOf(v.slice(8, 11));
  const year = digits(v, 12, 16);
  const hour = digits(v, 17, 19);
  const minute = digits(v, 20, 22);
  const second = digits(v, 23, 25);
  if (day < 1 || day > 31 || month < 0 || year < 1970 || hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 60) return -1;
  if (v.charCodeAt(19) != 0x3a || v.charCodeAt(22) != 0x3a) return -1;
  const days = daysFromCivil(year, month + 1, day);
  return ((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000;
}

/** Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
function daysFromCivil(y0: i64, m: i64, d: i64): i64 {
  const y = m <= 2 ? y0 - 1 : y0;
  const era = y / 400;
  const yoe = y - era * 400;
  const doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

/** The decimal number in v[from, to), -1 if any character is not a digit (or too many). */
function digits(v: string, from: i32, to: i32): i64 {
  if (to <= from || to - from > 12) return -1;
  let n: i64 = 0;
  for (let i = from; i < to; i++) {
    const c = v.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return -1;
    n = n * 10 + (c - 0x30);
  }
  return n;
}
