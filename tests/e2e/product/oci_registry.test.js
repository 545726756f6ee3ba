// Issue 14: `npm run package` writes an OCI image of the module, `npm run push` (or skopeo) puts it into a
// real registry, and what comes back by tag is the image Higress's fetcher reads: an OCI manifest with
// one tar+gzip layer holding plugin.wasm, byte-identical to the build, which loads and works in Envoy.
const { execFile } = require("node:child_process");
const { createHash } = require("node:crypto");
const fs = require("node:fs");
const http = require("node:http");
const os = require("node:os");
const path = require("node:path");
const zlib = require("node:zlib");
const { startEnvoy, FILTER_WASM_PATH } = require("../support/envoy");
const { request } = require("../support/client");
const { useMocks } = require("../support/fixtures");
const { startRegistry, freePort } = require("../support/registry");

const ROOT = path.resolve(__dirname, "..", "..", "..");
const VERSION = require("../../../package.json").version;
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip";
// user ai-fallback-test, password push-secret (bcrypt, cost 4: the registry checks it on every request)
const HTPASSWD = "ai-fallback-test:$2b$04$ZDVfwgvWMvbTT/aR4ukPOOAYwAmbo22OMCU7fLxQHJyn9hqFFTTiC\n";
const USER = "ai-fallback-test";
const PASSWORD = "push-secret";

const sha256 = (bytes) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
const basic = (user, password) => `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;

// Runs a project script with node; resolves with { code, stdout, stderr } (never rejects on exit codes).
function runScript(script, args, { env = {}, input } = {}) {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [path.join(ROOT, "scripts", script), ...args], {
      cwd: ROOT,
      env: { ...process.env, REGISTRY_USERNAME: "", REGISTRY_PASSWORD: "", DOCKER_CONFIG: emptyDir, ...env },
      timeout: 30000,
    }, (err, stdout, stderr) => resolve({ code: err ? err.code ?? 1 : 0, stdout, stderr }));
    child.stdin.end(input ?? "");
  });
}

function runSkopeo(args) {
  return new Promise((resolve) => {
    execFile("skopeo", args, { timeout: 30000 }, (err, stdout, stderr) => resolve({ code: err ? err.code ?? 1 : 0, stdout, stderr }));
  });
}

// Pulls by tag over the distribution API with plain fetch (independent of the project's push client).
async function pull(host, repository, tag, authorization) {
  const headers = authorization ? { authorization } : {};
  const res = await fetch(`http://${host}/v2/${repository}/manifests/${tag}`, {
    headers: { ...headers, accept: `${OCI_MANIFEST}, application/vnd.docker.distribution.manifest.v2+json` },
  });
  if (res.status !== 200) throw new Error(`GET manifest ${repository}:${tag}: HTTP ${res.status} ${await res.text()}`);
  const manifestBytes = Buffer.from(await res.arrayBuffer());
  const blob = async (digest) => {
    const r = await fetch(`http://${host}/v2/${repository}/blobs/${digest}`, { headers });
    if (r.status !== 200) throw new Error(`GET blob ${digest}: HTTP ${r.status}`);
    return Buffer.from(await r.arrayBuffer());
  };
  const manifest = JSON.parse(manifestBytes.toString("utf8"));
  return {
    contentType: res.headers.get("content-type"),
    reportedDigest: res.headers.get("docker-content-digest"),
    manifestBytes,
    manifest,
    config: await blob(manifest.config.digest),
    layers: await Promise.all(manifest.layers.map((l) => blob(l.digest))),
  };
}

// The regular files of an uncompressed tar, read the simple ustar way: name -> bytes.
function untar(tar) {
  const files = new Map();
  for (let off = 0; off + 512 <= tar.length; ) {
    const header = tar.subarray(off, off + 512);
    if (header.every((b) => b === 0)) break;
    const field = (start, len) => header.subarray(start, start + len).toString("ascii").replace(/\0.*$/s, "").trim();
    expect(field(257, 5)).toBe("ustar"); // Istio's HTTP fetcher recognises a tar by this magic
    // Fixed metadata, so that the same module always gives the same digest (no clock, no user ids).
    expect([field(100, 8), field(108, 8), field(116, 8), field(136, 12)].map((f) => parseInt(f, 8))).toEqual([0o644, 0, 0, 0]);
    const size = parseInt(field(124, 12), 8);
    if (field(156, 1) === "0" || field(156, 1) === "") files.set(field(0, 100), tar.subarray(off + 512, off + 512 + size));
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return files;
}

let emptyDir;
let workDir;
let packageOutput;
let layout;
let registry;
const m = useMocks({ primary: "primary", backup: "backup" });

beforeAll(async () => {
  emptyDir = fs.mkdtempSync(path.join(os.tmpdir(), "ai-fallback-noauth-"));
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), "ai-fallback-oci-"));
  layout = path.join(workDir, "layout");
  registry = await startRegistry();
  const r = await runScript("package.mjs", ["--out", layout]);
  if (r.code !== 0) throw new Error(`package failed: ${r.stderr}`);
  packageOutput = r.stdout;
});

