// Keeping the views live: named loaders refreshed in coalesced rounds, and the /events stream.

import { $, toast } from "./dom.js";
import { api, apiUrl, TOKEN_KEY } from "./api.js";

const EVENT_TYPES = ["job", "task", "progress", "worker", "anomaly", "step", "signal", "output", "schedule"];
const LOADERS = new Map();
const pending = new Set();
let timer = null;
let busy = false;

export const live = { es: null, lastEventId: "", onEvent: () => {}, onReconnect: () => {} };

export function register(name, loader) {
  LOADERS.set(name, loader);
}

// Ask for views to be reloaded; requests within 120 ms are served by one round.
export function refresh(...what) {
  for (const w of what) if (LOADERS.has(w)) pending.add(w);
  timer ??= setTimeout(flush, 120);
}

async function flush() {
  timer = null;
  if (busy) { timer = setTimeout(flush, 120); return; } // one round at a time keeps answers in order
  busy = true;
  const names = [...pending];
  pending.clear();
  try {
    await Promise.all(names.map((w) => LOADERS.get(w)().catch((err) => toast(`${w}: ${err.message}`))));
  } finally {
    busy = false;
  }
}

// Run `fn` at most once per `minMs`; a call inside that time reruns loader `name` when it ends,
// so the last change is always shown.
export function throttled(name, minMs, fn) {
  let last = 0;
  let later = null;
  return async () => {
    const wait = last + minMs - Date.now();
    if (wait > 0) {
      later ??= setTimeout(() => { later = null; refresh(name); }, wait);
      return;
    }
    last = Date.now();
    await fn();
  };
}

function handle(msg) {
  let ev;
  try { ev = JSON.parse(msg.data); } catch { return; }
  live.lastEventId = msg.lastEventId || live.lastEventId;
  $("#live").dataset.lastEvent = live.lastEventId;
  live.onEvent(ev);
}

function setLive(on, text) {
  $("#live").dataset.live = on ? "yes" : "no";
  $("#live-text").textContent = text || (on ? "live" : "reconnecting…");
}

export function connect() {
  const token = localStorage.getItem(TOKEN_KEY);
  // A manual reconnect resumes after the last event seen (`after`); the browser's own reconnects
  // send Last-Event-ID by themselves.
  const es = new EventSource(apiUrl("/events", { token, after: live.lastEventId }));
  live.es = es;
  es.onmessage = handle;
  for (const t of EVENT_TYPES) es.addEventListener(t, handle);
  es.onopen = () => setLive(true);
  es.onerror = (e) => {
    if (e.data) { // an in-band error from the API ({"message": …}); the browser retries by itself
      let text = e.data;
      try { text = JSON.parse(e.data).message ?? text; } catch { /* show it as sent */ }
      toast(`event stream: ${text}`);
    }
    // The browser reconnects by itself and sends Last-Event-ID; only a refused stream closes for good.
    if (es.readyState !== EventSource.CLOSED) { setLive(false); return; }
    setLive(false, "disconnected");
    setTimeout(async () => {
      try { await api("/workers"); } catch { /* asks for a token on 401; anything else: retry below */ }
      if (live.es === es) { connect(); live.onReconnect(); }
    }, 3000);
  };
}

export function reconnect() {
  if (live.es) live.es.close();
  live.es = null;
  connect();
  live.onReconnect();
}

export const streamClosed = () => !live.es || live.es.readyState === EventSource.CLOSED;
