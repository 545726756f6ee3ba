// The demo: a real Envoy with the filter, a failing primary model service and a healthy backup.
// One chat request goes in; the answer visibly comes from the backup. Then the streamed mode (README
// "Streamed mode"): Envoy's router falls back and the backup's SSE reaches the client chunk by chunk.
// Everything stops at the end.
import { createRequire } from "node:module";
const require = createRequire(import.meta.url);
const { startEnvoy, stopAllEnvoys, WASM_PATH } = require("../tests/e2e/support/envoy.js");
const { startMock, stopAllMocks } = require("../tests/e2e/support/mock_model.js");
const { request } = require("../tests/e2e/support/client.js");
const { streamedBootstrap } = require("../scripts/streamed_config_lib.cjs");

const show = (title, res) => {
  console.log(`\n--- ${title}: HTTP ${res.status}`);
  for (const [k, v] of Object.entries(res.headers)) {
    if (k.startsWith("x-ai-fallback") || k === "x-served-by" || k === "content-type") console.log(`${k}: ${v}`);
  }
  console.log(res.text);
};

async function main() {
  const primary = await startMock("primary-gpt");
  const backup = await startMock("backup-qwen");
  primary.behave({ status: 503, json: { error: { message: "primary model overloaded", type: "server_error" } } });
  const pluginConfig = { backups: [{ service: "outbound|443||qwen.dns", model: "qwen-plus" }], firstPacketTimeout: 1000 };
  const envoy = await startEnvoy({ pluginConfig, clusters: { primary: primary.port, "outbound|443||qwen.dns": backup.port } });
  console.log(`Envoy ${envoy.port} -> primary model service 127.0.0.1:${primary.port} (answers 503), backup 127.0.0.1:${backup.port}`);
  console.log("plugin configuration:", JSON.stringify(pluginConfig));
  const chat = { model: "gpt-4o", messages: [{ role: "user", content: "Say hello" }] };

  show("the primary model service alone", await request(primary.port, { body: chat }));
  show("the same request through Envoy with ai-fallback", await request(envoy.port, { body: chat }));
  console.log(`\nthe backup received model: ${JSON.parse(backup.requests[0].body).model}`);

  // Streaming: the primary sends 200 headers, then not a single token. After firstPacketTimeout the
  // backup's stream is served instead; the client never sees the primary's headers.
  primary.behave({ sse: { stallAfterHeaders: true } });
  backup.behave({ sse: { events: ['{"choices":[{"delta":{"content":"hello from the backup"}}]}'] } });
  const started = Date.now();
  const streamed = await request(envoy.port, { body: { ...chat, stream: true } });
  show(`a streaming request whose primary stalls after its headers (answered after ${Date.now() - started} ms)`, streamed);

  // The streamed mode: the same .wasm as Envoy's upstream filter on each cluster, Envoy's router
  // retrying on the backup's cluster. The backup's tokens reach the client as the backup writes them.
  primary.behave({ status: 503 });
  const tokens = ["Hello", " from", " the", " streamed", " backup"];
  backup.behave({ sse: { events: tokens.map((t) => JSON.stringify({ choices: [{ delta: { content: t } }] })), firstDelayMs: 200, intervalMs: 400 } });
  const streamedPlugin = { backups: [{ service: "backup-qwen", model: "qwen-plus" }] };
  const streamedEnvoy = await startEnvoy({
    bootstrap: ({ admin, listener }) => streamedBootstrap(streamedPlugin, {
      primary: "primary", addresses: { primary: `127.0.0.1:${primary.port}`, "backup-qwen": `127.0.0.1:${backup.port}` },
    }, { wasmPath: WASM_PATH, listenAddress: "127.0.0.1", listenPort: listener, adminPort: admin }),
  });
  console.log(`\n--- streamed mode (npm run streamed-config): Envoy ${streamedEnvoy.port}, the primary answers 503, ` +
    "the backup writes an event every 400 ms");
  const onChunk = (chunk, res) => {
    if (res.chunks.length === 1) {
      console.log(`HTTP ${res.status} after ${Math.round(res.headersAt)} ms`);
      for (const [k, v] of Object.entries(res.headers)) if (k.startsWith("x-ai-fallback")) console.log(`${k}: ${v}`);
    }
    for (const line of chunk.data.toString("utf8").split("\n")) if (line.startsWith("data: ")) console.log(`+${String(Math.round(chunk.at)).padStart(5)} ms  ${line}`);
  };
  await request(streamedEnvoy.port, { body: { ...chat, stream: true }, onChunk });
}

main()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(async () => {
    await stopAllEnvoys();
    await stopAllMocks();
  });