afterAll(async () => {
  await registry?.stop();
  fs.rmSync(workDir, { recursive: true, force: true });
  fs.rmSync(emptyDir, { recursive: true, force: true });
});

const layoutIndex = () => JSON.parse(fs.readFileSync(path.join(layout, "index.json"), "utf8"));

test("package writes an OCI image layout tagged with the package version, the same bytes every time", async () => {
  const index = layoutIndex();
  expect(JSON.parse(fs.readFileSync(path.join(layout, "oci-layout"), "utf8"))).toEqual({ imageLayoutVersion: "1.0.0" });
  expect(index.manifests).toHaveLength(1);
  expect(index.manifests[0].mediaType).toBe(OCI_MANIFEST);
  expect(index.manifests[0].annotations["org.opencontainers.image.ref.name"]).toBe(VERSION);
  // The two values a WasmPlugin's sha256 takes (manifest digest for oci://, module digest for http(s)://).
  expect(packageOutput).toContain(`WasmPlugin sha256 with url oci://...: ${index.manifests[0].digest.slice(7)}\n`);
  expect(packageOutput).toContain(`WasmPlugin sha256 with url https://.../ai_fallback.wasm: ${sha256(fs.readFileSync(FILTER_WASM_PATH)).slice(7)}\n`);
  const scripts = require("../../../package.json").scripts;
  expect(scripts.package).toBe("npm run build && node scripts/package.mjs");
  expect(scripts.push).toBe("node scripts/push.mjs");

  const again = path.join(workDir, "again");
  expect((await runScript("package.mjs", ["--out", again])).code).toBe(0);
  expect(fs.readFileSync(path.join(again, "index.json"), "utf8")).toBe(fs.readFileSync(path.join(layout, "index.json"), "utf8"));
  expect(fs.readdirSync(path.join(again, "blobs", "sha256")).sort()).toEqual(fs.readdirSync(path.join(layout, "blobs", "sha256")).sort());
  for (const blob of fs.readdirSync(path.join(layout, "blobs", "sha256"))) {
    const bytes = fs.readFileSync(path.join(layout, "blobs", "sha256", blob));
    expect(sha256(bytes)).toBe(`sha256:${blob}`);
  }
});

test("package refuses a file that is not a Wasm module, naming it", async () => {
  const bogus = path.join(workDir, "bogus.wasm");
  fs.writeFileSync(bogus, "not wasm at all");
  const r = await runScript("package.mjs", ["--wasm", bogus, "--out", path.join(workDir, "bogus")]);
  expect(r.code).not.toBe(0);
  expect(r.stderr).toMatch(/package: not a WebAssembly module/);
});

