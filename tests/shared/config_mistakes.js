// Common configuration mistakes and the exact refusal each gets (after "invalid configuration: "),
// shared by the unit tests (the parser), the e2e tests (a started Envoy's log, the generator's
// output side by side) and quoted in docs/troubleshooting.md.
const ONE = [{ service: "backup-a" }];

const CONFIG_MISTAKES = [
  {
    name: "a duration written as a string",
    plugin: { backups: [{ service: "backup-a", timeout: "10s" }] },
    message: 'backups[0].timeout: must be an integer number of milliseconds from 1 to 2147483647, got "10s" (write 10000 for 10 s)',
  },
  {
    name: "a misspelt field",
    plugin: { backups: ONE, firstPacketTimout: 3000 },
    message: "firstPacketTimout: unknown field; did you mean firstPacketTimeout?",
  },
  {
    name: "a misspelt backup field",
    plugin: { backups: [{ service: "backup-a", modle: "qwen-plus" }] },
    message: "backups[0].modle: unknown field; did you mean model?",
  },
  {
    name: "a size written with its unit",
    plugin: { backups: ONE, maxRequestBodyBytes: "10MiB" },
    message: 'maxRequestBodyBytes: must be an integer number of bytes from 1 to 268435456, got "10MiB" (write 10485760 for 10 MiB)',
  },
  {
    name: "a number in quotes",
    plugin: { backups: ONE, firstPacketTimeout: "3000" },
    message: 'firstPacketTimeout: must be an integer number of milliseconds from 0 to 2147483647, got "3000" (write 3000 without quotes)',
  },
  {
    name: "an unknown field far from any known one",
    plugin: { backups: ONE, retries: 3 },
    message: "retries: unknown field (known: backups, backendErrorsOnly, triggerStatuses, neverTrigger, alwaysTrigger, gatewayTriggerStatuses, methods, hideTopology, " +
      "maxRequestBodyBytes, maxHeldRequestBytes, firstPacketTimeout, firstPacket, keepAliveIsNotFirstPacket, streamIdleTimeout, fallbackDeadline, handoff, retry, _rules_, " +
      "maxKeptBytesPerWorker, credentialHeaders, hedge, cooldown, _plugin_id_)",
  },
  {
    name: "an error list that is not a list of codes",
    plugin: { backups: ONE, neverTrigger: "content_filter" },
    message: 'neverTrigger: must be an array of error codes or types as the model service sends them (case-sensitive), ' +
      'e.g. ["content_filter", "context_length_exceeded"], or [] for none; got "content_filter"',
  },
  {
    name: "an error code with a space",
    plugin: { backups: ONE, alwaysTrigger: ["prompt is too long"] },
    message: 'alwaysTrigger[0]: must be an error code or type as the model service sends it: visible ASCII without spaces, ' +
      'commas, semicolons, \'=\', quotes or backslashes, e.g. "content_filter"; got "prompt is too long"',
  },
  {
    name: "an error that would both fall back and not",
    plugin: { backups: ONE, alwaysTrigger: ["context_length_exceeded", "content_filter"] },
    message: 'alwaysTrigger[1]: "content_filter" is also in neverTrigger (by default): an error cannot both fall back and not; ' +
      "list it in one of them only (set neverTrigger without it to let it fall back)",
  },
];

/** The refusal of a configuration given as a google.protobuf.Struct (Envoy hands the module its protobuf bytes). */
const STRUCT_MESSAGE = "configuration: arrived as protobuf, not JSON text: it was given as a google.protobuf.Struct; give it as " +
  '"configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": "{\\"backups\\": [...]}"} (the JSON as one string in value)';

module.exports = { CONFIG_MISTAKES, STRUCT_MESSAGE };
