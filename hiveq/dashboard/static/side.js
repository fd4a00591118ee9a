// The side cards: throughput (server-side counts), queues, workers, dead letters and the doctor.

import { $, age, ago, badge, clock, clockTime, el, jobHref, svg, toast } from "./dom.js";
import { api } from "./api.js";
import { refresh, throttled } from "./live.js";
import { renderDoctor } from "./doctor.js";

const JOB_STATES = ["waiting", "active", "suspended", "delayed", "blocked", "succeeded", "dead", "quarantined", "cancelled", "vanished"];
const RECENT_S = 5; // the big number: jobs per second over the last 5 s
const DEAD_MIN_MS = 2000; // the doctor reads the whole namespace: at most one live run per 2 s
const armed = new Map(); // job id -> timer of a discard waiting for its confirming click

// ---- throughput: GET /throughput counts finished jobs per bucket in Redis ------------------

const sum = (xs) => xs.reduce((a, b) => a + b, 0);

export async function loadThroughput() {
  const t = await api("/throughput");
  clock.skewMs = t.now_ms - Date.now();
  const ok = sum(t.succeeded), dead = sum(t.dead);
  const perS = t.succeeded.map((n) => n / t.bucket_s);
  const recentN = Math.max(1, Math.round(RECENT_S / t.bucket_s));
  const recent = sum(t.succeeded.slice(-recentN)) / (recentN * t.bucket_s);
  const card = $("#throughput");
  card.dataset.succeeded = ok;
  card.dataset.dead = dead;
  $("#rate-now").textContent = recent.toFixed(1);
  $("#rate-detail").textContent = `${ok + dead} jobs finished in the last ${t.window_s} s: ${ok} succeeded, `
    + `${dead} dead-lettered · peak ${Math.max(...perS).toFixed(1)}/s`;
  $("#rate-source").textContent = `Counted in Redis from each job's finish time (not from events this page saw), at ${clockTime(t.now_ms)}.`;
  const w = 300, h = 48, max = Math.max(1, ...t.succeeded, ...t.dead), n = t.succeeded.length;
  const line = (series) => series.map((v, i) => `${(i * w) / (n - 1)},${h - 2 - (v / max) * (h - 4)}`).join(" ");
  const okLine = line(t.succeeded);
  $("#spark").replaceChildren(
    svg("polygon", { class: "spark-area", points: `0,${h} ${okLine} ${w},${h}` }),
    svg("polyline", { class: "spark-line", points: okLine }),
    dead ? svg("polyline", { class: "spark-line dead", points: line(t.dead) }) : svg("g"));
}

// ---- queues and workers --------------------------------------------------------------------

export async function loadQueues() {
  const data = await api("/queues");
  const counts = data.counts || {};
  $("#counts").replaceChildren(...JOB_STATES.filter((k) => k in counts).map(
    (k) => el("span", { class: `chip s-${k}`, "data-count": k }, el("b", { text: counts[k] }), ` ${k}`)));
  const rows = (data.queues || []).map((q) => el("tr", { "data-agent": q.agent },
    el("td", { text: q.agent }), el("td", { class: "num", text: q.waiting }),
    el("td", {}, Object.entries(q.by_priority || {}).sort((a, b) => a[0] - b[0]).map(
      ([p, n]) => el("span", { class: "chip small", text: `p${p}: ${n}` }))),
    el("td", { class: "muted", text: q.oldest_age_ms === null || q.oldest_age_ms === undefined ? "–" : age(q.oldest_age_ms) })));
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 4, class: "empty", text: "No queues yet." })));
  $("#queues-body").replaceChildren(...rows);
}

