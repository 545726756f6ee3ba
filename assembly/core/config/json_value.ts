// A small JSON document model for the configuration parsers (config.ts, upstream/guard_config.ts),
// with the subset of json-as's API they use (JSON.parse<JSON.Value>, Value#type/get<T>/toString,
// Obj#has/get/keys, Arr). Written here because json-as's generic parser and serialiser, with the
// float formatting and tables they pull in, were about a third of the release module (issue 13).
// The text is always checked first by json_scan.firstJsonError (syntax, nesting depth) and is a
// decoded UTF-8 string, so this parser takes well-formed JSON as given. Runs once per configuration.

export namespace JSON {
  /** Value kinds; numbers are all F64 (U8..F64 is json-as's numeric range, kept for the callers). */
  export enum Types {
    Null = 0,
    Bool = 1,
    U8 = 2,
    F64 = 3,
    String = 4,
    Array = 5,
    Object = 6,
  }

  export type Arr = Array<Value>;

  export class Value {
    type: Types = Types.Null;
    private flag: bool = false;
    private number: f64 = 0;
    /** The string's text, or a number's source text (printed back as written). */
    private text: string = "";
    private list: Arr | null = null;
    private members: Obj | null = null;

    static ofBool(b: bool): Value {
      const v = new Value();
      v.type = Types.Bool;
      v.flag = b;
      return v;
    }

    static ofNumber(source: string): Value {
      const v = new Value();
      v.type = Types.F64;
      v.text = source;
      v.number = parseFloat(source);
      return v;
    }

    static ofString(s: string): Value {
      const v = new Value();
      v.type = Types.String;
      v.text = s;
      return v;
    }

    static ofArray(list: Arr): Value {
      const v = new Value();
      v.type = Types.Array;
      v.list = list;
      return v;
    }

    static ofObject(obj: Obj): Value {
      const v = new Value();
      v.type = Types.Object;
      v.members = obj;
      return v;
    }

    /** The value as T: bool, f64, string, Obj or Arr; the caller has checked `type`. */
    get<T>(): T {
      if (isBoolean<T>()) return <T>this.flag;
      if (isFloat<T>()) return <T>this.number;
      if (isString<T>()) return changetype<T>(this.text);
      if (idof<T>() == idof<Obj>()) return changetype<T>(this.members!);
      return changetype<T>(this.list!);
    }

    /** Compact JSON; numbers as written. Control characters stay raw (config.ts escapes errors). */
    toString(): string {
      switch (this.type) {
        case Types.Bool: return this.flag ? "true" : "false";
        case Types.F64: return this.text;
        case Types.String: return quote(this.text);
        case Types.Array: {
          const list = this.list!;
          let out = "[";
          for (let i = 0; i < list.length; i++) out += (i > 0 ? "," : "") + list[i].toString();
          return out + "]";
        }
        case Types.Object: {
          const obj = this.members!;
          const keys = obj.keys();
          let out = "{";
          for (let i = 0; i < keys.length; i++) out += (i > 0 ? "," : "") + quote(keys[i]) + ":" + obj.get(keys[i])!.toString();
          return out + "}";
        }
        default: return "null";
      }
    }
  }

  /** An object's members in document order; a repeated key keeps its first place and its last value. */
  export class Obj {
    private names: string[] = [];
    private values: Map<string, Value> = new Map<string, Value>();

    set(key: string, value: Value): void {
      if (!this.values.has(key)) this.names.push(key);
      this.values.set(key, value);
    }

    has(key: string): bool {
      return this.values.has(key);
    }

    get(key: string): Value | null {
      return this.values.has(key) ? this.values.get(key) : null;
    }

    keys(): string[] {
      return this.names.slice(0);
    }
  }

  /** Parses well-formed JSON text (see the file comment); T is JSON.Value. */
  export function parse<T>(text: string): T {
    const reader = new Reader(text);
    return changetype<T>(reader.value());
  }
}

/**
 * A key as it would be written in JSON, without the quotes (as JS's JSON.stringify escapes it):
 * an error names a field the way the configuration spells it, also when the key holds escapes.
 */
