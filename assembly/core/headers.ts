// An HTTP header as the filter handles it: lower-case name and value as byte strings (see bytes.ts). Pure.

export class Header {
  constructor(public name: string, public value: string) {}
}

/** Request header edits: the names to remove, then the headers to set. */
export class HeaderEdits {
  removals: string[] = [];
  sets: Header[] = [];
}

/** The first value of `lowerName`, or null. */
export function findHeader(headers: Header[], lowerName: string): string | null {
  for (let i = 0; i < headers.length; i++) {
    if (headers[i].name == lowerName) return headers[i].value;
  }
  return null;
}
