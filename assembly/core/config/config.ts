// Plugin configuration: JSON bytes in, an immutable Config or an error naming the field out. Pure.
// Parsed once per root context (on_configure); streams share it read-only.
import { JSON } from "./json_value";
import { Header, HeaderEdits } from "../headers";
import { RuleMatch, hostOf } from "../rule_match";
import { StatusSet } from "../status_set";
import { CooldownSettings } from "../cooldown";
import { RetrySettings } from "../retry";
import { DEFAULT_RETRY_MARK } from "../retry_mark";

// Defaults, documented in README.md's configuration table.
export const DEFAULT_BACKUP_TIMEOUT_MS: u32 = 120_000;
export const DEFAULT_MAX_REQUEST_BODY_BYTES: u32 = 10 * 1024 * 1024;
/** The copy of a body lives in one wasm buffer (AssemblyScript caps it far below 4 GiB). */
export const MAX_REQUEST_BODY_BYTES: u32 = 256 * 1024 * 1024;
/**
 * The per-VM memory budget (bytes the filter allocates for in-flight requests; see memory_budget.ts).
 * V8 caps a VM at 1 GiB (16384 pages, measured: tests/e2e/dispatch/reliability.test.js); the budget leaves
 * the rest for the module itself, the allocator's fragmentation and short-lived objects.
 */
export const DEFAULT_MAX_KEPT_BYTES_PER_WORKER: u32 = 256 * 1024 * 1024;
export const MAX_KEPT_BYTES_PER_WORKER: u32 = 512 * 1024 * 1024;
/** Half of Envoy's default 1 MiB per_connection_buffer_limit_bytes: a held body must never reach it. */
export const DEFAULT_MAX_HELD_REQUEST_BYTES: u32 = 512 * 1024;
// Under Envoy's default 5-minute stream_idle_timeout, which would otherwise end a held stream first.
export const DEFAULT_FALLBACK_DEADLINE_MS: u32 = 240_000;
export const PASS_THROUGH = "pass-through";
/** Only model-API requests are replayed: by default POST (chat, completions, embeddings...). */
export const DEFAULT_METHODS = ["POST"];
/** Gateway replies that mean "busy, try elsewhere" (backendErrorsOnly: false). */
export const DEFAULT_GATEWAY_TRIGGER_STATUSES: i32[] = [429, 503];
/**
 * Errors that never fall back, whatever their status: the request's content was refused (OpenAI's
 * content_policy_violation and moderation_blocked, Azure OpenAI's content_filter and its inner
 * ResponsibleAIPolicyViolation). Replayed elsewhere, a refusal would be laundered and billed again.
 */
export const DEFAULT_NEVER_TRIGGER = ["content_policy_violation", "moderation_blocked", "content_filter", "ResponsibleAIPolicyViolation"];
/**
 * Errors that fall back whatever their status (also when triggerStatuses leaves 400 or 413 out):
 * the request is too large for this model service, and a backup with a larger context or limit can
 * answer it (OpenAI's and Azure's context_length_exceeded, which Anthropic's "prompt is too long"
 * is read as (error_meaning.ts), OpenAI's string_above_max_length, Anthropic's request_too_large).
 */
export const DEFAULT_ALWAYS_TRIGGER = ["context_length_exceeded", "string_above_max_length", "request_too_large"];

/**
 * Client headers that carry a credential, or that belong to the client's own credential and account:
 * dropped when a backup sets its own (a backup that sets one of them brings its own credential).
 * - keys: `authorization` (OpenAI, DeepSeek, DashScope/Qwen, Bedrock API keys, Vertex AI tokens: Bearer),
 *   `proxy-authorization`, `x-api-key` (Anthropic), `api-key` (Azure OpenAI), `x-goog-api-key` (Gemini),
 *   `ocp-apim-subscription-key` (Azure API Management), `x-amz-security-token` (AWS session token);
 * - the rest of an AWS SigV4 signature, worthless without the client's `authorization`: `x-amz-date`,
 *   `x-amz-content-sha256`;
 * - the client's account at the provider: `openai-organization`, `openai-project`,
 *   `x-goog-user-project` (Google's billing project), `x-dashscope-workspace`.
 * Copied in scripts/streamed_config_lib.cjs (the generator); README.md lists them.
 */
export const CREDENTIAL_HEADERS = [
  "authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key", "ocp-apim-subscription-key",
  "x-amz-security-token", "x-amz-date", "x-amz-content-sha256",
  "openai-organization", "openai-project", "x-goog-user-project", "x-dashscope-workspace",
];

