// A request body that ends with trailers (HTTP/2 clients may send them) ends in the trailers callback,
// not in a body callback with end of stream: an override backup's filter must still rewrite the body's
// model (or skip the attempt) before the held body leaves with the trailers. Without that, the client's
// own model reached the override backup (docs/security.md: never the client's model where an override
// is set).
const http2 = require("node:http2");
const { startEnvoy } = require("../support/envoy");
const { useMocks } = require("../support/fixtures");
const { streamedBootstrapFor } = require("../support/streamed_fixtures");

const m = useMocks({ primary: "primary", backupA: "backup-a", backupB: "backup-b" });
const OVERRIDE_THEN_PASS_THROUGH = { backups: [{ service: "backup-a", model: "override-a" }, { service: "backup-b" }] };

let envoy;
beforeAll(async () => {
  envoy = await startEnvoy({ bootstrap: streamedBootstrapFor(m, m.primary.port, OVERRIDE_THEN_PASS_THROUGH) });
}, 30000);
afterAll(() => envoy.stop());
beforeEach(() => m.primary.behave({ status: 503 }));

/** POSTs `chunks` over HTTP/2 (prior knowledge), each written on its own, then trailers; resolves with the answer. */
function postWithTrailers(port, chunks) {
  return new Promise((resolve, reject) => {
    const client = http2.connect(`http://127.0.0.1:${port}`);
    client.on("error", reject);
    const stream = client.request({ ":method": "POST", ":path": "/v1/chat/completions", "content-type": "application/json" }, { waitForTrailers: true });
    stream.on("wantTrailers", () => stream.sendTrailers({ "x-client-checksum": "1" }));
    const answer = { status: 0, headers: {}, body: "" };
    stream.on("response", (headers) => { answer.status = headers[":status"]; answer.headers = headers; });
    stream.setEncoding("utf8");
    stream.on("data", (d) => { answer.body += d; });
    stream.on("end", () => { client.close(); resolve(answer); });
    stream.on("error", reject);
    (async () => {
      for (const c of chunks) {
        stream.write(c);
        await new Promise((r) => setTimeout(r, 20));
      }
      stream.end();
    })();
  });
}

describe("streamed mode: an HTTP/2 request body that ends with trailers", () => {
  test("reaches an override backup with its model rewritten (a body in several chunks)", async () => {
    const body = JSON.stringify({ model: "gpt-4o", messages: [{ role: "user", content: "x".repeat(200000) }] });
    const chunks = [body.slice(0, 10), body.slice(10, 70000), body.slice(70000)];
    const res = await postWithTrailers(envoy.port, chunks);
    expect(res.status).toBe(200);
    expect(res.headers["x-ai-fallback-service"]).toBe("backup-a");
    expect(m.backupA.requests).toHaveLength(1);
    const sent = JSON.parse(m.backupA.requests[0].body.toString("utf8"));
    expect(sent.model).toBe("override-a");
    expect(sent.messages[0].content).toHaveLength(200000);
    expect(res.headers["x-ai-fallback-attempts"]).toBe("primary;result=503, backup-a;model=override-a;result=200");
  }, 20000);

  test("without a top-level model skips the override backup with an empty body; the pass-through backup gets it whole", async () => {
    const body = JSON.stringify({ messages: [{ role: "user", content: "hi", model: "gpt-4o" }] });
    const res = await postWithTrailers(envoy.port, [body.slice(0, 20), body.slice(20)]);
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body).served_by).toBe("backup-b");
    expect(m.backupA.requests.map((r) => r.body.length)).toEqual([0]);
    expect(m.backupB.requests.map((r) => r.body.toString("utf8"))).toEqual([body]);
    expect(res.headers["x-ai-fallback-attempts"]).toBe(
      "primary;result=503, backup-a;model=override-a;result=not_rewritable, backup-b;model=pass-through;result=200");
  }, 20000);
});
