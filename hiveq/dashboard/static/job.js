// The job page (#/jobs/<id>): its record with timestamps, input, result, error and the agent's
// tracebacks, its custody history, the plain-words "why", and Retry for a dead letter.

import { $, badge, clockTime, el, pretty, stamp, taskHref, toast } from "./dom.js";
import { api } from "./api.js";
import { refresh } from "./live.js";

export const job = { id: null };
const RETRYABLE = new Set(["dead", "quarantined"]);

export async function loadJob() {
  const id = job.id;
  if (!id) return;
  const page = $("#job-page");
  const path = `/jobs/${encodeURIComponent(id)}`;
  let rec, history, why;
  try {
    [rec, history, why] = await Promise.all([
      api(path),
      api(`${path}/history`),
      api(`${path}/why`).catch((err) => ({ summary: `Why is not available: ${err.message}` })),
    ]);
  } catch (err) {
    if (id !== job.id) return;
    page.replaceChildren(el("section", { class: "card" },
      el("a", { href: "#", class: "back", text: "← Overview" }),
      el("p", { class: "error", id: "job-missing", text: err.message })));
    return;
  }
  if (id !== job.id) return; // the user moved on while this loaded
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
          : null),
      el("p", { class: "why", id: "job-why", text: why.summary }),
      facts(rec)),
    section("Input", "job-input", el("pre", { text: pretty(rec.input ?? null) })),
    rec.result !== null && rec.result !== undefined
      ? section("Result", "job-result", el("pre", { text: pretty(rec.result) })) : null,
    rec.error || rec.reason
      ? section("Error", "job-error", el("pre", { class: "error", text: [rec.error, rec.reason].filter(Boolean).join("\n") }))
      : null,
    tracebacks(rec, first),
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
