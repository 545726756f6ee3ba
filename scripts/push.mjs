// npm run push -- REGISTRY/REPOSITORY[:TAG]: pushes the image that `npm run package` wrote (build/oci/) to
// a registry, over the OCI distribution API (scripts/oci/registry.mjs). The tag defaults to the layout's
// (package.json's version).
//   node scripts/push.mjs REF [--layout DIR] [--plain-http] [--username USER] [--password-stdin]
// Credentials, first found wins: --username with the password on stdin (--password-stdin) or in
// REGISTRY_PASSWORD; REGISTRY_USERNAME and REGISTRY_PASSWORD; the registry's `auth` entry in Docker's
// config.json ($DOCKER_CONFIG or ~/.docker); else anonymous. HTTPS unless the registry is on loopback or
// --plain-http is given.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { readLayout } from "./oci/layout.mjs";
import { dockerConfigCredentials, parseReference, RegistryClient } from "./oci/registry.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

function credentials(values, registry) {
  const env = process.env;
  if (values.username) {
    const password = values["password-stdin"] ? readFileSync(0, "utf8").replace(/\r?\n$/, "") : env.REGISTRY_PASSWORD;
    if (!password) throw new Error("--username needs a password: --password-stdin or REGISTRY_PASSWORD");
    return { username: values.username, password };
  }
  if (values["password-stdin"]) throw new Error("--password-stdin needs --username");
  if (env.REGISTRY_USERNAME || env.REGISTRY_PASSWORD) {
    if (!env.REGISTRY_USERNAME || !env.REGISTRY_PASSWORD) throw new Error("set both REGISTRY_USERNAME and REGISTRY_PASSWORD");
    return { username: env.REGISTRY_USERNAME, password: env.REGISTRY_PASSWORD };
  }
  return dockerConfigCredentials(registry);
}

async function main() {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      layout: { type: "string", default: join(root, "build", "oci") },
      "plain-http": { type: "boolean" },
      username: { type: "string" },
      "password-stdin": { type: "boolean", default: false },
    },
  });
  if (positionals.length !== 1) throw new Error("usage: npm run push -- REGISTRY/REPOSITORY[:TAG] [--plain-http] [--username USER --password-stdin]");
  const image = readLayout(values.layout);
  const { registry, repository, tag } = parseReference(positionals[0], image.tag);
  const client = new RegistryClient({ registry, repository, credentials: credentials(values, registry), plainHttp: values["plain-http"] });
  const digest = await client.pushImage(image, tag, (line) => console.log(`push: ${line}`));
  console.log(`push: ${registry}/${repository}:${tag} is ${digest}`);
  console.log(`WasmPlugin url: oci://${registry}/${repository}:${tag}`);
}

main().catch((err) => {
  console.error(`push: ${err.message}`);
  process.exit(1);
});
