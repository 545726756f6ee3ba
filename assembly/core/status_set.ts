// A set of HTTP status codes 400..599: which primary answers trigger a fallback. Pure.

import { asciiLower } from "./bytes";

export class StatusSet {
  private readonly member: StaticArray<bool> = new StaticArray<bool>(600);

  static allErrors(): StatusSet {
    const set = new StatusSet();
    set.addRange(400, 599);
    return set;
  }

  static of(codes: i32[]): StatusSet {
    const set = new StatusSet();
    for (let i = 0; i < codes.length; i++) set.add(codes[i]);
    return set;
  }

  add(status: i32): void {
    if (status >= 0 && status < 600) this.member[status] = true;
  }

  addRange(from: i32, to: i32): void {
    for (let s = from; s <= to; s++) this.add(s);
  }

  /** Adds "4xx", "5xx" or a code written as text ("429"); false for anything else. */
  addText(text: string): bool {
    const lower = asciiLower(text);
    if (lower == "4xx") {
      this.addRange(400, 499);
      return true;
    }
    if (lower == "5xx") {
      this.addRange(500, 599);
      return true;
    }
    if (text.length != 3) return false;
    let code = 0;
    for (let i = 0; i < 3; i++) {
      const c = text.charCodeAt(i);
      if (c < 48 || c > 57) return false;
      code = code * 10 + (c - 48);
    }
    if (code < 400 || code > 599) return false;
    this.add(code);
    return true;
  }

  has(status: i32): bool {
    return status >= 0 && status < 600 && this.member[status];
  }
}
