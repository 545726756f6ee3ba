// The request header edits for one backup: the streamed mode's attempt on its cluster, and a handoff hop. Pure.
//
// Envoy's router keeps one request header map for all attempts: an upstream filter's edits on one
// attempt are still there on the next. So each backup's edits are computed from the headers as
// this attempt sees them, a backup removes the headers earlier backups set and it does not (the
// generator lists them), and the generator (scripts/streamed-config.mjs) refuses orders whose
// leftovers would be wrong (a backup keeping the client's credentials after one that replaced them).
import { Header, HeaderEdits, findHeader } from "./headers";
import { Backup } from "./config/config";
import { withoutCredentialParameters } from "./replay";

/**
 * Whether `backup`'s edits depend on the client's request headers (credentials to remove, the
 * path's credential parameters, `dropHeaders`). When not, its filter does not read them: one host
 * call (and a copy of every header) less per fallback.
 */
export function editsReadClientHeaders(backup: Backup): bool {
  return backup.replacesCredentials || backup.dropHeaders.length > 0;
}

/**
 * What `backup`'s filter changes in the request headers `current` before its attempt is sent
 * (`current` may be empty when editsReadClientHeaders(backup) is false: nothing depends on it).
 * `earlierBackupHeaders`: the names earlier backups' `headers` set, removed unless this backup sets
 * them itself (whether or not they are there: removing an absent header is a no-op).
 */
export function attemptHeaderEdits(current: Header[], backup: Backup, earlierBackupHeaders: string[]): HeaderEdits {
  const edits = new HeaderEdits();
  for (let i = 0; i < earlierBackupHeaders.length; i++) {
    const name = earlierBackupHeaders[i];
    if (findHeader(backup.headers, name) === null && !edits.removals.includes(name)) edits.removals.push(name);
  }
  for (let i = 0; i < current.length; i++) {
    const name = current[i].name;
    const dropCredential = backup.replacesCredentials && (backup.isCredentialHeader(name) || name == "cookie");
    const ownValue = findHeader(backup.headers, name) !== null;
    if ((dropCredential && !ownValue) || backup.dropHeaders.includes(name)) {
      if (!edits.removals.includes(name)) edits.removals.push(name);
    }
  }
  const path = backup.path;
  if (path !== null) {
    edits.sets.push(new Header(":path", path));
  } else if (backup.replacesCredentials) {
    const clientPath = findHeader(current, ":path");
    if (clientPath !== null) {
      const cleaned = withoutCredentialParameters(clientPath);
      if (cleaned != clientPath) edits.sets.push(new Header(":path", cleaned));
    }
  }
  const authority = backup.authority;
  if (authority !== null) edits.sets.push(new Header(":authority", authority));
  for (let i = 0; i < backup.headers.length; i++) edits.sets.push(backup.headers[i]);
  // The body's model is rewritten at its end: its length changes, Envoy frames it anew. (Removed
  // whether or not the client sent one: removing an absent header is a no-op, and knowing would
  // need every header read.)
  if (backup.modelLiteral !== null) edits.removals.push("content-length");
  return edits;
}

/** A backup whose edits do not depend on the client's headers reads none. */
export const NO_HEADERS: Header[] = [];