test("push, pull back by tag: OCI manifest, media types and digests hold, plugin.wasm is the build, and it runs in Envoy", async () => {
  const expectedDigest = layoutIndex().manifests[0].digest;
  const pushed = await runScript("push.mjs", [`${registry.host}/plugins/ai-fallback`, "--layout", layout]);
  expect(pushed.stderr).toBe("");
  expect(pushed.code).toBe(0);
  expect(pushed.stdout).toContain(`push: ${registry.host}/plugins/ai-fallback:${VERSION} is ${expectedDigest}`);
  expect(pushed.stdout).toContain(`WasmPlugin url: oci://${registry.host}/plugins/ai-fallback:${VERSION}`);

  const image = await pull(registry.host, "plugins/ai-fallback", VERSION);
  expect(image.contentType).toBe(OCI_MANIFEST);
  expect(image.reportedDigest).toBe(expectedDigest);
  expect(sha256(image.manifestBytes)).toBe(expectedDigest);
  expect(image.manifest.schemaVersion).toBe(2);
  expect(image.manifest.mediaType).toBe(OCI_MANIFEST);
  expect(image.manifest.config.mediaType).toBe(OCI_CONFIG);
  expect(image.manifest.layers.map((l) => l.mediaType)).toEqual([OCI_LAYER]);
  expect(image.manifest.annotations).toEqual({ "module.wasm.image/variant": "compat" });
  expect(sha256(image.config)).toBe(image.manifest.config.digest);
  expect(image.config.length).toBe(image.manifest.config.size);
  expect(sha256(image.layers[0])).toBe(image.manifest.layers[0].digest);
  expect(image.layers[0].length).toBe(image.manifest.layers[0].size);

  expect(image.layers[0].readUInt32LE(4)).toBe(0); // gzip MTIME unset
  const tar = zlib.gunzipSync(image.layers[0]);
  const config = JSON.parse(image.config.toString("utf8"));
  expect(config.rootfs).toEqual({ type: "layers", diff_ids: [sha256(tar)] });
  const files = untar(tar);
  expect([...files.keys()]).toEqual(["plugin.wasm"]);
  const pulledModule = files.get("plugin.wasm");
  expect(pulledModule.equals(fs.readFileSync(FILTER_WASM_PATH))).toBe(true);

  // The pulled module, loaded by a real Envoy, does its job: a failing primary falls back.
  const wasmPath = path.join(workDir, "pulled.wasm");
  fs.writeFileSync(wasmPath, pulledModule);
  const envoy = await startEnvoy({
    wasmPath,
    pluginConfig: { backups: [{ service: "backup" }] },
    clusters: { primary: m.primary.port, backup: m.backup.port },
  });
  try {
    m.primary.behave({ status: 503 });
    const res = await request(envoy.port, { body: { model: "gpt-4o", messages: [{ role: "user", content: "hi" }] } });
    expect(res.status).toBe(200);
    expect(res.json().served_by).toBe("backup");
    expect(res.headers["x-ai-fallback-service"]).toBe("backup");
  } finally {
    await envoy.stop();
  }

  // Pushing again uploads nothing and keeps the digest; another tag names the same manifest.
  const again = await runScript("push.mjs", [`oci://${registry.host}/plugins/ai-fallback:stable`, "--layout", layout, "--plain-http"]);
  expect(again.code).toBe(0);
  expect(again.stdout.match(/already there/g)).toHaveLength(2);
  expect((await pull(registry.host, "plugins/ai-fallback", "stable")).reportedDigest).toBe(expectedDigest);
});

test("skopeo copies the layout to the registry with the same digest", async () => {
  const r = await runSkopeo(["copy", "--dest-tls-verify=false", `oci:${layout}:${VERSION}`, `docker://${registry.host}/plugins/via-skopeo:${VERSION}`]);
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  const image = await pull(registry.host, "plugins/via-skopeo", VERSION);
  expect(image.reportedDigest).toBe(layoutIndex().manifests[0].digest);
});

test("push refuses bad references and a missing layout with a clear message", async () => {
  const cases = [
    [[`${registry.host}/Plugins/Upper`, "--layout", layout], /not a valid repository name/],
    [[`${registry.host}/plugins/x@sha256:${"0".repeat(64)}`, "--layout", layout], /pushing needs a tag, not a digest/],
    [[`${registry.host}/plugins/x:bad tag`, "--layout", layout], /not a valid tag/],
    [[`${registry.host}/plugins/x`, "--layout", path.join(workDir, "nothing")], /is not an OCI image layout \(run `npm run package` first\)/],
    [[], /usage: npm run push/],
  ];
  for (const [args, message] of cases) {
    const r = await runScript("push.mjs", args);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(message);
  }
  // A registry that is not there: the error names the request.
  const port = await freePort();
  const r = await runScript("push.mjs", [`127.0.0.1:${port}/plugins/x`, "--layout", layout]);
  expect(r.code).not.toBe(0);
  expect(r.stderr).toMatch(new RegExp(`HEAD http://127\\.0\\.0\\.1:${port}/v2/plugins/x/blobs/sha256:[0-9a-f]{64}: .*ECONNREFUSED`));
});

