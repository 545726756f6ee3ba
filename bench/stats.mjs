// Small helpers shared by the benchmark sections: percentiles, medians with their spread, tables.

export const nowMs = () => Number(process.hrtime.bigint()) / 1e6;
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function pct(sorted, p) {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

export function summary(values) {
  const s = [...values].sort((a, b) => a - b);
  const sum = s.reduce((a, b) => a + b, 0);
  return { n: s.length, min: s[0], p50: pct(s, 50), p95: pct(s, 95), p99: pct(s, 99), max: s[s.length - 1], mean: sum / (s.length || 1), sum };
}

/** Median of a list (the mean of the middle two for an even count). */
export function median(values) {
  const s = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** "median (min-max)" of repeated measurements. */
export function spread(values, digits) {
  const v = values.filter(Number.isFinite);
  if (v.length === 0) return "-";
  const m = f(median(v), digits);
  return v.length === 1 ? m : `${m} (${f(Math.min(...v), digits)}-${f(Math.max(...v), digits)})`;
}

export const f = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : "-");
export const bytes = (n) => (n >= 1048576 ? `${(n / 1048576).toFixed(2)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`);

/** Prints an aligned table (first column left, others right unless `align` says otherwise); returns it as markdown too. */
export function table(headers, rows, align) {
  const cells = [headers, ...rows].map((r) => r.map(String));
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  const side = (i) => (align ? align[i] : i === 0 ? "l" : "r");
  const line = (r) => "  " + r.map((c, i) => (side(i) === "l" ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  console.log(line(cells[0]));
  console.log("  " + widths.map((w) => "-".repeat(w)).join("  "));
  for (const r of cells.slice(1)) console.log(line(r));
  const md = (r) => `| ${r.map((c) => c.replace(/\|/g, "\\|")).join(" | ")} |`;
  return [md(cells[0]), `|${headers.map((_, i) => (side(i) === "l" ? " --- " : " ---: ")).join("|")}|`, ...cells.slice(1).map(md)].join("\n");
}

export function header(title) {
  console.log(`\n== ${title} ${"=".repeat(Math.max(0, 96 - title.length))}`);
}

export const note = (s) => console.log(`  ${s}`);

/** A chat request of exactly `targetBytes` bytes (unless tiny): model first, a long user message with escapes and non-ASCII text. */
export function chatBody(targetBytes, { stream = false } = {}) {
  const base = { model: "gpt-4o", messages: [{ role: "system", content: "You are a helpful assistant." }, { role: "user", content: "" }], temperature: 0.7, stream };
  const filler = 'Tell me about "proxies", Envoy filters and fallbacks, s\u2019il vous pla\u00eet. ';
  const emptyLen = Buffer.byteLength(JSON.stringify(base));
  const unit = Buffer.byteLength(JSON.stringify(filler)) - 2;
  const reps = Math.max(0, Math.floor((targetBytes - emptyLen) / unit));
  base.messages[1].content = filler.repeat(reps);
  const len = Buffer.byteLength(JSON.stringify(base));
  if (len < targetBytes) base.messages[1].content += " ".repeat(targetBytes - len);
  return Buffer.from(JSON.stringify(base));
}