export function keyAsWritten(key: string): string {
  let out = "";
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    if (c == 0x22) out += "\\\"";
    else if (c == 0x5c) out += "\\\\";
    else if (c >= 0x20) out += key.charAt(i);
    else if (c == 0x08) out += "\\b";
    else if (c == 0x09) out += "\\t";
    else if (c == 0x0a) out += "\\n";
    else if (c == 0x0c) out += "\\f";
    else if (c == 0x0d) out += "\\r";
    else out += "\\u00" + (c < 0x10 ? "0" : "1") + "0123456789abcdef".charAt(c & 15);
  }
  return out;
}

function quote(s: string): string {
  let out = "\"";
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    out += c == 0x22 ? "\\\"" : c == 0x5c ? "\\\\" : s.charAt(i);
  }
  return out + "\"";
}

class Reader {
  private at: i32 = 0;

  constructor(private readonly text: string) {}

  value(): JSON.Value {
    this.skipSpace();
    const c = this.text.charCodeAt(this.at);
    if (c == 0x7b) return JSON.Value.ofObject(this.object());
    if (c == 0x5b) return JSON.Value.ofArray(this.array());
    if (c == 0x22) return JSON.Value.ofString(this.string());
    if (c == 0x74) {
      this.at += 4;
      return JSON.Value.ofBool(true);
    }
    if (c == 0x66) {
      this.at += 5;
      return JSON.Value.ofBool(false);
    }
    if (c == 0x6e) {
      this.at += 4;
      return new JSON.Value();
    }
    const start = this.at;
    while (this.at < this.text.length && isNumberChar(this.text.charCodeAt(this.at))) this.at++;
    return JSON.Value.ofNumber(this.text.substring(start, this.at));
  }

  private object(): JSON.Obj {
    const obj = new JSON.Obj();
    this.at++; // {
    this.skipSpace();
    if (this.text.charCodeAt(this.at) == 0x7d) {
      this.at++;
      return obj;
    }
    let more = true;
    while (more) {
      this.skipSpace();
      const key = this.string();
      this.skipSpace();
      this.at++; // :
      obj.set(key, this.value());
      this.skipSpace();
      more = this.text.charCodeAt(this.at++) == 0x2c; // , (else })
    }
    return obj;
  }

  private array(): JSON.Arr {
    const list = new Array<JSON.Value>();
    this.at++; // [
    this.skipSpace();
    if (this.text.charCodeAt(this.at) == 0x5d) {
      this.at++;
      return list;
    }
    let more = true;
    while (more) {
      list.push(this.value());
      this.skipSpace();
      more = this.text.charCodeAt(this.at++) == 0x2c; // , (else ])
    }
    return list;
  }

  /** A string literal at `at` (its opening quote), unescaped. */
  private string(): string {
    const text = this.text;
    const start = ++this.at;
    while (text.charCodeAt(this.at) != 0x22 && text.charCodeAt(this.at) != 0x5c) this.at++;
    if (text.charCodeAt(this.at) == 0x22) return text.substring(start, this.at++);
    let out = text.substring(start, this.at);
    let c = text.charCodeAt(this.at++);
    for (; c != 0x22; c = text.charCodeAt(this.at++)) {
      if (c != 0x5c) {
        out += String.fromCharCode(c);
        continue;
      }
      const e = text.charCodeAt(this.at++);
      if (e == 0x75) {
        // \uXXXX: one UTF-16 code unit, so a surrogate pair comes out as the pair it encodes.
        out += String.fromCharCode(<i32>I32.parseInt(text.substring(this.at, this.at + 4), 16));
        this.at += 4;
      } else {
        out += e == 0x6e ? "\n" : e == 0x74 ? "\t" : e == 0x72 ? "\r" : e == 0x62 ? "\b" : e == 0x66 ? "\f" : String.fromCharCode(e);
      }
    }
    return out;
  }

  private skipSpace(): void {
    for (;;) {
      const c = this.text.charCodeAt(this.at);
      if (c != 0x20 && c != 0x09 && c != 0x0a && c != 0x0d) return;
      this.at++;
    }
  }
}

function isNumberChar(c: i32): bool {
  return (c >= 0x30 && c <= 0x39) || c == 0x2d || c == 0x2b || c == 0x2e || c == 0x65 || c == 0x45;
}
