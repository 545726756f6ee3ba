// A streamed override backup whose body's model cannot be rewritten (not_rewritable) is skipped, but
// Envoy 1.40 offers its upstream filter no way to end the attempt unsent that the router retries
// (docs/streamed-mode.md): the attempt still goes out, with an empty body. Its filter holds the
// request's headers until the body's end (the generator sets allow_on_headers_stop_iteration), so a
// skipped attempt carries none of this backup's own headers: no credential the provider could bill,
// log or rate-limit it by. The chain goes on exactly as before.
const { startEnvoy, counter } = require("../support/envoy");
const { request } = require("../support/client");
const { useMocks } = require("../support/fixtures");
const { streamedBootstrapFor } = require("../support/streamed_fixtures");

const m = useMocks({ primary: "primary", backupA: "backup-a", backupB: "backup-b" });
const KEY_A = { authorization: "Bearer backup-a-key", "x-backup-a-tenant": "tenant-a" };
const KEY_B = { authorization: "Bearer backup-b-key" };
const OVERRIDE_FIRST = { backups: [{ service: "backup-a", model: "override-a", headers: KEY_A }, { service: "backup-b", headers: KEY_B }] };
const OVERRIDE_LAST = { backups: [{ service: "backup-b", headers: KEY_B }, { service: "backup-a", model: "override-a", headers: KEY_A }] };
const CLIENT = { authorization: "Bearer client-key" };
const NO_TOP_LEVEL_MODEL = JSON.stringify({ messages: [{ role: "user", content: "hi", model: "gpt-4o" }] });

let first;
let last;
beforeAll(async () => {
  [first, last] = await Promise.all([
    startEnvoy({ bootstrap: streamedBootstrapFor(m, m.primary.port, OVERRIDE_FIRST) }),
    startEnvoy({ bootstrap: streamedBootstrapFor(m, m.primary.port, OVERRIDE_LAST) }),
  ]);
}, 30000);
afterAll(() => Promise.all([first.stop(), last.stop()]));
beforeEach(() => m.primary.behave({ status: 503 }));

/** The skipped attempt's request: empty, with neither this backup's credential nor the client's. */
function expectAnonymousEmpty(req) {
  expect(req.body.length).toBe(0);
  expect(req.headers.authorization).toBeUndefined();
  expect(req.headers["x-backup-a-tenant"]).toBeUndefined();
}

describe("streamed mode: a skipped override attempt carries none of its backup's headers", () => {
  test("not_rewritable: the override backup gets an empty request without its key; the next backup serves with its own", async () => {
    const before = counter(await first.stats(), "wasmcustom.ai_fallback.not_rewritable");
    const res = await request(first.port, { headers: CLIENT, body: NO_TOP_LEVEL_MODEL });
    expect(res.status).toBe(200);
    expect(res.json().served_by).toBe("backup-b");
    expect(m.backupA.requests).toHaveLength(1);
    expectAnonymousEmpty(m.backupA.requests[0]);
    expect(m.backupB.requests).toHaveLength(1);
    expect(m.backupB.requests[0].headers.authorization).toBe("Bearer backup-b-key");
    expect(m.backupB.requests[0].headers["x-backup-a-tenant"]).toBeUndefined();
    expect(m.backupB.requests[0].body.toString("utf8")).toBe(NO_TOP_LEVEL_MODEL);
    expect(res.headers["x-ai-fallback-attempts"]).toBe(
      "primary;result=503, backup-a;model=override-a;result=not_rewritable, backup-b;model=pass-through;result=200");
    expect(counter(await first.stats(), "wasmcustom.ai_fallback.not_rewritable")).toBe(before + 1);
  });

  test("a rewritable body still reaches the override backup with its key and its model rewritten", async () => {
    const res = await request(first.port, { headers: CLIENT, body: { model: "gpt-4o", messages: [] } });
    expect(res.status).toBe(200);
    expect(res.json().served_by).toBe("backup-a");
    expect(m.backupA.requests).toHaveLength(1);
    expect(m.backupA.requests[0].headers.authorization).toBe("Bearer backup-a-key");
    expect(m.backupA.requests[0].headers["x-backup-a-tenant"]).toBe("tenant-a");
    expect(JSON.parse(m.backupA.requests[0].body.toString("utf8")).model).toBe("override-a");
  });

  test("the override backup last: the client gets the filter's 502 with the report; the backup an empty request without its key", async () => {
    m.backupB.behave({ status: 503, json: { error: { message: "b down" } } });
    const res = await request(last.port, { headers: CLIENT, body: NO_TOP_LEVEL_MODEL });
    expect(res.status).toBe(502);
    expect(res.json().error.type).toBe("ai_fallback_exhausted");
    expect(res.headers["x-ai-fallback-attempts"]).toBe(
      "primary;result=503, backup-b;model=pass-through;result=503, backup-a;model=override-a;result=not_rewritable");
    expect(m.backupA.requests).toHaveLength(1);
    expectAnonymousEmpty(m.backupA.requests[0]);
  });
});
