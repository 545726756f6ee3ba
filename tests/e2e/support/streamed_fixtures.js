// What the streamed-mode e2e tests share: the request, the backups' SSE events, the two-backup
// plugin configuration and the generated bootstrap for a primary port (docs/streamed-mode.md).
const { WASM_PATH } = require("./envoy");
const { streamedBootstrap } = require("../../../scripts/streamed_config_lib.cjs");

const STREAM_CHAT = { model: "gpt-4o", stream: true, messages: [{ role: "user", content: "hello" }] };

/** `count` SSE data lines, each a chat-completion delta t0, t1, ... */
function sseEvents(count) {
  return Array.from({ length: count }, (_, i) => `{"choices":[{"delta":{"content":"t${i}"}}]}`);
}

/** Two backups, each with its own model, path, authority and credential. */
const TWO_BACKUPS = {
  backups: [
    { service: "backup-a", model: "backup-model-a", path: "/a/chat", authority: "a.example", headers: { authorization: "Bearer key-a" } },
    { service: "backup-b", model: "backup-model-b", path: "/b/chat", authority: "b.example", headers: { "x-api-key": "key-b" } },
  ],
  triggerStatuses: ["5xx", 429],
};

/** A startEnvoy bootstrap: the generator's output for `plugin`, the primary at `primaryPort`, backups from the mocks `m`. */
function streamedBootstrapFor(m, primaryPort, plugin = TWO_BACKUPS, generatorOptions = {}) {
  return ({ admin, listener }) => streamedBootstrap(plugin, {
    primary: "primary",
    addresses: { primary: `127.0.0.1:${primaryPort}`, "backup-a": `127.0.0.1:${m.backupA.port}`, "backup-b": `127.0.0.1:${m.backupB.port}` },
  }, { wasmPath: WASM_PATH, listenAddress: "127.0.0.1", listenPort: listener, adminPort: admin, ...generatorOptions });
}

module.exports = { STREAM_CHAT, sseEvents, TWO_BACKUPS, streamedBootstrapFor };
