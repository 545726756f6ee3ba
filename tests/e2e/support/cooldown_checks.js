// What both modes' cooldown tests check the same way: a steady stream of requests, an outage
// compressed in time (the primary gets only its failures and probes; a skipped request is fast),
// and a recovery (the primary is used again within one probe interval).
"use strict";

const { counter } = require("./envoy");
const { request } = require("./client");

const CHAT = { model: "gpt-4o", messages: [{ role: "user", content: "hello" }] };
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Requests one after another every `everyMs` for `forMs`; each result with the time it was sent and took. */
async function steadyRequests(port, everyMs, forMs, headers = {}) {
  const out = [];
  const start = Date.now();
  while (Date.now() - start < forMs) {
    const sentAt = Date.now();
    const res = await request(port, { body: CHAT, headers });
    out.push({ sentAt, res, took: Date.now() - sentAt });
    const wait = everyMs - (Date.now() - sentAt);
    if (wait > 0) await sleep(wait);
  }
  return out;
}

const median = (list) => list.map((r) => r.took).sort((a, b) => a - b)[Math.floor(list.length / 2)];

/**
 * A 3 s outage at a request every 50 ms, the primary failing after 100 ms: every client gets
 * backup-a's answer, at most failures + one probe per duration reach the primary, and a request
 * that skipped it (its attempts `skippedAttempts`) is faster than the primary's failure. Returns those.
 */
async function expectOutageWithinProbes({ envoy, mocks, cooldown, skippedAttempts, mode }) {
  const PRIMARY_FAILS_AFTER_MS = 100;
  const OUTAGE_MS = 3000;
  mocks.primary.behave({ status: 503, delayHeadersMs: PRIMARY_FAILS_AFTER_MS });
  const outage = await steadyRequests(envoy.port, 50, OUTAGE_MS);
  for (const { res } of outage) {
    expect(res.status).toBe(200);
    expect(res.json().served_by).toBe("backup-a");
  }
  const probesAllowed = cooldown.failures + Math.ceil(OUTAGE_MS / cooldown.duration) + 1;
  console.log(`cooldown (${mode}): ${outage.length} requests in a ${OUTAGE_MS} ms outage, ${mocks.primary.requests.length} reached the primary (allowed ${probesAllowed})`);
  expect(mocks.primary.requests.length).toBeLessThanOrEqual(probesAllowed);
  expect(outage.length).toBeGreaterThan(probesAllowed * 2);
  const skipped = outage.filter(({ res }) => res.headers["x-ai-fallback-attempts"] === skippedAttempts);
  expect(skipped.length).toBeGreaterThan(outage.length / 2);
  expect(skipped[0].res.headers["x-ai-fallback-trigger"]).toBe("cooling");
  const paid = outage.filter((r) => !skipped.includes(r));
  console.log(`cooldown (${mode}): fallback latency, median: ${median(skipped)} ms with the primary cooling (skipped), ${median(paid)} ms when the primary's 100 ms failure came first`);
  expect(median(skipped)).toBeLessThan(PRIMARY_FAILS_AFTER_MS);
  const stats = await envoy.stats();
  expect(counter(stats, "wasmcustom.ai_fallback.cooldown.skipped")).toBe(skipped.length);
  expect(counter(stats, "wasmcustom.ai_fallback.cooldown.probes")).toBeGreaterThanOrEqual(1);
  expect(counter(stats, "wasmcustom.ai_fallback.cooldown.cooling_services")).toBe(1);
  expect(envoy.logs()).toMatch(new RegExp(`cooldown: primary is skipped for ${cooldown.duration} ms, then probed by one request \\(${cooldown.failures} failures\\)`));
  return skipped;
}

/** The primary recovers: within one probe interval (plus refresh and scheduling slack) it answers again, and from then on every request. */
async function expectBackWithinOneProbe({ envoy, mocks, cooldown, mode }) {
  mocks.primary.reset();
  const recoveredAt = Date.now();
  const after = await steadyRequests(envoy.port, 50, cooldown.duration + 700);
  const firstByPrimary = after.find(({ res }) => res.json().served_by === "primary");
  expect(firstByPrimary).toBeDefined();
  console.log(`cooldown (${mode}): the recovered primary answered again ${firstByPrimary.sentAt - recoveredAt} ms after its recovery (duration ${cooldown.duration} ms)`);
  expect(firstByPrimary.sentAt - recoveredAt).toBeLessThanOrEqual(cooldown.duration + 250);
  for (const { res } of after.slice(after.indexOf(firstByPrimary))) expect(res.json().served_by).toBe("primary");
  expect(await envoy.logsWhen(/cooldown: primary answered and is used again/)).toMatch(/cooldown: primary answered and is used again/);
  expect(counter(await envoy.stats(), "wasmcustom.ai_fallback.cooldown.cooling_services")).toBe(0);
}

module.exports = { CHAT, steadyRequests, expectOutageWithinProbes, expectBackWithinOneProbe };
