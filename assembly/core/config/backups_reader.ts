// The `backups` section: each backup's service, model, timeout, path, authority, headers and
// dropHeaders, checked field by field. Pure.
import { JSON, keyAsWritten } from "./json_value";
import { Header } from "../headers";
import { asciiLower, utf8ByteString } from "../bytes";
import { jsonStringLiteral } from "../model_rewrite";
import { Unit } from "./config_messages";
import { Backup, PASS_THROUGH } from "./config";
import { describeChar, firstInvalidUriChar, isHeaderName, isReservedHeader, isWhitespace } from "./config_checks";
import { ConfigReader } from "./config_reader";

export const BACKUP_KEYS = ["service", "model", "timeout", "path", "authority", "headers", "dropHeaders"];

export function readBackups(r: ConfigReader, v: JSON.Value, field: string): Backup[] | null {
  if (v.type != JSON.Types.Array) {
    r.refuse(field, "must be an array of backups, got " + v.toString());
    return null;
  }
  const list = v.get<JSON.Arr>();
  if (list.length == 0) {
    r.refuse(field, "must list at least one backup");
    return null;
  }
  const out = new Array<Backup>();
  for (let i = 0; i < list.length; i++) {
    const backup = readBackup(r, list.at(i), field + "[" + i.toString() + "]");
    if (backup == null) return null;
    out.push(backup);
  }
  return out;
}

export function readBackup(r: ConfigReader, v: JSON.Value, field: string): Backup | null {
  if (v.type != JSON.Types.Object) {
    r.refuse(field, "must be an object like {\"service\": \"cluster\", \"model\": \"name\"}, got " + v.toString());
    return null;
  }
  const obj = v.get<JSON.Obj>();
  if (!r.checkKeys(obj, BACKUP_KEYS, field + ".")) return null;
  const backup = new Backup();
  backup.credentialHeaders = r.credentialHeaders;
  if (!obj.has("service")) {
    r.refuse(field + ".service", "required: the name of an Envoy cluster");
    return null;
  }
  const service = r.readString(obj.get("service")!, field + ".service");
  if (service == null) return null;
  if (service.length == 0) {
    r.refuse(field + ".service", "must not be empty");
    return null;
  }
  backup.service = service;
  backup.serviceBytes = String.UTF8.encode(service);
  backup.serviceLabel = utf8ByteString(service);
  if (obj.has("model") && obj.get("model")!.type != JSON.Types.Null) {
    const model = r.readString(obj.get("model")!, field + ".model");
    if (model == null) return null;
    if (model.length > 0 && model != PASS_THROUGH) {
      backup.model = model;
      backup.modelLabel = utf8ByteString(model);
      backup.modelLiteral = jsonStringLiteral(model);
    }
  }
  if (obj.has("timeout")) {
    const n = r.readInteger(obj.get("timeout")!, field + ".timeout", 1, 2147483647, Unit.Milliseconds);
    if (n < 0) return null;
    backup.timeoutMs = <u32>n;
  }
  if (obj.has("path")) {
    const path = r.readString(obj.get("path")!, field + ".path");
    if (path == null) return null;
    if (!path.startsWith("/")) {
      r.refuse(field + ".path", "must start with \"/\", got \"" + path + "\"");
      return null;
    }
    const bad = firstInvalidUriChar(path, false);
    if (bad >= 0) {
      r.refuse(field + ".path", "must be a URL path (and query), percent-encoded: " + describeChar(path, bad) +
        " at character " + bad.toString() + " is not allowed");
      return null;
    }
    backup.path = utf8ByteString(path);
  }
  if (obj.has("authority")) {
    const authority = r.readString(obj.get("authority")!, field + ".authority");
    if (authority == null) return null;
    if (authority.length == 0) {
      r.refuse(field + ".authority", "must not be empty");
      return null;
    }
    const bad = firstInvalidUriChar(authority, true);
    if (bad >= 0) {
      r.refuse(field + ".authority", "must be a host or host:port: " + describeChar(authority, bad) +
        " at character " + bad.toString() + " is not allowed");
      return null;
    }
    backup.authority = utf8ByteString(authority);
  }
  if (obj.has("headers")) {
    if (!readBackupHeaders(r, obj.get("headers")!, field + ".headers", backup)) return null;
  }
  if (obj.has("dropHeaders")) {
    const names = r.readHeaderNames(obj.get("dropHeaders")!, field + ".dropHeaders");
    if (names == null) return null;
    backup.dropHeaders = names;
  }
  return backup;
}

export function readBackupHeaders(r: ConfigReader, v: JSON.Value, field: string, backup: Backup): bool {
  if (v.type != JSON.Types.Object) {
    return r.refuse(field, "must be an object of header name -> string value, got " + v.toString());
  }
  const obj = v.get<JSON.Obj>();
  const names = obj.keys();
  for (let i = 0; i < names.length; i++) {
    const name = asciiLower(names[i]);
    if (!isHeaderName(name) && !name.startsWith(":")) {
      return r.refuse(field + "." + keyAsWritten(names[i]), "not a valid header name");
    }
    if (isReservedHeader(name)) {
      return r.refuse(field + "." + keyAsWritten(names[i]), "this header cannot be set (pseudo-headers, host and framing belong to the filter; use path/authority)");
    }
    const value = r.readString(obj.get(names[i])!, field + "." + keyAsWritten(names[i]));
    if (value == null) return false;
    // Envoy would trim such whitespace, so the value sent would differ from the one configured.
    if (value.length > 0 && (isWhitespace(value.charCodeAt(0)) || isWhitespace(value.charCodeAt(value.length - 1)))) {
      return r.refuse(field + "." + keyAsWritten(names[i]), "must not begin or end with whitespace");
    }
    backup.headers.push(new Header(utf8ByteString(name), utf8ByteString(value)));
    if (backup.isCredentialHeader(name)) backup.replacesCredentials = true;
  }
  return true;
}