export async function loadWorkers() {
  const data = await api("/workers");
  const rows = (data.workers || []).map((w) => {
    const silent = w.last_heartbeat_ms ? Date.now() + clock.skewMs - w.last_heartbeat_ms : null;
    return el("tr", { "data-worker": w.id, class: silent !== null && silent > 10000 ? "stale" : "" },
      el("td", {}, el("code", { text: w.id })),
      el("td", { text: `${w.host} · ${w.pid}` }),
      el("td", { class: "client" }, el("code", { text: w.client || "–", title: "the worker's Redis connection, as CLIENT LIST shows it" })),
      el("td", { text: (w.agents || []).join(", ") }),
      el("td", { class: "num", text: `${w.running}/${w.concurrency}` }),
      el("td", { class: "muted", text: w.last_heartbeat_ms ? ago(w.last_heartbeat_ms) : "–" }));
  });
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 6, class: "empty", text: "No live workers." })));
  $("#workers-body").replaceChildren(...rows);
}

// ---- dead letters and the doctor, always loaded and shown together --------------------------

export const loadDeadAndDoctor = throttled("dead", DEAD_MIN_MS, () => deadAndDoctor());

// `remember`: a run someone asked for (the buttons) is the baseline of the doctor's "since the
// last run"; the live refreshes leave it alone.
export async function deadAndDoctor({ sample = 0, remember = false } = {}) {
  const [dlq, report] = await Promise.all([
    api("/dlq", { params: { limit: 50 } }),
    api("/doctor", { params: { sample: sample || undefined, remember: remember ? undefined : "false" } }).catch((err) => err),
  ]);
  renderDlq(dlq);
  const box = $("#doctor");
  if (report instanceof Error) box.replaceChildren(el("p", { class: "muted", text: `Doctor unavailable: ${report.message}` }));
  else renderDoctor(box, report);
  $("#doctor-at").textContent = `checked ${clockTime(Date.now() + clock.skewMs)}, with the dead letters`;
}

function renderDlq(data) {
  const items = data.items || [];
  $("#dlq-total").textContent = data.total ? String(data.total) : "";
  $("#dlq-total").dataset.total = data.total;
  const cards = items.map((j) => {
    const last = (j.tracebacks || []).at(-1);
    return el("div", { class: `dlq-item st-${j.state}`, "data-job": j.id },
      el("div", { class: "row" }, badge(j.state), el("a", { href: jobHref(j.id), class: "job-link" }, el("code", { text: j.id })),
        el("div", { class: "spacer" }),
        el("button", { type: "button", class: "small", "data-action": "retry", onclick: () => dlqAction(j.id, "retry"), text: "Retry" }),
        el("button", { type: "button", class: "small danger", "data-action": "discard", onclick: (ev) => discard(ev.currentTarget, j.id), text: "Discard" })),
      el("div", { class: "muted small", text: `${j.agent} · attempts ${j.attempts} · failures ${j.failures} · ${ago(j.finished_ms)}` }),
      j.error || j.reason ? el("pre", { class: "error small", text: [j.error, j.reason].filter(Boolean).join("\n") }) : null,
      last ? el("details", { class: "traceback small" },
        el("summary", { class: "muted", text: `traceback of attempt ${last.attempt ?? "?"}` }),
        el("pre", { text: last.traceback })) : null);
  });
  if (data.total > items.length) cards.push(el("p", { class: "muted small", text: `the newest ${items.length} of ${data.total}` }));
  $("#dlq-list").replaceChildren(...(cards.length ? cards : [el("p", { class: "empty", text: "No dead letters. Nothing lost." })]));
}

function discard(button, jobId) {
  if (!armed.has(jobId)) { // two clicks: a discard cannot be undone
    button.textContent = "Confirm discard";
    armed.set(jobId, setTimeout(() => { armed.delete(jobId); button.textContent = "Discard"; }, 4000));
    return;
  }
  clearTimeout(armed.get(jobId));
  armed.delete(jobId);
  dlqAction(jobId, "discard");
}

async function dlqAction(jobId, action) {
  try {
    const res = await api(`/dlq/${encodeURIComponent(jobId)}/${action}`, { method: "POST" });
    toast(`${jobId}: ${action === "retry" ? "back in the queue" : "discarded"} (${res.state})`);
  } catch (err) {
    toast(`${action} ${jobId} failed: ${err.message}`);
  }
  refresh("dead", "queues", "tasks", "detail");
}
