// npm run test:istio-fetcher: the image `npm run package` writes, pushed into a real registry, and the module
// served over HTTP, fetched by the Istio agent's own code (main.go: istio.io/istio/pkg/wasm, pinned in go.mod)
// as a WasmPlugin's `url` and `sha256` make it do. Separate from `npm test`: it needs Go, and the first build
// downloads a few hundred MB of Go modules.
import { execFile, execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
const { startRegistry } = createRequire(import.meta.url)("../e2e/registry.js");
const { version } = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
// The same test user as tests/e2e/product/oci_registry.test.js (bcrypt of "push-secret", cost 4).
const USER = "ai-fallback-test";
const PASSWORD = "push-secret";
const HTPASSWD = "ai-fallback-test:$2b$04$ZDVfwgvWMvbTT/aR4ukPOOAYwAmbo22OMCU7fLxQHJyn9hqFFTTiC\n";

const sha256Hex = (bytes) => createHash("sha256").update(bytes).digest("hex");
let failures = 0;

const work = mkdtempSync(join(tmpdir(), "ai-fallback-istio-fetcher-"));
const binary = join(work, "istio_fetcher");
const module = readFileSync(join(root, "build", "ai_fallback.wasm"));
const moduleSha256 = sha256Hex(module);

// One fetch by Istio's code; `expect` is "module" (must return build/ai_fallback.wasm) or a RegExp its error must match.
// Asynchronous, so that the HTTP server in this process can answer.
async function check(what, args, expect) {
  const started = Date.now();
  const r = await new Promise((resolve) => {
    execFile(binary, args, { encoding: "utf8", timeout: 60000 }, (err, stdout, stderr) => resolve({ status: err ? (err.code ?? 1) : 0, stdout, stderr }));
  });
  const ms = Date.now() - started;
  let ok;
  let detail;
  if (expect === "module") {
    const result = r.status === 0 ? JSON.parse(r.stdout.trim().split("\n").pop()) : null;
    ok = result !== null && result.moduleSha256 === moduleSha256 && result.size === module.length;
    detail = result ? `module ${result.size} bytes, sha256 ${result.moduleSha256}` : r.stderr.trim().split("\n").pop();
  } else {
    ok = r.status === 1 && expect.test(r.stderr);
    detail = r.status === 0 ? "it was fetched" : r.stderr.trim().split("\n").pop();
  }
  console.log(`istio-fetcher: ${ok ? "ok  " : "FAIL"} ${what} (${ms} ms): ${detail}`);
  if (!ok) failures++;
}

let open;
let secured;
let labelled;
let server;
try {
  const started = Date.now();
  const build = spawnSync("go", ["build", "-o", binary, "."], { cwd: here, encoding: "utf8", stdio: ["ignore", "inherit", "inherit"] });
  if (build.error || build.status !== 0) throw new Error(`go build failed${build.error ? `: ${build.error.message} (is Go installed?)` : ""}`);
  console.log(`istio-fetcher: built Istio's fetcher in ${((Date.now() - started) / 1000).toFixed(1)} s`);

  const layout = join(work, "layout");
  execFileSync(process.execPath, [join(root, "scripts", "package.mjs"), "--out", layout], { stdio: "ignore" });
  const manifestHex = JSON.parse(readFileSync(join(layout, "index.json"), "utf8")).manifests[0].digest.slice("sha256:".length);
  // The Basic challenge's realm is only a label, but Istio's fetcher (since its SSRF guard) refuses any 401
  // whose realm is not an http(s) URL of a public host, Basic challenges included; so this registry names one.
  [open, secured, labelled] = await Promise.all([
    startRegistry(),
    startRegistry({ htpasswd: HTPASSWD, realm: "https://registry.ai-fallback.example/" }),
    startRegistry({ htpasswd: HTPASSWD, realm: "ai-fallback-test" }),
  ]);
  const push = (ref, env = {}) => execFileSync(process.execPath, [join(root, "scripts", "push.mjs"), ref, "--layout", layout], { stdio: "ignore", env: { ...process.env, ...env } });
  push(`${open.host}/plugins/ai-fallback:${version}`);
  for (const r of [secured, labelled]) push(`${r.host}/plugins/ai-fallback:${version}`, { REGISTRY_USERNAME: USER, REGISTRY_PASSWORD: PASSWORD });

  const oci = `oci://${open.host}/plugins/ai-fallback:${version}`;
  await check(`${oci}`, [oci], "module");
  await check(`${oci} with sha256 = manifest digest`, [oci, manifestHex], "module");
  await check(`${oci} with sha256 = module digest (wrong for oci://)`, [oci, moduleSha256], /does not match/);

  const secret = join(work, "pull-secret.json");
  const auth = Buffer.from(`${USER}:${PASSWORD}`).toString("base64");
  writeFileSync(secret, JSON.stringify({ auths: { [secured.host]: { auth }, [labelled.host]: { auth } } }));
  const private_ = `oci://${secured.host}/plugins/ai-fallback:${version}`;
  await check(`${private_} with imagePullSecret`, [private_, manifestHex, secret], "module");
  await check(`${private_} without imagePullSecret`, [private_, manifestHex], /UNAUTHORIZED|401/);
  const label = `oci://${labelled.host}/plugins/ai-fallback:${version}`;
  await check(`${label} (Basic realm "ai-fallback-test") with imagePullSecret: Istio refuses the realm`, [label, manifestHex, secret], /rejected unsafe bearer realm/);

  server = createServer((req, res) => {
    if (req.url === "/ai-fallback/ai_fallback.wasm") res.writeHead(200, { "content-type": "application/wasm" }).end(module);
    else res.writeHead(404).end();
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const httpUrl = `http://127.0.0.1:${server.address().port}/ai-fallback/ai_fallback.wasm`;
  await check(`${httpUrl} with sha256 = module digest`, [httpUrl, moduleSha256], "module");
  await check(`${httpUrl} with sha256 = manifest digest (wrong for http://)`, [httpUrl, manifestHex], /does not match/);
} catch (err) {
  console.error(`istio-fetcher: FAIL: ${err.message}`);
  failures++;
} finally {
  await Promise.all([open?.stop(), secured?.stop(), labelled?.stop(), server && new Promise((resolve) => server.close(resolve))]);
  rmSync(work, { recursive: true, force: true });
}
console.log(failures ? `istio-fetcher: ${failures} check(s) failed` : "istio-fetcher: all checks passed");
process.exitCode = failures ? 1 : 0;
