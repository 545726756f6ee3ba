// npm run test:istio-fetcher: the image `npm run package` writes, pushed into a real registry and pulled
// back by Istio's own image fetcher (main.go, built with Go from the pinned istio.io/istio in go.mod).
// Separate from `npm test`: it needs Go, and the first build downloads a few hundred MB of Go modules.
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
const { startRegistry } = createRequire(import.meta.url)("../e2e/registry.js");
const { version } = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));

function fail(message) {
  console.error(`istio-fetcher: FAIL: ${message}`);
  process.exitCode = 1;
}

const work = mkdtempSync(join(tmpdir(), "ai-fallback-istio-fetcher-"));
let registry;
try {
  const started = Date.now();
  const binary = join(work, "istio_fetcher");
  const build = spawnSync("go", ["build", "-o", binary, "."], { cwd: here, encoding: "utf8", stdio: ["ignore", "inherit", "inherit"] });
  if (build.error || build.status !== 0) throw new Error(`go build failed${build.error ? `: ${build.error.message} (is Go installed?)` : ""}`);
  console.log(`istio-fetcher: built Istio's fetcher in ${((Date.now() - started) / 1000).toFixed(1)} s`);

  const layout = join(work, "layout");
  execFileSync(process.execPath, [join(root, "scripts", "package.mjs"), "--out", layout], { stdio: "ignore" });
  const index = JSON.parse(readFileSync(join(layout, "index.json"), "utf8"));
  registry = await startRegistry();
  const ref = `${registry.host}/plugins/ai-fallback:${version}`;
  execFileSync(process.execPath, [join(root, "scripts", "push.mjs"), ref, "--layout", layout], { stdio: "ignore" });

  const pulledAt = Date.now();
  const fetched = spawnSync(binary, [ref], { encoding: "utf8" });
  if (fetched.status !== 0) throw new Error(`Istio's fetcher could not read the image:\n${fetched.stderr}`);
  const result = JSON.parse(fetched.stdout.trim().split("\n").pop());
  const module = readFileSync(join(root, "build", "ai_fallback.wasm"));
  const moduleSha256 = createHash("sha256").update(module).digest("hex");
  console.log(`istio-fetcher: pulled ${ref} in ${Date.now() - pulledAt} ms: manifest ${result.manifestDigest}, module ${result.size} bytes sha256 ${result.moduleSha256}`);
  if (`sha256:${result.manifestDigest}` !== index.manifests[0].digest) fail(`manifest digest ${result.manifestDigest}, layout has ${index.manifests[0].digest}`);
  if (result.moduleSha256 !== moduleSha256 || result.size !== module.length) fail(`the module differs from build/ai_fallback.wasm (sha256 ${moduleSha256})`);
  if (!process.exitCode) console.log("istio-fetcher: OK: Istio's fetcher extracts build/ai_fallback.wasm byte for byte");
} catch (err) {
  fail(err.message);
} finally {
  await registry?.stop();
  rmSync(work, { recursive: true, force: true });
}
