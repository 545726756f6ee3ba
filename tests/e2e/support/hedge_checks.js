// Checks both modes' hedging tests share: the hedge counters, and that a place among
// hedge.maxInFlight is free (the next late primary races again).
"use strict";

const { counter } = require("./envoy");
const { request } = require("./client");

const HEDGE_COUNTERS = ["started", "won_by_primary", "won_by_backup", "over_limit"];

/** [started, won_by_primary, won_by_backup, over_limit] as Envoy reports them now. */
async function hedgeCounters(envoy) {
  const stats = await envoy.stats();
  return HEDGE_COUNTERS.map((n) => counter(stats, `wasmcustom.ai_fallback.hedge.${n}`));
}

/**
 * Sends one streaming request whose primary is late (3x `timeoutMs`) and whose backup answers at
 * 0.5x: with a free place it races and the backup wins. Returns the counters' growth since `before`.
 */
async function raceOneLatePrimary({ envoy, mocks, events, body, timeoutMs, before }) {
  mocks.primary.behave({ sse: { events, firstDelayMs: 3 * timeoutMs } });
  mocks.backupA.behave({ sse: { events, firstDelayMs: 0.5 * timeoutMs } });
  const res = await request(envoy.port, { body, timeoutMs: 10000 });
  const grew = (await hedgeCounters(envoy)).map((v, i) => v - before[i]);
  return { res, grew };
}

module.exports = { hedgeCounters, raceOneLatePrimary };
