// Attempts that overlap (`hedge`, hedge_race.ts), as one attempt's filter sees them: a backup joins
// its request's shared record, writes its result into its own place, and whichever attempt's first
// content comes first wins the race and reports it on its held headers.
import { MapType } from "../abi/enums";
import { monotonicMs, replaceHeader } from "../abi/hostcalls";
import { Backup, UpstreamConfig } from "../core/config/config";
import { Attempt, formatAttempts } from "../core/attempts";
import { servedBy } from "../core/fallback_outcome";
import { HEADER_ATTEMPTS, HEADER_TRIGGER } from "../core/replay";
import { showKeptBytes } from "../host/vm_budget";
import { AttemptRecord } from "./attempt_log";
import { joinRecord, primaryWinsOpenRace, reportedAttempts, winRace } from "./hedge_race";
import { knownRequestIdentity, requestIdentity } from "./request_identity";
import { UpstreamRoot, attemptLog } from "./upstream_root";
import { AttemptOutcome, PRIMARY_LABEL } from "./attempt_outcome";

export class AttemptRace extends AttemptOutcome {
  /** The primary's 2xx status, while its first body byte may still decide a race. */
  protected status2xx: i32 = 0;

  constructor(id: u32, root: UpstreamRoot) {
    super(id, root);
  }

  /** A backup's attempt joins the request's shared record (hedge_race.ts): the record it reports in. */
  protected joinRace(config: UpstreamConfig, backup: Backup): AttemptRecord {
    const owner = requestIdentity();
    this.owner = owner;
    const race = joinRecord(attemptLog, owner, config.attempt, backup.serviceLabel, backup.modelLabel, monotonicMs());
    this.race = race;
    showKeptBytes();
    if (race.hedge) {
      const hedges = this.upstreamRoot.hedges!;
      hedges.count(hedges.started);
    }
    return race.record;
  }

  /** A backup's result: in its place in a shared record (hedge), else appended. */
  protected noteResult(record: AttemptRecord, service: string, model: string, result: string): void {
    const race = this.race;
    if (race !== null) record.attempts[race.index].result = result;
    else record.attempts.push(new Attempt(service, model, result));
  }

  /** A racing backup's first content: it wins unless the race was decided; its held headers get the final report. */
  protected backupWins(): void {
    const config = this.config!;
    const record = this.record!;
    const race = this.race!;
    if (record.decided) return;
    record.attempts[race.index].result = this.status2xx.toString();
    if (winRace(attemptLog, this.owner, race)) {
      const hedges = this.upstreamRoot.hedges!;
      hedges.count(hedges.wonByBackup);
    }
    replaceHeader(MapType.HttpResponseHeaders, HEADER_TRIGGER, record.trigger());
    if (!config.hideTopology) replaceHeader(MapType.HttpResponseHeaders, HEADER_ATTEMPTS, reportedAttempts(record));
    this.settle(config, record, false, true, false);
  }

  /** The primary's first content came while backups raced it: they lose; its answer says so. */
  protected primaryWins(): void {
    const config = this.config!;
    if (!config.hedge) return;
    const record = primaryWinsOpenRace(attemptLog, knownRequestIdentity(), this.status2xx);
    if (record === null) return;
    const hedges = this.upstreamRoot.hedges!;
    hedges.count(hedges.wonByPrimary);
    // Its headers are still held here: the report goes out with them.
    replaceHeader(MapType.HttpResponseHeaders, HEADER_TRIGGER, record.trigger());
    if (!config.hideTopology) replaceHeader(MapType.HttpResponseHeaders, HEADER_ATTEMPTS, formatAttempts(record.attempts));
    this.logOutcome(servedBy(PRIMARY_LABEL, "pass-through") + ", which won the race", record);
  }
}