test("references are read as Docker and Istio's fetcher read them", async () => {
  const cases = {
    "registry.example.com/plugins/ai-fallback:0.1.0": { registry: "registry.example.com", repository: "plugins/ai-fallback", tag: "0.1.0" },
    "oci://registry.example.com:5000/ai-fallback": { registry: "registry.example.com:5000", repository: "ai-fallback", tag: "9.9.9" },
    "localhost/a/b:c": { registry: "localhost", repository: "a/b", tag: "c" },
    "ai-fallback": { registry: "docker.io", repository: "library/ai-fallback", tag: "9.9.9" },
    "someone/ai-fallback:1": { registry: "docker.io", repository: "someone/ai-fallback", tag: "1" },
  };
  const script = `import { parseReference, RegistryClient, parseChallenge } from ${JSON.stringify(path.join(ROOT, "scripts", "oci", "registry.mjs"))};
    const refs = ${JSON.stringify(Object.keys(cases))}.map((r) => parseReference(r, "9.9.9"));
    const bases = ["docker.io", "127.0.0.1:5000", "localhost:5000", "[::1]:5000", "registry.example.com"].map((registry) => new RegistryClient({ registry, repository: "a" }).base);
    const plain = new RegistryClient({ registry: "registry.example.com", repository: "a", plainHttp: true }).base;
    const challenge = parseChallenge('Bearer realm="https://auth.example.com/token",service="reg \\\\"x\\\\"",scope=repository:a:pull');
    console.log(JSON.stringify({ refs, bases, plain, challenge }));`;
  const out = await new Promise((resolve, reject) => execFile(process.execPath, ["--input-type=module", "-e", script], (err, stdout, stderr) => (err ? reject(new Error(stderr)) : resolve(stdout))));
  const { refs, bases, plain, challenge } = JSON.parse(out);
  expect(refs).toEqual(Object.values(cases));
  expect(bases).toEqual(["https://registry-1.docker.io", "http://127.0.0.1:5000", "http://localhost:5000", "http://[::1]:5000", "https://registry.example.com"]);
  expect(plain).toBe("http://registry.example.com");
  expect(challenge).toEqual({ scheme: "bearer", params: { realm: "https://auth.example.com/token", service: 'reg "x"', scope: "repository:a:pull" } });
});

test("credentials and tokens stay with the registry: no token service without TLS, no token for other hosts", async () => {
  // fetch is replaced by a scripted registry, so that HTTPS and foreign hosts can be played without servers.
  const script = `import { RegistryClient } from ${JSON.stringify(path.join(ROOT, "scripts", "oci", "registry.mjs"))};
    const seen = [];
    const reply = (status, headers = {}) => new Response(status === 204 ? null : "", { status, headers });
    globalThis.fetch = async (url, init = {}) => {
      const u = String(url);
      seen.push({ url: u, method: init.method ?? "GET", authorization: init.headers?.authorization ?? null });
      if (u.startsWith("https://reg.example/token")) return new Response(JSON.stringify({ token: "T" }), { status: 200 });
      if (init.headers?.authorization !== "Bearer T" && u.startsWith("https://reg.example/")) {
        return reply(401, { "www-authenticate": 'Bearer realm="' + realm + '",service="s"' });
      }
      if (init.method === "POST") return reply(202, { location: "https://storage.example/upload/1?sig=x" });
      return reply(201);
    };
    let realm = "http://reg.example/token";
    const creds = { username: "u", password: "p" };
    const refused = await new RegistryClient({ registry: "reg.example", repository: "a", credentials: creds })
      .uploadBlob({ digest: "sha256:00" }, Buffer.from("x")).then(() => "pushed", (e) => e.message);
    realm = "https://reg.example/token";
    seen.length = 0;
    await new RegistryClient({ registry: "reg.example", repository: "a", credentials: creds }).uploadBlob({ digest: "sha256:00" }, Buffer.from("x"));
    console.log(JSON.stringify({ refused, seen }));`;
  const out = await new Promise((resolve, reject) => execFile(process.execPath, ["--input-type=module", "-e", script], (err, stdout, stderr) => (err ? reject(new Error(stderr)) : resolve(stdout))));
  const { refused, seen } = JSON.parse(out);
  expect(refused).toBe("reg.example/a names a token service without TLS (http://reg.example); not sending the credentials there");
  expect(seen.map((r) => [r.method, r.url.replace(/\?.*/, ""), r.authorization])).toEqual([
    ["POST", "https://reg.example/v2/a/blobs/uploads/", null],
    ["GET", "https://reg.example/token", basic("u", "p")],
    ["POST", "https://reg.example/v2/a/blobs/uploads/", "Bearer T"],
    ["PUT", "https://storage.example/upload/1", null],
  ]);
});

