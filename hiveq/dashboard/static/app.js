// hiveq dashboard: one build-free module on the public HTTP API, kept live by the /events stream.
// All text goes in with textContent (descriptions, results and errors are user data, never HTML).

const API = new URL("../", document.baseURI); // the dashboard is served at <api>/dashboard/
const TOKEN_KEY = "hiveq.token";
const WINDOW_S = 60;
const JOB_STATES = ["waiting", "active", "delayed", "blocked", "succeeded", "dead", "quarantined", "cancelled"];
const EVENT_TYPES = ["job", "task", "progress", "worker", "anomaly"];

const ui = {
  selected: null, status: "", skewMs: null, buckets: new Map(), es: null, lastEventId: "",
  pending: new Set(), timer: null, busy: false, dlqArmed: new Map(),
};

const $ = (sel) => document.querySelector(sel);

function el(tag, props = {}, ...kids) {
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

function svg(tag, attrs = {}) {
  const n = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v));
  return n;
}

// ---- HTTP with optional bearer token -------------------------------------------------------

class ApiError extends Error {
  constructor(status, body) {
    const e = body && typeof body === "object" ? body.error : null;
    super(e ? `${e.message}${e.field ? ` (field: ${e.field})` : ""}` : `HTTP ${status}: ${String(body).slice(0, 200)}`);
    this.status = status;
  }
}

let tokenPrompt = null;
function askToken(message) {
  tokenPrompt ??= new Promise((resolve) => {
    const dlg = $("#token-dialog");
    $("#token-msg").textContent = message;
    $("#token-input").value = "";
    dlg.addEventListener("close", () => {
      const t = $("#token-input").value.trim();
      if (dlg.returnValue === "ok" && t) localStorage.setItem(TOKEN_KEY, t);
      tokenPrompt = null;
      if (ui.es && ui.es.readyState === EventSource.CLOSED) reconnect(); // refused before the token
      resolve(dlg.returnValue === "ok" && t !== "");
    }, { once: true });
    dlg.showModal();
  });
  return tokenPrompt;
}

