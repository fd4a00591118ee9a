// The job page (#/jobs/<id>): its record with timestamps, input, result, error and the agent's
// tracebacks, its custody history, the plain-words "why", and Retry for a dead letter. For a
// durable agent also: what a suspended job waits for (with a form that sends the signal), its
// stored steps, and its streamed output, live.

import { $, badge, clockTime, el, pretty, stamp, taskHref, toast } from "./dom.js";
import { api } from "./api.js";
import { refresh } from "./live.js";
import { recoverButton } from "./vanished.js";

export const job = { id: null };
const RETRYABLE = new Set(["dead", "quarantined"]);

export async function loadJob() {
  const id = job.id;
  if (!id) return;
  const page = $("#job-page");
  const path = `/jobs/${encodeURIComponent(id)}`;
  let rec, history, why, output;
  if (out.jobId !== id) Object.assign(out, { jobId: id, text: "", lastId: "0-0", pre: null });
  out.loading = true;
  out.early = [];
  try {
    [rec, history, why, output] = await Promise.all([
      api(path),
      api(`${path}/history`),
      api(`${path}/why`).catch((err) => ({ summary: `Why is not available: ${err.message}` })),
      api(`${path}/output`).catch(() => null),
    ]);
  } catch (err) {
    out.loading = false;
    if (id !== job.id) return;
    page.replaceChildren(el("section", { class: "card" },
      el("a", { href: "#", class: "back", text: "← Overview" }),
      el("p", { class: "error", id: "job-missing", text: err.message })));
    return;
  }
  out.loading = false;
  if (id !== job.id) return; // the user moved on while this loaded
  if (output) Object.assign(out, { text: output.text, lastId: output.last_event_id });
  for (const ev of out.early.splice(0)) appendOutput(ev); // arrived while the snapshot loaded
  const open = new Set([...page.querySelectorAll("details[open]")].map((d) => d.dataset.key));
  const first = page.dataset.jobId !== rec.id; // a first view opens the newest traceback
  page.dataset.jobId = rec.id;
  page.dataset.state = rec.state;
  page.replaceChildren(...[
    el("section", { class: "card" },
      el("div", { class: "card-head" },
        el("a", { href: taskHref(rec.task_id), class: "back", id: "job-back", text: "← Task" }),
        el("h2", { class: "job-title" }, "Job ", el("code", { text: rec.id })),
        el("div", { class: "spacer" }), badge(rec.state),
        RETRYABLE.has(rec.state)
          ? el("button", { type: "button", id: "job-retry", onclick: (e) => retry(e.currentTarget, rec.id), text: "Retry" })
          : null,
        rec.state === "vanished" ? recoverButton(rec.id) : null),
      el("p", { class: "why", id: "job-why", text: why.summary }),
      facts(rec)),
    section("Input", "job-input", el("pre", { text: pretty(rec.input ?? null) })),
    rec.result !== null && rec.result !== undefined
      ? section("Result", "job-result", el("pre", { text: pretty(rec.result) })) : null,
    rec.error || rec.reason
      ? section("Error", "job-error", el("pre", { class: "error", text: [rec.error, rec.reason].filter(Boolean).join("\n") }))
      : null,
    tracebacks(rec, first),
    waitFor(rec),
    outputPanel(rec),
    steps(history.events),
    section(`Custody history (${history.events.length} events)`, "job-history", historyTable(history.events)),
  ].filter(Boolean));
  for (const d of page.querySelectorAll("details")) if (open.has(d.dataset.key)) d.open = true;
}

function section(title, id, ...body) {
  return el("section", { class: "card", id }, el("h2", { text: title }), ...body);
}

function facts(rec) {
  const rows = [
    ["task", el("a", { href: taskHref(rec.task_id), text: rec.task_id })],
    ["subtask", rec.title ? `${rec.subtask_id} · ${rec.title}` : rec.subtask_id],
    ["agent", rec.agent],
    ["priority", rec.priority],
    ["created", stamp(rec.created_ms)],
    ["started", stamp(rec.started_ms)],
    ["finished", stamp(rec.finished_ms)],
    rec.due_ms ? ["retry due", stamp(rec.due_ms)] : null,
    rec.lease_deadline_ms ? ["lease until", stamp(rec.lease_deadline_ms)] : null,
    ["deliveries", `${rec.attempts} of at most ${rec.max_deliveries}`],
    ["failures", `${rec.failures} of at most ${rec.max_attempts}`],
    ["worker", rec.worker || "–"],
    ["timeout", `${rec.timeout_s} s`],
    rec.depends_on?.length ? ["depends on", rec.depends_on.join(", ")] : null,
    rec.dependents?.length ? ["dependents", rec.dependents.join(", ")] : null,
    typeof rec.progress === "number" ? ["progress", `${Math.round(rec.progress * 100)}% ${rec.progress_message || ""}`] : null,
  ].filter(Boolean);
  return el("dl", { class: "facts" }, rows.map(([k, v]) => [el("dt", { text: k }), el("dd", { "data-field": k }, v)]));
}

function tracebacks(rec, first) {
  const kept = rec.tracebacks || [];
  if (!kept.length) return null;
  const newest = kept.length - 1;
  return section(`Agent tracebacks (last ${kept.length} failed attempts)`, "job-tracebacks",
    kept.map((t, i) => {
      const key = `tb-${t.failure}-${t.ts}`;
      return el("details", { class: "traceback", "data-key": key, "data-attempt": t.attempt, open: first && i === newest },
        el("summary", { text: `attempt ${t.attempt ?? "?"} · failure ${t.failure ?? "?"} · ${stamp(t.ts)} · ${t.worker || "?"}` }),
        el("pre", { text: t.traceback }));
    }));
}

