// The plugin's OCI image, built from the module's bytes alone (pure: no clock, no file system).
//
// Format: the "compat" variant of the Wasm image spec (solo-io/wasm spec/spec-compat.md), with standard OCI
// media types: one layer `application/vnd.oci.image.layer.v1.tar+gzip` holding `plugin.wasm`. It is the
// first format Istio's image fetcher tries for an OCI manifest (istio/istio pkg/wasm/imagefetcher.go,
// `extractOCIStandardImage`: it takes the manifest's last layer, gunzips and untars it and returns the
// entry named plugin.wasm), the same code in higress-group/istio, and what Higress publishes its own
// plugins as (higress .github/workflows/build-and-push-wasm-plugin-image.yaml pushes `plugin.tar.gz`
// with that media type as the last layer). The Wasm OCI artifact
// (`application/vnd.module.wasm.content.layer.v1+wasm`) is only the fetcher's last resort and must then
// have exactly two layers; a Docker v2 manifest needs Docker's media types. Standard media types also
// pass every registry, including those that refuse unknown artifact types.
//
// Deterministic: the same module gives the same bytes and so the same digests, on any machine. The tar
// entry has fixed metadata (mtime 0, uid/gid 0, mode 0644) and the gzip stream uses stored (uncompressed)
// deflate blocks, whose bytes are fixed by the format; zlib's compressed output is not guaranteed to be
// the same across zlib builds, and the module is small (about 120 KiB).
import { createHash } from "node:crypto";

export const MEDIA_TYPES = Object.freeze({
  manifest: "application/vnd.oci.image.manifest.v1+json",
  index: "application/vnd.oci.image.index.v1+json",
  config: "application/vnd.oci.image.config.v1+json",
  layer: "application/vnd.oci.image.layer.v1.tar+gzip",
});

// The file name Istio's fetcher looks for inside the layer.
export const WASM_FILE_NAME = "plugin.wasm";

const WASM_MAGIC = Buffer.from([0x00, 0x61, 0x73, 0x6d]);

export function sha256Digest(bytes) {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

function descriptor(mediaType, bytes) {
  return { mediaType, digest: sha256Digest(bytes), size: bytes.length };
}

// ---- tar: one regular file in a POSIX ustar archive -------------------------------------------

const TAR_BLOCK = 512;

function writeField(header, offset, length, text) {
  const bytes = Buffer.from(text, "ascii");
  if (bytes.length > length) throw new Error(`tar field too long: ${text}`);
  bytes.copy(header, offset);
}

// A number as zero-padded octal digits followed by NUL, filling `length` bytes.
function octal(value, length) {
  const text = value.toString(8).padStart(length - 1, "0");
  if (text.length > length - 1) throw new Error(`${value} does not fit a ${length}-byte tar field`);
  return `${text}\0`;
}

export function tarSingleFile(name, content) {
  const header = Buffer.alloc(TAR_BLOCK); // unused fields stay NUL
  writeField(header, 0, 100, name);
  writeField(header, 100, 8, octal(0o644, 8)); // mode
  writeField(header, 108, 8, octal(0, 8)); // uid
  writeField(header, 116, 8, octal(0, 8)); // gid
  writeField(header, 124, 12, octal(content.length, 12)); // size
  writeField(header, 136, 12, octal(0, 12)); // mtime: fixed, for a reproducible digest
  writeField(header, 156, 1, "0"); // typeflag: regular file
  writeField(header, 257, 6, "ustar\0");
  writeField(header, 263, 2, "00");
  // The checksum is the byte sum of the header with its own field read as eight spaces.
  header.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of header) sum += b;
  writeField(header, 148, 8, `${sum.toString(8).padStart(6, "0")}\0 `);

  const padding = (TAR_BLOCK - (content.length % TAR_BLOCK)) % TAR_BLOCK;
  // Two zero blocks end the archive.
  return Buffer.concat([header, content, Buffer.alloc(padding), Buffer.alloc(2 * TAR_BLOCK)]);
}

// ---- gzip with stored deflate blocks (RFC 1951 section 3.2.4, RFC 1952) -----------------------

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(bytes) {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const STORED_BLOCK_MAX = 0xffff;

export function gzipStored(data) {
  // ID1 ID2, CM=deflate, FLG=0, MTIME=0, XFL=0, OS=255 (unknown): nothing that depends on the machine.
  const parts = [Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xff])];
  let offset = 0;
  do {
    const length = Math.min(STORED_BLOCK_MAX, data.length - offset);
    const final = offset + length === data.length;
    const head = Buffer.alloc(5);
    head[0] = final ? 0x01 : 0x00; // BFINAL, BTYPE=00 (stored), then padding to the byte boundary
    head.writeUInt16LE(length, 1);
    head.writeUInt16LE(~length & 0xffff, 3);
    parts.push(head, data.subarray(offset, offset + length));
    offset += length;
  } while (offset < data.length);
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(crc32(data), 0);
  trailer.writeUInt32LE(data.length >>> 0, 4); // ISIZE: length modulo 2^32
  parts.push(trailer);
  return Buffer.concat(parts);
}

// ---- the image ---------------------------------------------------------------------------------

// Canonical JSON bytes: keys in the order written here, no whitespace.
function jsonBytes(value) {
  return Buffer.from(JSON.stringify(value), "utf8");
}

/**
 * The image of one Wasm module. Returns { manifest, manifestBytes, manifestDescriptor, config,
 * configBytes, layerBytes, blobs } where blobs maps each digest to its bytes (config, layer, manifest).
 */
export function buildWasmImage(wasm) {
  const module = Buffer.from(wasm);
  if (module.length < 8 || !module.subarray(0, 4).equals(WASM_MAGIC)) {
    throw new Error("not a WebAssembly module (it does not start with \\0asm)");
  }
  const tar = tarSingleFile(WASM_FILE_NAME, module);
  const layerBytes = gzipStored(tar);
  const config = {
    // GOARCH/GOOS spelling, as the OCI image spec asks; the image holds a WASI module, not a Linux binary.
    architecture: "wasm",
    os: "wasip1",
    config: {},
    rootfs: { type: "layers", diff_ids: [sha256Digest(tar)] },
  };
  const configBytes = jsonBytes(config);
  const manifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.manifest,
    config: descriptor(MEDIA_TYPES.config, configBytes),
    layers: [descriptor(MEDIA_TYPES.layer, layerBytes)],
    // Required by spec-compat.md for the OCI layer media type; Istio's fetcher does not read it.
    annotations: { "module.wasm.image/variant": "compat" },
  };
  const manifestBytes = jsonBytes(manifest);
  const manifestDescriptor = descriptor(MEDIA_TYPES.manifest, manifestBytes);
  const blobs = new Map([
    [manifest.config.digest, configBytes],
    [manifest.layers[0].digest, layerBytes],
    [manifestDescriptor.digest, manifestBytes],
  ]);
  return { manifest, manifestBytes, manifestDescriptor, config, configBytes, layerBytes, blobs, moduleDigest: sha256Digest(module) };
}
