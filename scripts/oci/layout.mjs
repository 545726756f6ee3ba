// An OCI image layout on disk (opencontainers/image-spec image-layout.md): `oci-layout`, `index.json`
// naming the image by its tag (annotation org.opencontainers.image.ref.name) and `blobs/sha256/<hex>`.
// Read by scripts/push.mjs and by `skopeo copy oci:DIR:TAG ...` (both tested).
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { MEDIA_TYPES, sha256Digest } from "./image.mjs";

const REF_NAME = "org.opencontainers.image.ref.name";

function blobPath(dir, digest) {
  const [algorithm, hex] = digest.split(":");
  return join(dir, "blobs", algorithm, hex);
}

/** Writes `image` (from buildWasmImage) to `dir`, replacing whatever was there, tagged `tag`. */
export function writeLayout(dir, image, tag) {
  rmSync(dir, { recursive: true, force: true }); // no blobs of an earlier build left behind
  mkdirSync(join(dir, "blobs", "sha256"), { recursive: true });
  writeFileSync(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  for (const [digest, bytes] of image.blobs) writeFileSync(blobPath(dir, digest), bytes);
  const index = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.index,
    manifests: [{ ...image.manifestDescriptor, annotations: { [REF_NAME]: tag } }],
  };
  writeFileSync(join(dir, "index.json"), JSON.stringify(index));
}

function readBlob(dir, descriptor) {
  const bytes = readFileSync(blobPath(dir, descriptor.digest));
  if (bytes.length !== descriptor.size || sha256Digest(bytes) !== descriptor.digest) {
    throw new Error(`${dir}: blob ${descriptor.digest} does not match its descriptor (size or digest differ)`);
  }
  return bytes;
}

/**
 * Reads the image tagged `tag` (or the only image, when `tag` is absent) back from `dir`, checking every
 * digest. Returns { tag, manifestDescriptor, manifestBytes, manifest, blobs: [{ descriptor, bytes }] }.
 */
export function readLayout(dir, tag) {
  let index;
  try {
    index = JSON.parse(readFileSync(join(dir, "index.json"), "utf8"));
  } catch (err) {
    throw new Error(`${dir} is not an OCI image layout (run \`npm run package\` first): ${err.message}`);
  }
  const entries = (index.manifests ?? []).filter((m) => tag === undefined || m.annotations?.[REF_NAME] === tag);
  if (entries.length !== 1) {
    const tags = (index.manifests ?? []).map((m) => m.annotations?.[REF_NAME]).join(", ");
    throw new Error(`${dir}: ${tag === undefined ? "expected exactly one image" : `no image tagged ${tag}`} (tags: ${tags || "none"})`);
  }
  const manifestDescriptor = entries[0];
  if (manifestDescriptor.mediaType !== MEDIA_TYPES.manifest) {
    throw new Error(`${dir}: ${manifestDescriptor.digest} is ${manifestDescriptor.mediaType}, expected ${MEDIA_TYPES.manifest}`);
  }
  const manifestBytes = readBlob(dir, manifestDescriptor);
  const manifest = JSON.parse(manifestBytes.toString("utf8"));
  const blobs = [manifest.config, ...manifest.layers].map((descriptor) => ({ descriptor, bytes: readBlob(dir, descriptor) }));
  return { tag: manifestDescriptor.annotations?.[REF_NAME], manifestDescriptor, manifestBytes, manifest, blobs };
}
