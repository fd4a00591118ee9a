// DOM and formatting helpers. Every text goes in with textContent (or as a text node): task
// descriptions, inputs, results, errors and tracebacks are user data, never HTML.

export const $ = (sel) => document.querySelector(sel);

export function el(tag, props = {}, ...kids) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") n.className = v;
    else if (k === "text") n.textContent = String(v);
    else if (k.startsWith("on")) n.addEventListener(k.slice(2), v);
    else n.setAttribute(k, v === true ? "" : String(v));
  }
  n.append(...kids.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false).map(
    (c) => (c instanceof Node ? c : String(c))));
  return n;
}

export function svg(tag, attrs = {}) {
  const n = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v));
  return n;
}

let toastTimer = null;
export function toast(message) {
  const t = $("#toast");
  t.textContent = message;
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.hidden = true; }, 6000);
}

// The server's clock minus this browser's (from GET /throughput's `now_ms`), so "ago" is right
// even when the two clocks disagree.
export const clock = { skewMs: 0 };
export const nowServer = () => Date.now() + clock.skewMs;

export function age(ms) {
  if (ms === null || ms === undefined) return "–";
  const s = Math.max(0, ms / 1000);
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${Math.round(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d`;
}

export function ago(ms) {
  if (ms === null || ms === undefined || ms <= 0) return "–";
  return age(nowServer() - ms) + " ago";
}

// A time before or after now, as people say it: "in 4m 10s" or "3.2s ago".
export function relative(ms) {
  if (!ms) return "–";
  const d = ms - nowServer();
  return d > 0 ? `in ${age(d)}` : `${age(-d)} ago`;
}
export const when = (ms) => (ms ? `${isoTime(ms).replace("T", " ").replace("Z", " UTC")} (${relative(ms)})` : "–");

export const isoTime = (ms) => (ms ? new Date(ms).toISOString() : "");
export const clockTime = (ms) => (ms ? new Date(ms).toLocaleTimeString([], { hour12: false }) : "–");
export const stamp = (ms) => (ms ? `${isoTime(ms).replace("T", " ").replace("Z", " UTC")} (${ago(ms)})` : "–");
export const badge = (value, kind = "s") => el("span", { class: `badge ${kind}-${value}`, text: value });

export function progressOf(t) {
  const p = t.progress;
  if (p && typeof p === "object") {
    const total = p.total ?? 0, done = p.done ?? 0;
    return { done, total, fraction: p.fraction ?? (total ? done / total : 0) };
  }
  const total = t.total ?? 0, done = t.succeeded ?? 0;
  return { done, total, fraction: typeof p === "number" ? p : total ? done / total : 0 };
}

export function bar(fraction, label, status = "") {
  const pct = Math.round(Math.max(0, Math.min(1, fraction || 0)) * 100);
  return el("div", { class: `progress ${status}`, title: `${pct}%` },
    el("div", { class: "track" }, el("div", { class: "fill", style: `width:${pct}%` })),
    label ? el("span", { class: "plabel", text: label }) : null);
}

export function pretty(value, max = 4000) {
  const text = typeof value === "string" ? value : JSON.stringify(value, null, 2);
  return text.length > max ? `${text.slice(0, max)}\n… (${text.length - max} more characters)` : text;
}

export const jobHref = (id) => `#/jobs/${encodeURIComponent(id)}`;
export const taskHref = (id) => `#task=${encodeURIComponent(id)}`;