export class Backup {
  /** The Envoy cluster the call goes to. */
  service: string = "";
  /** `service` as UTF-8, as proxy_http_call takes it (encoded once, not per call). */
  serviceBytes: ArrayBuffer = new ArrayBuffer(0);
  /** Override model as configured; "" = pass-through (the request's own model). */
  model: string = "";
  /** `service` and the model ("pass-through" or the override) as byte strings (UTF-8), for headers and logs. */
  serviceLabel: string = "";
  modelLabel: string = PASS_THROUGH;
  /** `model` as a JSON string literal, precomputed; null for pass-through. */
  modelLiteral: ArrayBuffer | null = null;
  timeoutMs: u32 = DEFAULT_BACKUP_TIMEOUT_MS;
  /** Replaces the request's :path; null keeps it. */
  path: string | null = null;
  /** Replaces the request's :authority; null keeps it. */
  authority: string | null = null;
  /** Headers set on the backup request (lower-case names, byte-string values). */
  headers: Header[] = [];
  /** `headers` sets a credential, so the client's credentials (headers, cookie, query keys) are not forwarded. */
  replacesCredentials: bool = false;
  /** The credential header names (lower case): the built-in list plus the top-level `credentialHeaders`. */
  credentialHeaders: string[] = CREDENTIAL_HEADERS;

  /** Whether a client header (lower-case name) carries a credential this backup's own replaces. */
  isCredentialHeader(lowerName: string): bool {
    return this.credentialHeaders.includes(lowerName);
  }
  /** Further client headers this backup never gets (lower-case names). */
  dropHeaders: string[] = [];
}

/** What ends the wait for a streamed answer's first packet (firstPacketTimeout). */
export const enum FirstPacket {
  /** Any body byte. */
  Byte = 0,
  /** The first line that is not an SSE comment or blank (keep-alives wait): keepAliveIsNotFirstPacket. */
  Event = 1,
  /** The first SSE event with content (first_content.ts); an error event before it is a failure. */
  Content = 2,
}

/** The fallback policy of one Model API (the global one, or one `_rules_` entry). */
export class Policy {
  backups: Backup[] = [];
  backendErrorsOnly: bool = true;
  triggerStatuses: StatusSet = StatusSet.allErrors();
  /** Statuses of gateway replies that trigger when backendErrorsOnly is off. */
  gatewayTriggerStatuses: StatusSet = StatusSet.of(DEFAULT_GATEWAY_TRIGGER_STATUSES);
  /** Request methods that are replayed; others pass through. */
  methods: string[] = DEFAULT_METHODS;
  /** Error codes/types (core/error_meaning.ts) of the model service's answers that never fall back. */
  neverTrigger: string[] = DEFAULT_NEVER_TRIGGER;
  /** ... that fall back whatever their status. */
  alwaysTrigger: string[] = DEFAULT_ALWAYS_TRIGGER;
  /** No cluster names or per-attempt results in client responses (they stay in the log). */
  hideTopology: bool = false;
  maxRequestBodyBytes: u32 = DEFAULT_MAX_REQUEST_BODY_BYTES;
  maxHeldRequestBytes: u32 = DEFAULT_MAX_HELD_REQUEST_BYTES;
  firstPacketTimeoutMs: u32 = 0;
  firstPacket: FirstPacket = FirstPacket.Byte;
  /** A streaming answer that goes silent this long after it began flowing is cut (reset); 0 = off. */
  streamIdleTimeoutMs: u32 = 0;
  /** `hedge.maxInFlight`: requests per worker that may race a backup at once; 0 = no hedging (top level only). */
  hedgeMaxInFlight: u32 = 0;
  fallbackDeadlineMs: u32 = DEFAULT_FALLBACK_DEADLINE_MS;
  /** `handoff: "higress-route-fallback"`: no backup calls; decided answers are marked for Higress's route fallback (core/handoff.ts). */
  handoff: bool = false;
  /** Same-service retry before the next service (null: off, a failure moves on at once). */
  retry: RetrySettings | null = null;

  copy(): Policy {
    const p = new Policy();
    p.backups = this.backups;
    p.backendErrorsOnly = this.backendErrorsOnly;
    p.triggerStatuses = this.triggerStatuses;
    p.gatewayTriggerStatuses = this.gatewayTriggerStatuses;
    p.methods = this.methods;
    p.neverTrigger = this.neverTrigger;
    p.alwaysTrigger = this.alwaysTrigger;
    p.hideTopology = this.hideTopology;
    p.maxRequestBodyBytes = this.maxRequestBodyBytes;
    p.maxHeldRequestBytes = this.maxHeldRequestBytes;
    p.firstPacketTimeoutMs = this.firstPacketTimeoutMs;
    p.firstPacket = this.firstPacket;
    p.streamIdleTimeoutMs = this.streamIdleTimeoutMs;
    p.hedgeMaxInFlight = this.hedgeMaxInFlight;
    p.fallbackDeadlineMs = this.fallbackDeadlineMs;
    p.handoff = this.handoff;
    p.retry = this.retry;
    return p;
  }
}

/** A `_rules_` entry: the policy for requests its conditions match (rule_match.ts). */
export class Rule {
  match: RuleMatch = new RuleMatch();
  policy: Policy = new Policy();
}

