// A small push client for the OCI distribution API (opencontainers/distribution-spec spec.md): blob
// existence check (HEAD), monolithic blob upload (POST then PUT ?digest=), manifest PUT by tag. Auth is
// the registries' usual challenge flow: a 401 names Basic (send the credentials) or Bearer (get a token
// from the realm it names, with the credentials if any, for `repository:NAME:pull,push`).
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

const DOCKER_HUB = "docker.io";
const DOCKER_HUB_API = "registry-1.docker.io";
// distribution/reference grammar
const REPOSITORY = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;

/**
 * `registry.example.com/plugins/ai-fallback:0.1.0` (an `oci://` or `docker://` prefix is allowed) ->
 * { registry, repository, tag }. Without a tag, `defaultTag`. Without a registry host (no `.` or `:` in the
 * first part, and not `localhost`), Docker Hub, as Docker and Istio's fetcher read it.
 */
export function parseReference(text, defaultTag) {
  const ref = String(text).replace(/^(oci|docker):\/\//, "");
  if (ref.includes("@")) throw new Error(`${text}: pushing needs a tag, not a digest`);
  let registry = DOCKER_HUB;
  let rest = ref;
  const slash = ref.indexOf("/");
  const first = slash < 0 ? "" : ref.slice(0, slash);
  if (first && (first.includes(".") || first.includes(":") || first === "localhost")) {
    registry = first;
    rest = ref.slice(slash + 1);
  }
  let tag = defaultTag;
  const colon = rest.lastIndexOf(":");
  if (colon > rest.lastIndexOf("/")) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  const repository = registry === DOCKER_HUB && !rest.includes("/") ? `library/${rest}` : rest;
  if (!REPOSITORY.test(repository)) throw new Error(`${text}: "${repository}" is not a valid repository name (lower case, digits, . _ - and /)`);
  if (!tag || !TAG.test(tag)) throw new Error(`${text}: "${tag ?? ""}" is not a valid tag`);
  return { registry, repository, tag };
}

function isLoopback(registry) {
  const host = registry.replace(/:\d+$/, "").replace(/^\[|\]$/g, "");
  return host === "localhost" || host === "::1" || /^127\./.test(host);
}

/**
 * Credentials from Docker's config file ($DOCKER_CONFIG/config.json or ~/.docker/config.json), as written
 * by `docker login`, `skopeo login --authfile` or `oras login`: the base64 `auth` entry of the registry.
 * Credential helpers (credsStore, credHelpers) are not run. Returns { username, password } or null.
 */
export function dockerConfigCredentials(registry, env = process.env) {
  const file = join(env.DOCKER_CONFIG ?? join(homedir(), ".docker"), "config.json");
  let config;
  try {
    config = JSON.parse(readFileSync(file, "utf8"));
  } catch {
    return null;
  }
  const keys = registry === DOCKER_HUB ? ["https://index.docker.io/v1/", DOCKER_HUB, DOCKER_HUB_API] : [registry, `https://${registry}`, `http://${registry}`];
  for (const key of keys) {
    const auth = config.auths?.[key]?.auth;
    if (auth) {
      const decoded = Buffer.from(auth, "base64").toString("utf8");
      const colon = decoded.indexOf(":");
      if (colon > 0) return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
    }
  }
  return null;
}

// `Bearer realm="https://auth.example.com/token",service="registry",scope="..."` -> { scheme, params }
export function parseChallenge(header) {
  const match = /^\s*(\w+)\s*(.*)$/s.exec(header ?? "");
  if (!match) return null;
  const params = {};
  const param = /([\w-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g;
  for (let m; (m = param.exec(match[2])); ) params[m[1].toLowerCase()] = m[2] !== undefined ? m[2].replace(/\\(.)/g, "$1") : m[3];
  return { scheme: match[1].toLowerCase(), params };
}

async function registryError(res) {
  const text = await res.text().catch(() => "");
  try {
    const errors = JSON.parse(text).errors;
    if (Array.isArray(errors) && errors.length) return errors.map((e) => `${e.code}: ${e.message}`).join("; ");
  } catch {
    // not the registry's JSON error format
  }
  return text.trim().slice(0, 300) || res.statusText;
}

export class RegistryClient {
  /**
   * registry: host[:port]; repository: path inside it; credentials: { username, password } or null;
   * plainHttp: talk HTTP instead of HTTPS (default: only for loopback registries).
   */
  constructor({ registry, repository, credentials = null, plainHttp }) {
    this.registry = registry;
    this.repository = repository;
    this.credentials = credentials;
    const host = registry === DOCKER_HUB ? DOCKER_HUB_API : registry;
    this.base = `${plainHttp ?? isLoopback(registry) ? "http" : "https"}://${host}`;
    this.authorization = null; // the header value that the last challenge asked for
  }

  async #authenticate(res) {
    const challenge = parseChallenge(res.headers.get("www-authenticate"));
    const who = `${this.registry}/${this.repository}`;
    if (challenge?.scheme === "basic") {
      if (!this.credentials) throw new Error(`${who} needs credentials (HTTP Basic): set REGISTRY_USERNAME and REGISTRY_PASSWORD, or log in with docker/skopeo/oras`);
      const { username, password } = this.credentials;
      this.authorization = `Basic ${Buffer.from(`${username}:${password}`).toString("base64")}`;
      return;
    }
    if (challenge?.scheme === "bearer" && challenge.params.realm) {
      const url = new URL(challenge.params.realm);
      // Credentials go in clear over HTTP: only where the registry itself is spoken to over HTTP.
      if (this.credentials && url.protocol !== "https:" && this.base.startsWith("https:")) {
        throw new Error(`${who} names a token service without TLS (${url.origin}); not sending the credentials there`);
      }
      if (challenge.params.service) url.searchParams.set("service", challenge.params.service);
      url.searchParams.set("scope", `repository:${this.repository}:pull,push`);
      const headers = {};
      if (this.credentials) {
        const { username, password } = this.credentials;
        headers.authorization = `Basic ${Buffer.from(`${username}:${password}`).toString("base64")}`;
      }
      const tokenRes = await fetch(url, { headers });
      if (!tokenRes.ok) {
        throw new Error(`token service ${url.origin}${url.pathname} refused ${this.credentials ? `user ${this.credentials.username}` : "anonymous access"}: HTTP ${tokenRes.status} ${await registryError(tokenRes)}`);
      }
      const body = await tokenRes.json();
      const token = body.token ?? body.access_token;
      if (!token) throw new Error(`token service ${url.origin}${url.pathname} answered without a token`);
      this.authorization = `Bearer ${token}`;
      return;
    }
    throw new Error(`${who} asked for authentication this client does not speak: ${res.headers.get("www-authenticate") ?? "(no WWW-Authenticate header)"}`);
  }

  // One request; on a 401 authenticate once and repeat it.
  async #request(method, url, { headers = {}, body } = {}) {
    for (let attempt = 0; ; attempt++) {
      const all = { ...headers };
      // Only the registry gets its token: an upload Location may point at another host (a storage service).
      if (this.authorization && new URL(url).origin === new URL(this.base).origin) all.authorization = this.authorization;
      let res;
      try {
        res = await fetch(url, { method, headers: all, body });
      } catch (err) {
        throw new Error(`${method} ${url}: ${err.cause?.message ?? err.message}${this.base.startsWith("https") ? " (a registry without TLS needs --plain-http)" : ""}`);
      }
      if (res.status !== 401 || attempt > 0) return res;
      await res.arrayBuffer(); // let the connection be reused
      await this.#authenticate(res);
    }
  }

  async #expect(res, statuses, what) {
    if (statuses.includes(res.status)) return res;
    const detail = await registryError(res);
    const who = this.credentials ? `user ${this.credentials.username}` : "anonymous access";
    const hint = res.status === 401 ? ` (the registry refused ${who})` : res.status === 403 ? ` (${who} may not push to ${this.repository})` : "";
    throw new Error(`${what}: HTTP ${res.status} ${detail}${hint}`);
  }

  #url(path) {
    return `${this.base}/v2/${this.repository}/${path}`;
  }

  /** True when the registry already has the blob. */
  async hasBlob(digest) {
    const res = await this.#request("HEAD", this.#url(`blobs/${digest}`));
    if (res.status === 404) return false;
    await this.#expect(res, [200], `checking blob ${digest}`);
    return true;
  }

  async uploadBlob(descriptor, bytes) {
    const start = await this.#expect(await this.#request("POST", this.#url("blobs/uploads/")), [202], `starting the upload of ${descriptor.digest}`);
    const location = start.headers.get("location");
    if (!location) throw new Error(`starting the upload of ${descriptor.digest}: the registry gave no Location`);
    await start.arrayBuffer();
    const url = new URL(location, this.base);
    url.searchParams.set("digest", descriptor.digest);
    const res = await this.#request("PUT", url.href, {
      headers: { "content-type": "application/octet-stream", "content-length": String(bytes.length) },
      body: bytes,
    });
    await this.#expect(res, [201], `uploading ${descriptor.digest}`);
    await res.arrayBuffer();
  }

  /** Puts the manifest under `tag`; returns the digest the registry reports (or ours, when it reports none). */
  async putManifest(tag, descriptor, bytes) {
    const res = await this.#request("PUT", this.#url(`manifests/${tag}`), {
      headers: { "content-type": descriptor.mediaType },
      body: bytes,
    });
    await this.#expect(res, [201], `putting the manifest as ${tag}`);
    await res.arrayBuffer();
    const reported = res.headers.get("docker-content-digest");
    if (reported && reported !== descriptor.digest) {
      throw new Error(`the registry stored the manifest as ${reported}, expected ${descriptor.digest}`);
    }
    return reported ?? descriptor.digest;
  }

  /** Pushes an image read by readLayout: the blobs the registry lacks, then the manifest. */
  async pushImage(image, tag, log = () => {}) {
    for (const { descriptor, bytes } of image.blobs) {
      if (await this.hasBlob(descriptor.digest)) {
        log(`blob ${descriptor.digest} (${descriptor.size} bytes): already there`);
      } else {
        await this.uploadBlob(descriptor, bytes);
        log(`blob ${descriptor.digest} (${descriptor.size} bytes): uploaded`);
      }
    }
    return this.putManifest(tag, image.manifestDescriptor, image.manifestBytes);
  }
}
