// A mock HTTP authorization service for Envoy's ext_authz filter, on 127.0.0.1: it denies (403)
// every request whose path contains "/deny" and allows the rest, each after `delayMs`.
"use strict";

const http = require("node:http");

async function startAuthz() {
  const sockets = new Set();
  const timers = new Set();
  const authz = {
    port: 0,
    delayMs: 0,
    /** Paths of the checks asked for, in order. */
    checks: [],
    reset() {
      this.delayMs = 0;
      this.checks = [];
    },
    async stop() {
      for (const t of timers) clearTimeout(t);
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
  const server = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      authz.checks.push(req.url);
      const t = setTimeout(() => {
        timers.delete(t);
        if (req.url.includes("/deny")) {
          res.writeHead(403, { "content-type": "text/plain" });
          res.end("denied by authz");
        } else {
          res.writeHead(200);
          res.end();
        }
      }, authz.delayMs);
      timers.add(t);
    });
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  authz.port = server.address().port;
  return authz;
}

/** The ext_authz HTTP filter asking the mock on `port` (cluster "authz"); `extra` merges into its config. */
function extAuthzFilter(extra = {}) {
  return {
    name: "envoy.filters.http.ext_authz",
    typed_config: {
      "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz",
      transport_api_version: "V3",
      http_service: { server_uri: { uri: "http://authz", cluster: "authz", timeout: "5s" } },
      ...extra,
    },
  };
}

module.exports = { startAuthz, extAuthzFilter };