export class Config {
  global: Policy = new Policy();
  rules: Rule[] = [];
  /** Bytes of request copies one worker (one VM) may keep at once: a bound on the VM's memory. */
  maxKeptBytesPerWorker: u32 = DEFAULT_MAX_KEPT_BYTES_PER_WORKER;
  /** Skip services known to be down (null: off). */
  cooldown: CooldownSettings | null = null;

  /** Some rule matches on the upstream service (so the glue reads the cluster name). */
  matchesServices: bool = false;

  /**
   * The policy for a request: the first rule that matches its route name, authority and upstream
   * cluster (as Higress's plugins match them, rule_match.ts), else the global one.
   */
  policyFor(routeName: string, authority: string, cluster: string): Policy {
    const host = hostOf(authority);
    for (let i = 0; i < this.rules.length; i++) {
      const rule = this.rules[i];
      if (rule.match.matches(routeName, host, cluster)) return rule.policy;
    }
    return this.global;
  }
}

export class ConfigResult {
  /** Accepted, but worth a warning in the log (e.g. refused requests will be replayed). */
  warnings: string[] = [];
  constructor(public config: Config | null, public error: string) {}
}

/** The result of parsing one backup entry (the streamed mode's per-cluster configuration). */
export class BackupResult {
  constructor(public backup: Backup | null, public error: string) {}
}

/**
 * The streamed mode's upstream filter configuration, one per cluster of the chain (written by
 * scripts/streamed_config_lib.cjs): which attempt this cluster serves, how many there are, which
 * statuses make Envoy's router retry, and, for a backup, its entry.
 */
export class UpstreamConfig {
  /** 1 = the primary, 2 = the first backup, ... */
  attempt: i32 = 1;
  /** Attempts in the chain: 1 + the number of backups. */
  attempts: i32 = 1;
  triggerStatuses: StatusSet = StatusSet.allErrors();
  /** The primary's error meanings that never fall back / always do (as Policy's). */
  neverTrigger: string[] = DEFAULT_NEVER_TRIGGER;
  alwaysTrigger: string[] = DEFAULT_ALWAYS_TRIGGER;
  hideTopology: bool = false;
  /** This attempt's backup entry; null on the primary. */
  backup: Backup | null = null;
  /**
   * Headers that earlier backups' filters set and this backup does not (lower case): Envoy keeps one
   * request header map for all attempts, so they are removed before this attempt is sent.
   */
  earlierBackupHeaders: string[] = [];
  /** The methods the route retries (the primary records a failure only for these). */
  methods: string[] = DEFAULT_METHODS;
  /**
   * Only the retrying route sends requests to this cluster (the generated layout sends other methods
   * to a plain cluster): the primary need not read a request's method to know the router retries it.
   */
  retryingRouteOnly: bool = false;
  /**
   * An override backup's filter may hold the request's headers until the body's end (its wasm plugin
   * config sets allow_on_headers_stop_iteration, as the generator does): this backup's own headers
   * (its credential) are then set only on a request whose model was rewritten, never on a skipped one.
   */
  holdsRequestHeaders: bool = false;
  /** The value of the marks this filter sets on an answer to retry: the one the route retries on (core/retry_mark.ts). */
  retryMark: string = DEFAULT_RETRY_MARK;
  /**
   * The primary's cluster runs the attempt filter that records its result (false: the lean
   * streamed mode, a backup reports the primary's result and the trigger as "retry").
   */
  primaryFilter: bool = true;
  /**
   * Attempts of a request may overlap (the one-cluster layout with `hedge`): a backup that starts while
   * an earlier attempt is still in flight races it, and the loser's result is `hedge_lost`.
   */
  hedge: bool = false;
  /** Skip services known to be down (null: off); its `primary` names the primary's cluster. */
  cooldown: CooldownSettings | null = null;
  /** Same-service retry (null: off): which failures this service gets again before the next one. */
  retry: RetrySettings | null = null;
  /** With `retry`: every attempt's cluster in the chain's order (the route picks the next try's by the one named). */
  retryClusters: string[] = [];
  /** The backup's request header edits when they do not depend on the client's headers: worked out on its first attempt, then reused. */
  fixedHeaderEdits: HeaderEdits | null = null;
}

/**
 * The one-cluster layout's upstream filter: one configuration per service, keyed by the service's name
 * as the cluster's endpoint metadata (and so the marker header) names it.
 */
export class ServicesConfig {
  names: string[] = [];
  configs: UpstreamConfig[] = [];

  /** The configuration of the service `name`; null for a name the configuration does not know. */
  find(name: string): UpstreamConfig | null {
    for (let i = 0; i < this.names.length; i++) if (this.names[i] == name) return this.configs[i];
    return null;
  }
}

export class ServicesConfigResult {
  constructor(public config: ServicesConfig | null, public error: string) {}
}

export class UpstreamConfigResult {
  constructor(public config: UpstreamConfig | null, public error: string) {}
}
