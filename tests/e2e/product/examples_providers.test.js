// examples/openai-azure-dashscope runs as a user runs it (examples/render.mjs for the dispatch mode's
// envoy.yaml, examples/streamed.mjs for the streamed mode), changed only where it must be to run here:
// the providers' addresses (HTTPS fakes on 127.0.0.1), the CA bundle (the test's own CA), the ports and
// the module's path. Each fake records what it received: the TLS server name, Host, path, keys, model.
const { execFileSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const yaml = require("js-yaml");
const { startEnvoy, WASM_PATH } = require("../support/envoy");
const { request } = require("../support/client");
const { makeCertificates, startHttpsProvider } = require("../support/https_fakes");

const ROOT = path.join(__dirname, "..", "..", "..");
const EXAMPLE = path.join(ROOT, "examples", "openai-azure-dashscope");
const SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt";

// What a user exports before rendering the example.
const USER_ENV = {
  OPENAI_API_KEY: "sk-openai-of-the-gateway",
  AZURE_OPENAI_API_KEY: "azure-key-of-the-gateway",
  AZURE_OPENAI_RESOURCE: "my-resource",
  AZURE_OPENAI_DEPLOYMENT: "my-gpt-4o-mini",
  DASHSCOPE_API_KEY: "sk-dashscope-of-the-gateway",
};
const CLIENT_KEY = "Bearer sk-client-own-key";

// Each provider by the example's cluster name: the host it is reached at (SNI, Host) and what it must receive.
const PROVIDERS = {
  openai: { host: "api.openai.com", path: "/v1/chat/completions", key: ["authorization", `Bearer ${USER_ENV.OPENAI_API_KEY}`] },
  "azure-openai": {
    host: "my-resource.openai.azure.com",
    path: "/openai/deployments/my-gpt-4o-mini/chat/completions?api-version=2024-10-21",
    key: ["api-key", USER_ENV.AZURE_OPENAI_API_KEY],
  },
  dashscope: { host: "dashscope.aliyuncs.com", path: "/compatible-mode/v1/chat/completions", key: ["authorization", `Bearer ${USER_ENV.DASHSCOPE_API_KEY}`] },
};
// As the real providers' certificates name them (Azure's is a wildcard).
const CERTIFICATE_NAMES = ["api.openai.com", "*.openai.azure.com", "dashscope.aliyuncs.com"];
const KEY_HEADERS = ["authorization", "api-key"];

/**
 * Runs `node <args> --out <file>` as the example's README prints it, with the user's variables set, and
 * returns the file's text (checked: readable by its owner alone, since it holds the keys).
 */
function runToFile(args) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ai-fallback-example-"));
  try {
    const out = path.join(dir, "rendered");
    execFileSync(process.execPath, [...args, "--out", out], { cwd: ROOT, stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, ...USER_ENV } });
    expect(fs.statSync(out).mode & 0o777).toBe(0o600);
    return fs.readFileSync(out, "utf8");
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Every object in `value` (depth first). */
function* objects(value) {
  if (value === null || typeof value !== "object") return;
  yield value;
  for (const v of Object.values(value)) yield* objects(v);
}

/**
 * The example's bootstrap pointed at this test: each provider cluster's endpoint at its fake (after
 * checking the example had the provider's host on 443), the CA bundle at the test's CA, the module at
 * the build under test, Envoy's own ports at free ones. `otherMethods`: the streamed mode's plain
 * cluster to the primary for requests of other methods (the primary's host and TLS too).
 */
function pointAtFakes(bootstrap, ports, fakes, caFile, otherMethods = []) {
  bootstrap.admin.address.socket_address = { address: "127.0.0.1", port_value: ports.admin };
  const [listener] = bootstrap.static_resources.listeners;
  // A gateway holding the keys listens on this machine only.
  expect(listener.address.socket_address.address).toBe("127.0.0.1");
  listener.address.socket_address = { address: "127.0.0.1", port_value: ports.listener };
  const providerOf = (name) => name.replace(/-other-methods$/, "");
  expect(bootstrap.static_resources.clusters.map((c) => c.name).sort()).toEqual([...Object.keys(PROVIDERS), ...otherMethods].sort());
  for (const cluster of bootstrap.static_resources.clusters) {
    const address = cluster.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address;
    expect(address.socket_address).toEqual({ address: PROVIDERS[providerOf(cluster.name)].host, port_value: 443 });
    address.socket_address = { address: "127.0.0.1", port_value: fakes[providerOf(cluster.name)].port };
  }
  let caBundles = 0;
  for (const o of objects(bootstrap)) {
    if (o.trusted_ca) {
      expect(o.trusted_ca).toEqual({ filename: SYSTEM_CA_BUNDLE });
      o.trusted_ca = { filename: caFile };
      caBundles++;
    }
    if (o.code?.local?.filename) o.code.local.filename = WASM_PATH;
  }
  expect(caBundles).toBe(3 + otherMethods.length);
  return bootstrap;
}

const MODES = {
  dispatch: (ports, fakes, caFile) => {
    const rendered = runToFile([path.join("examples", "render.mjs"), path.join(EXAMPLE, "envoy.yaml")]);
    return pointAtFakes(yaml.safeLoad(rendered), ports, fakes, caFile);
  },
  streamed: (ports, fakes, caFile) => {
    const generated = runToFile([path.join("examples", "streamed.mjs"), EXAMPLE, "--wasm", WASM_PATH, "--port", String(ports.listener)]);
    return pointAtFakes(JSON.parse(generated), ports, fakes, caFile, ["openai-other-methods"]);
  },
};

/** A provider's answer: server-sent events for a streaming request, else a chat completion, both naming `name`. */
function answerAs(name, status = 200) {
  return (req) => {
    if (status !== 200) return { status, body: JSON.stringify({ error: { message: `${name} says ${status}` } }) };
    if (req.json?.stream) {
      const event = JSON.stringify({ object: "chat.completion.chunk", choices: [{ index: 0, delta: { content: `hello from ${name}` } }] });
      return { headers: { "content-type": "text/event-stream" }, body: `data: ${event}\n\ndata: [DONE]\n\n` };
    }
    return { body: JSON.stringify({ object: "chat.completion", choices: [{ index: 0, message: { role: "assistant", content: `hello from ${name}` } }] }) };
  };
}

describe.each(Object.keys(MODES))("examples/openai-azure-dashscope, %s mode", (mode) => {
  let certs = null;
  let envoy = null;
  const fakes = {};
  const streaming = mode === "streamed";

  beforeAll(async () => {
    certs = makeCertificates(CERTIFICATE_NAMES);
    for (const name of Object.keys(PROVIDERS)) fakes[name] = await startHttpsProvider(name, certs.good);
    envoy = await startEnvoy({ bootstrap: (ports) => MODES[mode](ports, fakes, certs.caFile) });
  }, 60000);

  beforeEach(() => {
    for (const [name, fake] of Object.entries(fakes)) {
      fake.reset(certs.good);
      fake.answer = answerAs(name);
    }
  });

  afterAll(async () => {
    // Everything this file started stops, whether or not a test failed or the setup got this far.
    try {
      if (envoy) await envoy.stop();
    } finally {
      await Promise.all(Object.values(fakes).map((f) => f.stop()));
      if (certs) certs.remove();
    }
  });

  const ask = () => request(envoy.port, {
    headers: { authorization: CLIENT_KEY },
    body: { model: "gpt-4o-mini", stream: streaming, messages: [{ role: "user", content: "hi" }] },
  });

  /** The one request `name` received, checked: its TLS server name, Host, path, its own key and no other, and its model. */
  function expectReceived(name, model) {
    const { host, path: wantedPath, key: [keyHeader, keyValue] } = PROVIDERS[name];
    expect(fakes[name].requests).toHaveLength(1);
    const [got] = fakes[name].requests;
    expect({ servername: got.servername, host: got.headers.host, path: got.path, model: got.json?.model }).toEqual({ servername: host, host, path: wantedPath, model });
    expect(got.headers[keyHeader]).toBe(keyValue);
    // No other key: neither the client's nor another provider's.
    for (const other of KEY_HEADERS.filter((h) => h !== keyHeader)) expect(got.headers[other]).toBeUndefined();
    const all = JSON.stringify(got.headers);
    expect(all).not.toContain("sk-client-own-key");
    const otherKeys = [USER_ENV.OPENAI_API_KEY, USER_ENV.AZURE_OPENAI_API_KEY, USER_ENV.DASHSCOPE_API_KEY].filter((k) => !keyValue.endsWith(k));
    expect(otherKeys).toHaveLength(2);
    for (const k of otherKeys) expect(all).not.toContain(k);
  }

  function expectAnswerFrom(res, name) {
    expect(res.status).toBe(200);
    expect(res.text).toContain(`hello from ${name}`);
    if (streaming) expect(res.headers["content-type"]).toMatch(/^text\/event-stream/);
  }

  test("[pass-through] a healthy OpenAI answers; it got its own host name, path and the gateway's key, not the client's", async () => {
    const res = await ask();
    expectAnswerFrom(res, "openai");
    expectReceived("openai", "gpt-4o-mini");
    expect(fakes["azure-openai"].requests).toHaveLength(0);
    expect(fakes.dashscope.requests).toHaveLength(0);
  }, 20000);

  // 401: the gateway holds OpenAI's key, so a revoked one fails over (triggerStatuses lists 401).
  test.each([503, 401])("OpenAI answers %i: the client gets Azure OpenAI's answer; Azure got its own SNI, host, deployment path and api-key, and no other key", async (status) => {
    fakes.openai.answer = answerAs("openai", status);
    const res = await ask();
    expectAnswerFrom(res, "azure-openai");
    expect(res.headers["x-ai-fallback-service"]).toBe("azure-openai");
    expectReceived("openai", "gpt-4o-mini");
    // Azure picks the model by its deployment: the client's model is left as it is.
    expectReceived("azure-openai", "gpt-4o-mini");
    expect(fakes.dashscope.requests).toHaveLength(0);
  }, 20000);

  test("OpenAI 429 and Azure 503: the client gets DashScope's answer; DashScope got its own SNI, host, path and key, and model qwen-plus", async () => {
    fakes.openai.answer = answerAs("openai", 429);
    fakes["azure-openai"].answer = answerAs("azure-openai", 503);
    const res = await ask();
    expectAnswerFrom(res, "dashscope");
    expect(res.headers["x-ai-fallback-service"]).toBe("dashscope");
    expectReceived("openai", "gpt-4o-mini");
    expectReceived("azure-openai", "gpt-4o-mini");
    expectReceived("dashscope", "qwen-plus");
  }, 20000);

  test.each([
    ["names another host", "wrongName"],
    ["comes from a CA outside the CA bundle", "untrusted"],
  ])("a backup whose certificate %s is never sent the request: DashScope answers instead of Azure", async (_, certificate) => {
    fakes["azure-openai"].useCertificate(certs[certificate]);
    fakes.openai.answer = answerAs("openai", 503);
    const res = await ask();
    expectAnswerFrom(res, "dashscope");
    expect(fakes["azure-openai"].requests).toHaveLength(0);
    expectReceived("dashscope", "qwen-plus");
  }, 20000);
});