describe("a registry that wants credentials (HTTP Basic, htpasswd)", () => {
  let secured;
  beforeAll(async () => {
    secured = await startRegistry({ htpasswd: HTPASSWD });
  });
  afterAll(async () => {
    await secured?.stop();
  });

  test("without credentials, or with a wrong password, the push fails and says why", async () => {
    const anonymous = await runScript("push.mjs", [`${secured.host}/plugins/ai-fallback`, "--layout", layout]);
    expect(anonymous.code).not.toBe(0);
    expect(anonymous.stderr).toMatch(/needs credentials \(HTTP Basic\): set REGISTRY_USERNAME and REGISTRY_PASSWORD/);
    const wrong = await runScript("push.mjs", [`${secured.host}/plugins/ai-fallback`, "--layout", layout], { env: { REGISTRY_USERNAME: USER, REGISTRY_PASSWORD: "wrong" } });
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toMatch(new RegExp(`HTTP 401 .*\\(the registry refused user ${USER}\\)`));
  });

  test("REGISTRY_USERNAME/REGISTRY_PASSWORD, --password-stdin and Docker's config.json each push", async () => {
    const digest = layoutIndex().manifests[0].digest;
    const viaEnv = await runScript("push.mjs", [`${secured.host}/plugins/env`, "--layout", layout], { env: { REGISTRY_USERNAME: USER, REGISTRY_PASSWORD: PASSWORD } });
    expect(viaEnv.stderr).toBe("");
    const viaStdin = await runScript("push.mjs", [`${secured.host}/plugins/stdin`, "--layout", layout, "--username", USER, "--password-stdin"], { input: `${PASSWORD}\n` });
    expect(viaStdin.stderr).toBe("");
    const dockerConfig = path.join(workDir, "docker");
    fs.mkdirSync(dockerConfig, { recursive: true });
    fs.writeFileSync(path.join(dockerConfig, "config.json"), JSON.stringify({ auths: { [secured.host]: { auth: Buffer.from(`${USER}:${PASSWORD}`).toString("base64") } } }));
    const viaConfig = await runScript("push.mjs", [`${secured.host}/plugins/config`, "--layout", layout], { env: { DOCKER_CONFIG: dockerConfig } });
    expect(viaConfig.stderr).toBe("");
    for (const repository of ["plugins/env", "plugins/stdin", "plugins/config"]) {
      expect((await pull(secured.host, repository, VERSION, basic(USER, PASSWORD))).reportedDigest).toBe(digest);
    }
  });
});

describe("a registry behind a token service (Bearer, as Harbor, ACR, GHCR and Docker Hub do)", () => {
  const TOKEN = "token-for-ai-fallback-test";
  let front;
  let tokenRequests;

  // A front on 127.0.0.1 that answers the Bearer challenge flow and forwards authorised requests to the
  // real registry (Host kept, so the registry's upload locations point back at the front).
  beforeAll(async () => {
    tokenRequests = [];
    const server = http.createServer((req, res) => {
      const url = new URL(req.url, "http://front");
      if (url.pathname === "/token") {
        tokenRequests.push({ query: Object.fromEntries(url.searchParams), authorization: req.headers.authorization });
        const ok = req.headers.authorization === basic(USER, PASSWORD);
        res.writeHead(ok ? 200 : 401, { "content-type": "application/json" });
        res.end(ok ? JSON.stringify({ token: TOKEN }) : '{"details":"bad credentials"}');
        return;
      }
      if (req.headers.authorization !== `Bearer ${TOKEN}`) {
        req.resume();
        res.writeHead(401, {
          "content-type": "application/json",
          "www-authenticate": `Bearer realm="http://${req.headers.host}/token",service="test-registry",scope="repository:plugins/bearer:pull"`,
        });
        res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
        return;
      }
      const upstream = http.request({ host: "127.0.0.1", port: registry.port, method: req.method, path: req.url, headers: req.headers }, (up) => {
        res.writeHead(up.statusCode, up.headers);
        up.pipe(res);
      });
      upstream.on("error", () => res.destroy());
      req.pipe(upstream);
    });
    await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
    front = { server, host: `127.0.0.1:${server.address().port}` };
  });
  afterAll(async () => {
    if (front) await new Promise((resolve) => { front.server.closeAllConnections(); front.server.close(resolve); });
  });

  test("the client gets a token for pull,push with the credentials and pushes with it", async () => {
    const pushed = await runScript("push.mjs", [`${front.host}/plugins/bearer`, "--layout", layout, "--username", USER, "--password-stdin"], { input: PASSWORD });
    expect(pushed.stderr).toBe("");
    expect(pushed.code).toBe(0);
    expect(tokenRequests.length).toBeGreaterThanOrEqual(1);
    expect(tokenRequests[0]).toEqual({ query: { service: "test-registry", scope: "repository:plugins/bearer:pull,push" }, authorization: basic(USER, PASSWORD) });
    expect((await pull(registry.host, "plugins/bearer", VERSION)).reportedDigest).toBe(layoutIndex().manifests[0].digest);
  });

  test("a token service that refuses the credentials gives a clear error", async () => {
    const r = await runScript("push.mjs", [`${front.host}/plugins/bearer`, "--layout", layout, "--username", USER, "--password-stdin"], { input: "wrong" });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(new RegExp(`token service http://${front.host}/token refused user ${USER}: HTTP 401`));
  });
});