function apiUrl(path, params = {}) {
  const u = new URL(path.replace(/^\//, ""), API);
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") u.searchParams.set(k, v);
  return u;
}

async function api(path, { method = "GET", body, params } = {}) {
  for (;;) {
    const token = localStorage.getItem(TOKEN_KEY);
    const headers = { Accept: "application/json" };
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const res = await fetch(apiUrl(path, params), { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    if (res.status === 401) {
      const msg = token ? "The API refused the saved token. Enter a valid one:" : "This hiveq API needs a token:";
      if (await askToken(msg)) continue;
    }
    const isJson = (res.headers.get("content-type") || "").includes("json");
    const data = isJson ? await res.json() : await res.text();
    if (!res.ok) throw new ApiError(res.status, data);
    return data;
  }
}

let toastTimer = null;
function toast(message) {
  const t = $("#toast");
  t.textContent = message;
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.hidden = true; }, 6000);
}

// ---- formatting ----------------------------------------------------------------------------

const nowServer = () => Date.now() + (ui.skewMs ?? 0);

function ago(ms) {
  if (ms === null || ms === undefined || ms <= 0) return "–";
  return age(nowServer() - ms) + " ago";
}

function age(ms) {
  if (ms === null || ms === undefined) return "–";
  const s = Math.max(0, ms / 1000);
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${Math.round(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d`;
}

const isoTime = (ms) => (ms ? new Date(ms).toISOString() : "");
const badge = (value, kind = "s") => el("span", { class: `badge ${kind}-${value}`, text: value });

function progressOf(t) {
  const p = t.progress;
  if (p && typeof p === "object") {
    const total = p.total ?? 0, done = p.done ?? 0;
    return { done, total, fraction: p.fraction ?? (total ? done / total : 0) };
  }
  const total = t.total ?? 0, done = t.succeeded ?? 0;
  return { done, total, fraction: typeof p === "number" ? p : total ? done / total : 0 };
}

function bar(fraction, label, status = "") {
  const pct = Math.round(Math.max(0, Math.min(1, fraction || 0)) * 100);
  return el("div", { class: `progress ${status}`, title: `${pct}%` },
    el("div", { class: "track" }, el("div", { class: "fill", style: `width:${pct}%` })),
    label ? el("span", { class: "plabel", text: label }) : null);
}

function pretty(value, max = 4000) {
  const text = typeof value === "string" ? value : JSON.stringify(value, null, 2);
  return text.length > max ? `${text.slice(0, max)}\n… (${text.length - max} more characters)` : text;
}

// ---- tasks ---------------------------------------------------------------------------------

async function loadTasks() {
  const data = await api("/tasks", { params: { status: ui.status, limit: 50 } });
  $("#tasks-total").textContent = `${data.total} in namespace`;
  const rows = data.items.map((t) => {
    const p = progressOf(t);
    return el("tr", {
      class: t.id === ui.selected ? "selected" : "", "data-task-id": t.id, "data-status": t.status,
      onclick: () => select(t.id),
    },
    el("td", { class: "desc" }, el("div", { class: "desc-text", text: t.description, title: t.description }),
      el("code", { class: "muted small", text: t.id })),
    el("td", {}, badge(t.status)),
    el("td", {}, bar(p.fraction, `${p.done}/${p.total}`, t.status)),
    el("td", { class: "num", text: t.priority }),
    el("td", { class: "muted", title: isoTime(t.created_ms), text: ago(t.created_ms) }));
  });
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 5, class: "empty", text: "No tasks yet." })));
  $("#tasks-body").replaceChildren(...rows);
}

function select(taskId) {
  ui.selected = taskId;
  history.replaceState(null, "", taskId ? `#task=${encodeURIComponent(taskId)}` : "#");
  for (const tr of document.querySelectorAll("#tasks-body tr")) tr.classList.toggle("selected", tr.dataset.taskId === taskId);
  refresh("detail");
}

async function loadDetail() {
  const pane = $("#detail");
  if (!ui.selected) return;
  let view;
  try {
    view = await api(`/tasks/${encodeURIComponent(ui.selected)}`);
  } catch (err) {
    pane.replaceChildren(el("p", { class: "error", text: err.message }));
    return;
  }
  const open = new Set([...pane.querySelectorAll("details[open]")].map((d) => d.dataset.key));
  const p = progressOf(view);
  pane.dataset.taskId = view.id;
  pane.dataset.status = view.status;
  pane.replaceChildren(...[
    el("div", { class: "card-head" }, el("h2", { class: "detail-title", text: view.description }),
      el("div", { class: "spacer" }), badge(view.status)),
    el("div", { class: "meta" },
      el("code", { text: view.id }), el("span", { text: `priority ${view.priority}` }),
      el("span", { text: `planner ${view.planner}` }),
      el("span", { title: isoTime(view.created_ms), text: `created ${ago(view.created_ms)}` }),
      view.finished_ms ? el("span", { text: `took ${age(view.finished_ms - view.created_ms)}` }) : null),
    bar(p.fraction, `${p.done}/${p.total} subtasks`, view.status),
    view.plan_note ? el("p", { class: "note", text: `Plan note: ${view.plan_note}` }) : null,
    view.error ? el("p", { class: "error", text: `Failed: ${view.error}` }) : null,
    el("h3", { text: "Subtask graph" }),
    dag(view.subtasks || []),
    el("h3", { text: "Subtasks" }),
    el("div", { class: "subtasks" }, (view.subtasks || []).map(subtaskCard)),
    view.result !== null && view.result !== undefined
      ? el("details", { "data-key": "final" }, el("summary", { text: "Final result" }), el("pre", { text: pretty(view.result) }))
      : null,
  ].filter(Boolean));
  for (const d of pane.querySelectorAll("details")) if (open.has(d.dataset.key)) d.open = true;
}

function subtaskCard(s) {
  const outcome = s.error || s.reason
    ? el("pre", { class: "error", text: [s.error, s.reason].filter(Boolean).join("\n") })
    : s.result !== null && s.result !== undefined ? el("pre", { text: pretty(s.result) }) : null;
  return el("details", { class: `subtask st-${s.state}`, id: `sub-${s.id}`, "data-key": s.id },
    el("summary", {}, badge(s.state), el("strong", { text: s.title || s.id }),
      el("span", { class: "muted", text: ` ${s.id} · ${s.agent} · attempts ${s.attempts ?? 0}` }),
      s.worker ? el("span", { class: "muted", text: ` · ${s.worker}` }) : null),
    outcome || el("p", { class: "muted", text: "No result yet." }));
}

// ---- the subtask DAG: layer = longest path from the roots, boxes in rows, SVG arrows ---------

const NODE_W = 210, NODE_H = 96, GAP_X = 24, GAP_Y = 44;

function layers(subtasks) {
  const byId = new Map(subtasks.map((s) => [s.id, s]));
  const memo = new Map();
  const depth = (id, trail) => {
    if (memo.has(id)) return memo.get(id);
    if (trail.has(id)) return 0; // graphs are validated acyclic; this only guards bad data
    trail.add(id);
    const deps = (byId.get(id).depends_on || []).filter((d) => byId.has(d));
    const d = deps.length ? 1 + Math.max(...deps.map((x) => depth(x, trail))) : 0;
    memo.set(id, d);
    return d;
  };
  const rows = [];
  for (const s of subtasks) (rows[depth(s.id, new Set())] ??= []).push(s);
  const pos = new Map();
  rows.forEach((row, i) => {
    const bary = (s) => {
      const ps = (s.depends_on || []).filter((d) => pos.has(d)).map((d) => pos.get(d));
      return ps.length ? ps.reduce((a, b) => a + b, 0) / ps.length : 0;
    };
    if (i > 0) row.sort((a, b) => bary(a) - bary(b)); // stable: keeps plan order on ties
    row.forEach((s, j) => pos.set(s.id, j));
  });
  return rows.filter(Boolean);
}

function dag(subtasks) {
  const rows = layers(subtasks);
  const widest = Math.max(1, ...rows.map((r) => r.length));
  const width = widest * NODE_W + (widest - 1) * GAP_X;
  const height = rows.length * NODE_H + Math.max(0, rows.length - 1) * GAP_Y;
  const box = new Map();
  rows.forEach((row, i) => {
    const rowW = row.length * NODE_W + (row.length - 1) * GAP_X;
    row.forEach((s, j) => box.set(s.id, { x: (width - rowW) / 2 + j * (NODE_W + GAP_X), y: i * (NODE_H + GAP_Y) }));
  });
  const arrows = svg("svg", { class: "edges", width, height, viewBox: `0 0 ${width} ${height}` });
  const defs = svg("defs");
  const marker = svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" });
  marker.append(svg("path", { d: "M0,0 L10,5 L0,10 z", class: "arrowhead" }));
  defs.append(marker);
  arrows.append(defs);
  const nodes = [];
  for (const s of subtasks) {
    const b = box.get(s.id);
    for (const dep of s.depends_on || []) {
      const a = box.get(dep);
      if (!a) continue;
      const x1 = a.x + NODE_W / 2, y1 = a.y + NODE_H, x2 = b.x + NODE_W / 2, y2 = b.y - 2;
      const depState = subtasks.find((t) => t.id === dep)?.state;
      arrows.append(svg("path", {
        class: `edge ${depState === "succeeded" ? "done" : ""}`, "data-from": dep, "data-to": s.id,
        d: `M${x1},${y1} C${x1},${y1 + GAP_Y / 2} ${x2},${y2 - GAP_Y / 2} ${x2},${y2}`, "marker-end": "url(#arrow)",
      }));
    }
    nodes.push(el("div", {
      class: `node st-${s.state}`, "data-subtask": s.id, "data-state": s.state,
      style: `left:${b.x}px;top:${b.y}px;width:${NODE_W}px;height:${NODE_H}px`,
      title: s.error || s.reason || "", onclick: () => { const d = $(`#sub-${CSS.escape(s.id)}`); if (d) { d.open = true; d.scrollIntoView({ block: "nearest" }); } },
    },
    el("div", { class: "node-title", text: s.title || s.id, title: s.title || s.id }),
    el("div", { class: "node-line" }, badge(s.state), el("span", { class: "muted", text: s.agent })),
    el("div", { class: "node-line muted small", text: `${s.worker ? s.worker : "no worker"} · try ${s.attempts ?? 0}` }),
    s.state === "active" && typeof s.progress === "number" ? bar(s.progress, "", "running") : null));
  }
  return el("div", { class: "dag-wrap" }, el("div", { class: "dag", id: "dag", style: `width:${width}px;height:${height}px` }, arrows, nodes));
}

// ---- queues, workers, dead letters, doctor -------------------------------------------------

async function loadQueues() {
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

async function loadWorkers() {
  const data = await api("/workers");
  const rows = (data.workers || []).map((w) => {
    const silent = w.last_heartbeat_ms ? nowServer() - w.last_heartbeat_ms : null;
    return el("tr", { "data-worker": w.id, class: silent !== null && silent > 10000 ? "stale" : "" },
      el("td", {}, el("code", { text: w.id, title: w.client ? `Redis client ${w.client}` : "" })),
      el("td", { text: `${w.host} · ${w.pid}` }),
      el("td", { text: (w.agents || []).join(", ") }),
      el("td", { class: "num", text: `${w.running}/${w.concurrency}` }),
      el("td", { class: "muted", text: w.last_heartbeat_ms ? ago(w.last_heartbeat_ms) : "–" }));
  });
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 5, class: "empty", text: "No live workers." })));
  $("#workers-body").replaceChildren(...rows);
}

async function loadDlq() {
  const data = await api("/dlq", { params: { limit: 50 } });
  const items = data.items || [];
  $("#dlq-total").textContent = items.length ? `${items.length}` : "";
  const cards = items.map((j) => el("div", { class: `dlq-item st-${j.state}`, "data-job": j.id },
    el("div", { class: "row" }, badge(j.state), el("code", { text: j.id }), el("div", { class: "spacer" }),
      el("button", { type: "button", class: "small", "data-action": "retry", onclick: () => dlqAction(j.id, "retry") , text: "Retry" }),
      el("button", { type: "button", class: "small danger", "data-action": "discard", onclick: (ev) => discard(ev.currentTarget, j.id), text: "Discard" })),
    el("div", { class: "muted small", text: `${j.agent} · attempts ${j.attempts} · failures ${j.failures} · ${ago(j.finished_ms)}` }),
    j.error || j.reason ? el("pre", { class: "error small", text: [j.error, j.reason].filter(Boolean).join("\n") }) : null));
  $("#dlq-list").replaceChildren(...(cards.length ? cards : [el("p", { class: "empty", text: "No dead letters. Nothing lost." })]));
}

function discard(button, jobId) {
  if (!ui.dlqArmed.has(jobId)) { // two clicks: a discard cannot be undone
    button.textContent = "Confirm discard";
    ui.dlqArmed.set(jobId, setTimeout(() => { ui.dlqArmed.delete(jobId); button.textContent = "Discard"; }, 4000));
    return;
  }
  clearTimeout(ui.dlqArmed.get(jobId));
  ui.dlqArmed.delete(jobId);
  dlqAction(jobId, "discard");
}

async function dlqAction(jobId, action) {
  try {
    const res = await api(`/dlq/${encodeURIComponent(jobId)}/${action}`, { method: "POST" });
    toast(`${jobId}: ${action === "retry" ? "back in the queue" : "discarded"} (${res.state})`);
  } catch (err) {
    toast(`${action} ${jobId} failed: ${err.message}`);
  }
  refresh("dlq", "queues", "tasks", "detail");
}

async function loadDoctor(sample = 0) {
  const box = $("#doctor");
  let report;
  try {
    report = await api("/doctor", { params: { sample: sample || undefined } });
  } catch (err) {
    box.replaceChildren(el("p", { class: "muted", text: `Doctor unavailable: ${err.message}` }));
    return;
  }
  const checks = [...(report.checks || [])];
  const isConsumers = (c) => /consumer|monitor/i.test(c.name || ""); // who takes from our keys
  const rank = (c) => (isConsumers(c) ? 0 : { fail: 1, warn: 2 }[c.verdict] ?? 3);
  checks.sort((a, b) => rank(a) - rank(b)); // stable: the doctor's order within a rank
  const tally = ["fail", "warn", "ok"].map((v) => [v, checks.filter((c) => c.verdict === v).length]);
  box.replaceChildren(el("div", { class: "chips" }, tally.map(([v, n]) => el("span", { class: `chip v-${v}`, text: `${n} ${v}` }))),
    ...checks.map((c) => {
    const flagged = isConsumers(c) && c.verdict !== "ok";
    return el("div", { class: `check v-${c.verdict} ${isConsumers(c) ? "consumers" : ""} ${flagged ? "foreign" : ""}`, "data-check": c.name },
      el("div", { class: "row" }, badge(c.verdict, "v"), el("strong", { text: c.name })),
      c.summary ? el("div", { text: c.summary }) : null,
      c.verdict === "ok" ? folded(evidence(c.evidence, false)) : evidence(c.evidence, flagged),
      c.fix && c.verdict !== "ok" ? el("div", { class: "fix small", text: `Fix: ${c.fix}` }) : null);
  }));
}

function folded(node) {
  return node ? el("details", { class: "small" }, el("summary", { class: "muted", text: "evidence" }), node) : null;
}

function evidence(ev, flagged) {
  if (ev === null || ev === undefined || (Array.isArray(ev) && !ev.length)) return null;
  if (Array.isArray(ev)) {
    if (ev.every((x) => x && typeof x === "object" && !Array.isArray(x))) return objTable(ev, flagged);
    return el("ul", { class: "evidence" }, ev.map((x) => el("li", { class: flagged ? "foreign-item" : "", text: typeof x === "string" ? x : JSON.stringify(x) })));
  }
  if (typeof ev === "object") {
    const keys = Object.keys(ev);
    if (!keys.length) return null;
    return el("dl", { class: "evidence" }, keys.map((k) => [el("dt", { text: k }),
      el("dd", {}, typeof ev[k] === "object" && ev[k] !== null ? evidence(ev[k], flagged) || "–" : String(ev[k]))]));
  }
  return el("div", { class: "evidence", text: String(ev) });
}

function objTable(rows, flagged) {
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  return el("div", { class: "table-wrap" }, el("table", { class: "compact evidence" },
    el("thead", {}, el("tr", {}, cols.map((c) => el("th", { text: c })))),
    el("tbody", {}, rows.map((r) => el("tr", { class: flagged || r.foreign ? "foreign-item" : "" },
      cols.map((c) => el("td", { text: r[c] === undefined || r[c] === null ? "" : typeof r[c] === "object" ? JSON.stringify(r[c]) : r[c] })))))));
}

// ---- throughput from the event stream ------------------------------------------------------

function countEvent(ev) {
  if (typeof ev.ts !== "number") return;
  const skew = ev.ts - Date.now(); // replayed old events give smaller values, so keep the largest
  ui.skewMs = ui.skewMs === null ? skew : Math.max(ui.skewMs, skew);
  if (ev.type === "job" && ev.to === "succeeded") {
    const sec = Math.floor(ev.ts / 1000);
    ui.buckets.set(sec, (ui.buckets.get(sec) || 0) + 1);
  }
}

function drawThroughput() {
  const end = Math.floor(nowServer() / 1000);
  for (const sec of ui.buckets.keys()) if (sec <= end - WINDOW_S) ui.buckets.delete(sec);
  const series = Array.from({ length: WINDOW_S }, (_, i) => ui.buckets.get(end - WINDOW_S + 1 + i) || 0);
  const total = series.reduce((a, b) => a + b, 0);
  const recent = series.slice(-6, -1).reduce((a, b) => a + b, 0) / 5; // last 5 whole seconds
  const peak = Math.max(...series);
  $("#rate-now").textContent = recent.toFixed(1);
  $("#rate-detail").textContent = `${total} jobs completed in the last minute · avg ${(total / WINDOW_S).toFixed(2)}/s · peak ${peak}/s`;
  const w = 300, h = 48, max = Math.max(1, peak);
  const pts = series.map((v, i) => `${(i * w) / (WINDOW_S - 1)},${h - 2 - (v / max) * (h - 4)}`);
  $("#spark").replaceChildren(
    svg("polygon", { class: "spark-area", points: `0,${h} ${pts.join(" ")} ${w},${h}` }),
    svg("polyline", { class: "spark-line", points: pts.join(" ") }));
}

// ---- live updates --------------------------------------------------------------------------

const LOADERS = { tasks: loadTasks, detail: loadDetail, queues: loadQueues, workers: loadWorkers, dlq: loadDlq, doctor: loadDoctor };

function refresh(...what) {
  for (const w of what) ui.pending.add(w);
  ui.timer ??= setTimeout(flush, 120);
}

async function flush() {
  ui.timer = null;
  if (ui.busy) { ui.timer = setTimeout(flush, 120); return; } // one round at a time keeps answers in order
  ui.busy = true;
  const jobs = [...ui.pending];
  ui.pending.clear();
  try {
    await Promise.all(jobs.map((w) => LOADERS[w]().catch((err) => toast(`${w}: ${err.message}`))));
  } finally {
    ui.busy = false;
  }
}

function onEvent(msg) {
  let ev;
  try { ev = JSON.parse(msg.data); } catch { return; }
  ui.lastEventId = msg.lastEventId || ui.lastEventId;
  countEvent(ev);
  const what = ["tasks", "queues"];
  const inSelected = ui.selected && (ev.task === ui.selected || (ev.job || "").startsWith(`${ui.selected}.`));
  if (inSelected) what.push("detail");
  if (ev.type === "worker" || ev.worker) what.push("workers");
  if ([ev.from, ev.to].some((s) => s === "dead" || s === "quarantined")) what.push("dlq");
  refresh(...what);
}

function setLive(on, text) {
  $("#live").dataset.live = on ? "yes" : "no";
  $("#live-text").textContent = text || (on ? "live" : "reconnecting…");
}

function connect() {
  const token = localStorage.getItem(TOKEN_KEY);
  // A manual reconnect resumes after the last event seen (`after`); the browser's own reconnects
  // send Last-Event-ID by themselves.
  const es = new EventSource(apiUrl("/events", { token, after: ui.lastEventId }));
  ui.es = es;
  es.onmessage = onEvent;
  for (const t of EVENT_TYPES) es.addEventListener(t, onEvent);
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
      if (ui.es === es) { connect(); refresh("tasks", "detail", "queues", "workers", "dlq"); }
    }, 3000);
  };
}

