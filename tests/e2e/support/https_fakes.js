// HTTPS stand-ins for real model providers on 127.0.0.1: certificates made at test time with openssl
// (a CA of the test's own, server certificates for the providers' names), and servers that record
// what each request carried, the TLS server name (SNI) included, and answer as the test tells them.
"use strict";

const { execFileSync } = require("node:child_process");
const fs = require("node:fs");
const https = require("node:https");
const os = require("node:os");
const path = require("node:path");

const OPENSSL = fs.existsSync("/usr/bin/openssl") ? "/usr/bin/openssl" : "openssl";

function openssl(args, cwd) {
  execFileSync(OPENSSL, args, { cwd, stdio: ["ignore", "ignore", "pipe"] });
}

/** A new CA in `dir` (files `${name}.key`, `${name}.crt`). */
function makeCa(dir, name) {
  openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
    "-subj", `/CN=${name}`, "-keyout", `${name}.key`, "-out", `${name}.crt`,
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"], dir);
  return { key: path.join(dir, `${name}.key`), cert: path.join(dir, `${name}.crt`) };
}

/** A server certificate `${name}` for DNS names `dnsNames` (wildcards allowed), signed by `ca`: { key, cert } as PEM text. */
function makeServerCert(dir, name, dnsNames, ca) {
  fs.writeFileSync(path.join(dir, `${name}.ext`),
    `subjectAltName=${dnsNames.map((n) => `DNS:${n}`).join(",")}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`);
  openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", `/CN=${dnsNames[0]}`,
    "-keyout", `${name}.key`, "-out", `${name}.csr`], dir);
  openssl(["x509", "-req", "-in", `${name}.csr`, "-CA", ca.cert, "-CAkey", ca.key, "-CAcreateserial", "-days", "2",
    "-extfile", `${name}.ext`, "-out", `${name}.crt`], dir);
  return { key: fs.readFileSync(path.join(dir, `${name}.key`)), cert: fs.readFileSync(path.join(dir, `${name}.crt`)) };
}

/**
 * Certificates for `dnsNames`: { dir, caFile (the trusted CA's PEM file), good (for dnsNames, by that CA),
 * wrongName (by that CA, for another name), untrusted (for dnsNames, by a CA nobody trusts), remove() }.
 */
function makeCertificates(dnsNames) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ai-fallback-certs-"));
  try {
    const ca = makeCa(dir, "test-ca");
    const otherCa = makeCa(dir, "other-ca");
    return {
      dir,
      caFile: ca.cert,
      good: makeServerCert(dir, "good", dnsNames, ca),
      wrongName: makeServerCert(dir, "wrong-name", ["not-the-provider.example"], ca),
      untrusted: makeServerCert(dir, "untrusted", dnsNames, otherCa),
      remove: () => fs.rmSync(dir, { recursive: true, force: true }),
    };
  } catch (e) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

/**
 * An HTTPS provider on 127.0.0.1 (a free port) with certificate `tls` ({ key, cert }). Each request is
 * recorded in `requests` as { servername, method, path, headers, body, json }; `answer(request)` (settable)
 * returns { status, headers, body } (body: string). Every answer closes its connection, so that a changed
 * certificate (useCertificate) applies to the next request. stop() closes it, connections included.
 */
async function startHttpsProvider(name, tls) {
  const provider = {
    name,
    requests: [],
    answer: () => ({ status: 200, body: JSON.stringify({ provider: name }) }),
    useCertificate(next) {
      server.setSecureContext(next);
    },
    reset(nextTls = tls) {
      provider.requests.length = 0;
      server.setSecureContext(nextTls);
    },
  };
  const server = https.createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      let json = null;
      try {
        json = JSON.parse(body);
      } catch {
        // not JSON: left null
      }
      const recorded = { servername: req.socket.servername, method: req.method, path: req.url, headers: req.headers, body, json };
      provider.requests.push(recorded);
      const { status = 200, headers = {}, body: out = "" } = provider.answer(recorded);
      res.writeHead(status, { "content-type": "application/json", ...headers, connection: "close" });
      res.end(out);
    });
  });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  provider.port = server.address().port;
  provider.stop = () => new Promise((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
  return provider;
}

module.exports = { makeCertificates, startHttpsProvider };
