// npm run package: the release module (build/ai_fallback.wasm, built by `npm run build` first) as an OCI
// image layout in build/oci/, tagged with package.json's version. No Docker: scripts/oci/image.mjs
// writes the image itself; push it with `npm run push -- REGISTRY/REPOSITORY` or skopeo.
//   node scripts/package.mjs [--wasm FILE] [--out DIR] [--tag TAG]
import { readFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { buildWasmImage, MEDIA_TYPES, WASM_FILE_NAME } from "./oci/image.mjs";
import { writeLayout } from "./oci/layout.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const { version } = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));

function main() {
  const { values } = parseArgs({
    options: {
      wasm: { type: "string", default: join(root, "build", "ai_fallback.wasm") },
      out: { type: "string", default: join(root, "build", "oci") },
      tag: { type: "string", default: version },
    },
  });
  let wasm;
  try {
    wasm = readFileSync(values.wasm);
  } catch (err) {
    throw new Error(`${values.wasm}: ${err.code === "ENOENT" ? "not found; run `npm run build` first" : err.message}`);
  }
  const image = buildWasmImage(wasm);
  writeLayout(values.out, image, values.tag);
  const shown = relative(process.cwd(), values.out) || ".";
  console.log(`package: OCI image layout ${shown} (tag ${values.tag})`);
  const hex = (digest) => digest.slice("sha256:".length);
  console.log(`  manifest ${image.manifestDescriptor.digest} (${MEDIA_TYPES.manifest})`);
  console.log(`  layer    ${image.manifest.layers[0].digest} (${MEDIA_TYPES.layer}, ${image.manifest.layers[0].size} bytes, holds ${WASM_FILE_NAME})`);
  console.log(`  module   ${image.moduleDigest} (${wasm.length} bytes)`);
  // Istio's (and Higress's) fetcher compares `sha256` with the manifest digest for oci:// and with the
  // downloaded module for http(s):// (istio/istio pkg/wasm/cache.go).
  console.log(`WasmPlugin sha256 with url oci://...: ${hex(image.manifestDescriptor.digest)}`);
  console.log(`WasmPlugin sha256 with url https://.../ai_fallback.wasm: ${hex(image.moduleDigest)}`);
  console.log(`push it:  npm run push -- REGISTRY/REPOSITORY[:TAG]`);
  console.log(`      or  skopeo copy oci:${shown}:${values.tag} docker://REGISTRY/REPOSITORY:${values.tag}`);
}

try {
  main();
} catch (err) {
  console.error(`package: ${err.message}`);
  process.exit(1);
}