function reconnect() {
  if (ui.es) ui.es.close();
  ui.es = null;
  connect();
  refresh(...Object.keys(LOADERS));
}

// ---- wiring --------------------------------------------------------------------------------

async function submitTask(ev) {
  ev.preventDefault();
  const msg = $("#submit-msg");
  const body = { description: $("#submit-description").value, priority: Number($("#submit-priority").value) };
  if ($("#submit-planner").value) body.planner = $("#submit-planner").value;
  $("#submit-button").disabled = true;
  try {
    const res = await api("/tasks", { method: "POST", body });
    msg.className = "form-msg ok";
    msg.textContent = `Task ${res.task_id} ${res.duplicate ? "already existed" : "queued"} with ${res.plan?.subtasks?.length ?? 0} subtasks (planner ${res.plan?.planner}).`;
    $("#submit-description").value = "";
    select(res.task_id);
    refresh("tasks", "queues");
  } catch (err) {
    msg.className = "form-msg error";
    msg.textContent = err.message;
  } finally {
    $("#submit-button").disabled = false;
  }
}

async function loadHealth() {
  try {
    const h = await api("/health");
    $("#namespace").textContent = h.namespace ? `namespace ${h.namespace}` : "";
  } catch (err) {
    $("#namespace").textContent = `API: ${err.message}`;
  }
}

function init() {
  const prio = $("#submit-priority");
  for (let p = 1; p <= 10; p++) prio.append(el("option", { value: p, selected: p === 5, text: p === 1 ? "1 (most urgent)" : p }));
  $("#submit-form").addEventListener("submit", submitTask);
  $("#tasks-status").addEventListener("change", (e) => { ui.status = e.target.value; refresh("tasks"); });
  $("#doctor-run").addEventListener("click", () => refresh("doctor"));
  $("#doctor-sample").addEventListener("click", async (e) => {
    e.currentTarget.disabled = true;
    try { await loadDoctor(3); } finally { $("#doctor-sample").disabled = false; }
  });
  $("#token-button").addEventListener("click", async () => {
    if (await askToken("API token (kept in this browser):") && ui.es?.readyState !== EventSource.CLOSED) reconnect();
  });
  const m = /task=([^&]+)/.exec(location.hash);
  ui.selected = m ? decodeURIComponent(m[1]) : null;
  loadHealth();
  refresh(...Object.keys(LOADERS));
  connect();
  setInterval(drawThroughput, 1000);
  setInterval(() => refresh("queues", "workers"), 5000); // ages and heartbeats move without events
  setInterval(() => refresh("doctor"), 30000);
  drawThroughput();
}

init();