function historyTable(events) {
  return el("div", { class: "table-wrap" }, el("table", { class: "compact history" },
    el("thead", {}, el("tr", {}, ["time", "transition", "attempt", "worker", "host · pid", "Redis client", "reason"].map(
      (h) => el("th", { text: h })))),
    el("tbody", {}, events.map((e) => el("tr", { "data-to": e.to || "", "data-type": e.type },
      el("td", { class: "muted", title: stamp(e.ts), text: clockTime(e.ts) }),
      el("td", {}, e.type === "job" ? [e.from ? badge(e.from) : "new", " → ", badge(e.to || "?")] : e.type),
      el("td", { class: "num", text: e.attempt ?? "" }),
      el("td", {}, e.worker ? el("code", { text: e.worker }) : ""),
      el("td", { text: e.host ? `${e.host} · ${e.pid ?? "?"}` : "" }),
      el("td", {}, e.client ? el("code", { text: e.client }) : ""),
      el("td", { class: "reason", text: e.reason || "" }))))));
}

// ---- durable agents ----------------------------------------------------------------------
// The output panel shows the kept output (GET /jobs/{id}/output, complete up to its
// last_event_id) and then every `output` event of the live stream after that id, once each.
const out = { jobId: null, text: "", lastId: "0-0", pre: null, loading: false, early: [] };
const idParts = (id) => String(id || "0-0").split("-").map(Number);
const after = (a, b) => { const [x, y] = idParts(a), [u, v] = idParts(b); return x > u || (x === u && y > v); };

export function appendOutput(ev) {
  if (ev.job !== out.jobId) return;
  if (out.loading) { out.early.push(ev); return; }
  if (!after(ev.id, out.lastId)) return; // already in the snapshot
  out.lastId = ev.id;
  const text = ev.data?.text ?? "";
  out.text += text;
  if (out.pre) {
    const atBottom = out.pre.scrollTop + out.pre.clientHeight >= out.pre.scrollHeight - 4;
    out.pre.append(text);
    if (atBottom) out.pre.scrollTop = out.pre.scrollHeight;
  }
}

function outputPanel(rec) {
  if (!rec.output_bytes && !["active", "suspended", "waiting"].includes(rec.state)) { out.pre = null; return null; }
  out.pre = el("pre", { class: "output", id: "job-output-text", text: out.text });
  queueMicrotask(() => { if (out.pre) out.pre.scrollTop = out.pre.scrollHeight; });
  return section(`Output (${rec.output_bytes} bytes emitted, live)`, "job-output", out.pre);
}

function steps(events) {
  const done = events.filter((e) => e.type === "step");
  if (!done.length) return null;
  return section(`Steps (${done.length} stored)`, "job-steps", el("div", { class: "table-wrap" },
    el("table", { class: "compact" },
      el("thead", {}, el("tr", {}, ["time", "step", "took", "worker", "attempt"].map((h) => el("th", { text: h })))),
      el("tbody", {}, done.map((e) => el("tr", { "data-step": e.data?.name ?? e.reason },
        el("td", { class: "muted", title: stamp(e.ts), text: clockTime(e.ts) }),
        el("td", {}, el("code", { text: e.data?.name ?? e.reason ?? "" })),
        el("td", { class: "num", text: typeof e.data?.ms === "number" ? `${e.data.ms} ms` : "" }),
        el("td", {}, e.worker ? el("code", { text: e.worker }) : ""),
        el("td", { class: "num", text: e.attempt ?? "" })))))));
}

function waitFor(rec) {
  const w = rec.wait;
  if (rec.state !== "suspended" || !w) return null;
  if (w.kind === "children") {
    return section("Waiting for its children", "job-wait", el("p", {},
      "Suspended (no worker slot held) until these have finished: ",
      w.children.map((c, i) => [i ? ", " : "", el("code", { text: c })])));
  }
  const data = el("textarea", { id: "signal-data", rows: 3, placeholder: "JSON, e.g. {\"approved\": true}" });
  const send = el("button", { type: "button", id: "signal-send", text: `Send signal ${w.name}` });
  send.addEventListener("click", () => sendSignal(send, rec.id, w.name, data.value));
  return section(`Waiting for signal ${w.name}`, "job-wait",
    el("p", { text: `Suspended (no worker slot held)${w.deadline_ms ? `; the wait times out at ${stamp(w.deadline_ms)}` : ""}.` }),
    el("div", { class: "signal-form" }, data, send));
}

async function sendSignal(button, id, name, text) {
  let body = null;
  try { body = text.trim() ? JSON.parse(text) : null; } catch (err) { toast(`the signal's data is not JSON: ${err.message}`); return; }
  button.disabled = true;
  try {
    const res = await api(`/jobs/${encodeURIComponent(id)}/signals/${encodeURIComponent(name)}`, { method: "POST", body });
    toast(res.delivered ? `${id}: signal ${name} delivered, the job resumes` : `${id}: signal ${name} kept (${res.pending})`);
  } catch (err) {
    toast(`signal ${name} failed: ${err.message}`);
    button.disabled = false;
  }
  refresh("job");
}

async function retry(button, id) {
  button.disabled = true;
  try {
    const res = await api(`/dlq/${encodeURIComponent(id)}/retry`, { method: "POST" });
    toast(`${id}: back in the queue (${res.state})`);
  } catch (err) {
    toast(`retry ${id} failed: ${err.message}`);
    button.disabled = false;
  }
  refresh("job");
}
