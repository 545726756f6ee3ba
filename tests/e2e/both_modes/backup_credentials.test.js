// Issue 20, cases 4 and 5 end to end: a backup with its own credential gets none of the client's
// credential headers (the built-in list and the configuration's `credentialHeaders`), in both modes;
// and in the streamed mode, where Envoy keeps one request header map for all attempts, no backup
// receives the headers an earlier backup set.
const { startEnvoy, WASM_PATH } = require("../support/envoy");
const { request } = require("../support/client");
const { useMocks } = require("../support/fixtures");
const { streamedBootstrap } = require("../../../scripts/streamed_config_lib.cjs");

const CHAT = { model: "gpt-4o", messages: [{ role: "user", content: "hello" }] };
const m = useMocks({ primary: "primary", backupA: "backup-a", backupB: "backup-b", backupC: "backup-c" });

// The client's own credentials: provider keys the built-in list names, and one the operator lists.
const CLIENT_CREDENTIALS = {
  authorization: "Bearer client-1",
  "x-amz-security-token": "client-2",
  "x-amz-date": "20250101T000000Z-client",
  "ocp-apim-subscription-key": "client-3",
  "openai-organization": "org-client",
  "openai-project": "proj-client",
  "x-tenant-key": "client-4",
};
// backup-a brings a built-in credential, backup-b one the configuration lists.
const WITH_CREDENTIAL_HEADERS = {
  credentialHeaders: ["X-Tenant-Key"],
  backups: [
    { service: "backup-a", headers: { authorization: "Bearer backup-a-key" } },
    { service: "backup-b", headers: { "x-tenant-key": "backup-b-key" } },
  ],
};

/** The Envoy bootstrap the streamed mode's generator writes for `plugin`, with the mocks' addresses. */
function streamedFor(plugin) {
  const addresses = { primary: m.primary, "backup-a": m.backupA, "backup-b": m.backupB, "backup-c": m.backupC };
  return ({ admin, listener }) => streamedBootstrap(plugin, {
    primary: "primary",
    addresses: Object.fromEntries(Object.entries(addresses).map(([name, mock]) => [name, `127.0.0.1:${mock.port}`])),
  }, { wasmPath: WASM_PATH, listenAddress: "127.0.0.1", listenPort: listener, adminPort: admin });
}

/** Both backups were called, each got its own credential and nothing of the client's. */
async function expectNoClientCredential(envoy) {
  m.primary.behave({ status: 503 });
  m.backupA.behave({ status: 500 });
  const res = await request(envoy.port, { headers: { ...CLIENT_CREDENTIALS, "x-trace": "t1" }, body: CHAT });
  expect(res.status).toBe(200);
  expect(res.headers["x-ai-fallback-service"]).toBe("backup-b");
  const a = m.backupA.requests[0];
  const b = m.backupB.requests[0];
  expect(a.headers.authorization).toBe("Bearer backup-a-key");
  expect(b.headers["x-tenant-key"]).toBe("backup-b-key");
  for (const seen of [a, b]) {
    expect(seen.headers["x-trace"]).toBe("t1");
    expect(JSON.stringify(seen.rawHeaders)).not.toMatch(/client/);
  }
  // backup-b's own header counts as its credential: the client's authorization is not forwarded either.
  expect(b.headers.authorization).toBeUndefined();
}

describe("dispatch mode: the client's credential headers never reach a backup with its own", () => {
  let envoy;
  beforeAll(async () => {
    envoy = await startEnvoy({ pluginConfig: WITH_CREDENTIAL_HEADERS, clusters: { primary: m.primary.port, "backup-a": m.backupA.port, "backup-b": m.backupB.port } });
  });

  test("x-amz-security-token, ocp-apim-subscription-key, openai-organization and a listed credentialHeaders name are dropped", async () => {
    await expectNoClientCredential(envoy);
  });
});

describe("streamed mode: the client's credential headers never reach a backup with its own", () => {
  let envoy;
  beforeAll(async () => {
    envoy = await startEnvoy({ bootstrap: streamedFor(WITH_CREDENTIAL_HEADERS) });
  }, 30000);

  test("streamed: x-amz-security-token, ocp-apim-subscription-key, openai-organization and a listed credentialHeaders name are dropped", async () => {
    await expectNoClientCredential(envoy);
  });
});

describe("streamed mode: a backup never receives the headers an earlier backup set", () => {
  let envoy;
  beforeAll(async () => {
    envoy = await startEnvoy({
      bootstrap: streamedFor({
        backups: [
          { service: "backup-a", headers: { "x-subscription-secret": "k1" } },
          { service: "backup-b", headers: { "x-other-key": "k2" } },
          { service: "backup-c" },
        ],
      }),
    });
  }, 30000);

  test("three backups with their own key headers, the first two failing: each sees only its own", async () => {
    m.primary.behave({ status: 503 });
    m.backupA.behave({ status: 500 });
    m.backupB.behave({ status: 429 });
    const res = await request(envoy.port, { headers: { "x-trace": "t1" }, body: CHAT });
    expect(res.status).toBe(200);
    expect(res.headers["x-ai-fallback-service"]).toBe("backup-c");
    const [a, b, c] = [m.backupA.requests[0], m.backupB.requests[0], m.backupC.requests[0]];
    expect(a.headers["x-subscription-secret"]).toBe("k1");
    expect(b.headers["x-other-key"]).toBe("k2");
    expect(b.headers["x-subscription-secret"]).toBeUndefined();
    expect(c.headers["x-subscription-secret"]).toBeUndefined();
    expect(c.headers["x-other-key"]).toBeUndefined();
    for (const seen of [a, b, c]) expect(seen.headers["x-trace"]).toBe("t1");
  });
});
