// The configuration reader's shared state and primitives: the first error ("field: why"), the
// warnings, the credential headers in force, and the readers of plain values every section uses. Pure.
import { JSON, keyAsWritten } from "./json_value";
import { asciiLower } from "../bytes";
import { Unit, integerWhy, unknownFieldWhy } from "./config_messages";
import { CREDENTIAL_HEADERS } from "./config";
import { escapeControls, hasControlCharacter, isHeaderName, isNumber, isReservedHeader } from "./config_checks";

/**
 * Walks the parsed JSON; on the first problem it records `error` and returns false/null. The
 * section readers (policy, backups, triggers, limits, rules) take it as their first argument.
 */
export class ConfigReader {
  error: string = "";
  warnings: string[] = [];
  /** The built-in credential headers, plus the configuration's `credentialHeaders` once read. */
  credentialHeaders: string[] = CREDENTIAL_HEADERS;

  refuse(field: string, why: string): bool {
    this.error = escapeControls(field + ": " + why);
    return false;
  }

  checkKeys(obj: JSON.Obj, known: string[], prefix: string): bool {
    const keys = obj.keys();
    for (let i = 0; i < keys.length; i++) {
      if (!known.includes(keys[i])) {
        return this.refuse(prefix + keyAsWritten(keys[i]), unknownFieldWhy(keys[i], known));
      }
    }
    return true;
  }

  /** The top-level `credentialHeaders` of `obj`, if present: added to the built-in list for every backup. */
  readCredentialHeaders(obj: JSON.Obj): bool {
    if (!obj.has("credentialHeaders")) return true;
    const names = this.readHeaderNames(obj.get("credentialHeaders")!, "credentialHeaders");
    if (names == null) return false;
    const all = CREDENTIAL_HEADERS.slice(0);
    for (let i = 0; i < names.length; i++) if (!all.includes(names[i])) all.push(names[i]);
    this.credentialHeaders = all;
    return true;
  }

  /** A list of ordinary header names, lower-cased (case-insensitive): no pseudo-header, host or framing. */
  readHeaderNames(v: JSON.Value, field: string): string[] | null {
    if (v.type != JSON.Types.Array) {
      this.refuse(field, "must be an array of header names, e.g. [\"x-tenant-key\"], got " + v.toString());
      return null;
    }
    const listed = this.readStringList(v, field);
    if (listed == null) return null;
    const names = listed.map<string>((name: string) => asciiLower(name));
    for (let i = 0; i < names.length; i++) {
      if (!isHeaderName(names[i]) || isReservedHeader(names[i])) {
        this.refuse(field + "[" + i.toString() + "]", "must name an ordinary header (not a pseudo-header, host or framing), got \"" + names[i] + "\"");
        return null;
      }
    }
    return names;
  }

  /** A whole number in [min, max]; -1 after refusing. */
  readInteger(v: JSON.Value, field: string, min: i64, max: i64 = 2147483647, unit: Unit = Unit.None): i64 {
    const why = integerWhy(v, min, max, unit);
    if (!isNumber(v)) {
      this.refuse(field, why);
      return -1;
    }
    const f = v.get<f64>();
    if (f != Math.floor(f) || f < <f64>min || f > <f64>max) {
      this.refuse(field, why);
      return -1;
    }
    return <i64>f;
  }

  readString(v: JSON.Value, field: string): string | null {
    if (v.type != JSON.Types.String) {
      this.refuse(field, "must be a string, got " + v.toString());
      return null;
    }
    const s = v.get<string>();
    if (hasControlCharacter(s)) {
      this.refuse(field, "must not contain control characters");
      return null;
    }
    return s;
  }

  readStringList(v: JSON.Value, field: string): string[] | null {
    if (v.type != JSON.Types.Array) {
      this.refuse(field, "must be an array of strings, got " + v.toString());
      return null;
    }
    const list = v.get<JSON.Arr>();
    const out = new Array<string>();
    for (let i = 0; i < list.length; i++) {
      const s = this.readString(list.at(i), field + "[" + i.toString() + "]");
      if (s == null) return null;
      out.push(s);
    }
    return out;
  }
}
