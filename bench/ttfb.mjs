// Streaming time to first byte: sequential stream:true requests on one kept-alive connection,
// timed from sending the request to the first body byte, straight to the upstream, through plain
// Envoy and through the filter (firstPacketTimeout on, so 2xx headers wait for the first chunk).
import http from "node:http";
import { STREAM_PATH } from "./fleet.mjs";
import { chatBody, f, header, note, nowMs, summary, table } from "./stats.mjs";

function firstByte(agent, port, payload, timeoutMs = 10000) {
  return new Promise((resolve) => {
    const start = nowMs();
    let first = NaN;
    const req = http.request(
      { agent, host: "127.0.0.1", port, method: "POST", path: STREAM_PATH,
        headers: { "content-type": "application/json", "content-length": String(payload.length) } },
      (res) => {
        res.on("data", () => {
          if (Number.isNaN(first)) first = nowMs() - start;
        });
        res.on("end", () => resolve({ status: res.statusCode, ms: first }));
        res.on("error", () => resolve({ status: 0, ms: NaN }));
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy());
    req.on("error", () => resolve({ status: 0, ms: NaN }));
    req.end(payload);
  });
}

export async function benchTtfb({ targets, n }) {
  header(`Streaming time to first byte: ${n} sequential stream:true requests per target, one kept-alive connection`);
  const payload = chatBody(1024, { stream: true });
  const series = targets.map((t) => ({ ...t, agent: new http.Agent({ keepAlive: true, maxSockets: 1 }), ms: [], bad: 0 }));
  try {
    for (const t of series) for (let i = 0; i < 50; i++) await firstByte(t.agent, t.port, payload); // warm-up
    // Interleaved in blocks of 25 so that drift in machine load hits every target alike.
    for (let done = 0; done < n; done += 25) {
      for (const t of series) {
        for (let i = 0; i < 25 && done + i < n; i++) {
          const r = await firstByte(t.agent, t.port, payload);
          if (r.status === 200 && Number.isFinite(r.ms)) t.ms.push(r.ms);
          else t.bad++;
        }
      }
    }
  } finally {
    for (const t of series) t.agent.destroy();
  }
  const base = summary(series[0].ms);
  const rows = series.map((t) => {
    const s = summary(t.ms);
    return [t.name, `${s.n}${t.bad ? ` (+${t.bad} bad)` : ""}`, f(s.p50, 3), f(s.p99, 3), f(s.p50 - base.p50, 3)];
  });
  const markdown = table(["target", "n", "p50 ms", "p99 ms", `p50 - ${series[0].name}`], rows);
  note("The upstream's SSE answer is one chunk (direct_response), so first byte = headers + the first event.");
  return { markdown, series: series.map((t) => ({ name: t.name, ...summary(t.ms) })) };
}
