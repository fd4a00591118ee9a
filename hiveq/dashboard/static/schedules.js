// The Schedules card: every recurring schedule with its next run (GET /schedules), refreshed on
// `schedule` events (added, replaced, removed, fired) and every 5 s (the "in 4m" counts down).

import { $, el, isoTime, relative, taskHref } from "./dom.js";
import { api } from "./api.js";

export async function loadSchedules() {
  const data = await api("/schedules");
  const items = data.items || [];
  $("#schedules-total").textContent = items.length ? `${items.length}` : "";
  const rows = items.map((s) => el("tr", { "data-schedule": s.name },
    el("td", {}, el("b", { text: s.name })),
    el("td", {}, el("code", { text: s.cron }), el("span", { class: "muted small", text: ` ${s.tz}` })),
    el("td", { class: "next-run", title: s.next_run || "", text: s.next_run_ms ? relative(s.next_run_ms) : "–" }),
    el("td", { class: "last-fired", title: s.last_fired_ms ? isoTime(s.last_fired_ms) : "" },
      s.last_fired_ms ? relative(s.last_fired_ms) : "never",
      s.last_error ? el("span", { class: "error small", title: s.last_error, text: " (no task)" }) : null),
    el("td", {}, s.last_task_id ? el("a", { href: taskHref(s.last_task_id), text: s.last_task_id }) : "–")));
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 5, class: "empty", text: "No schedules. Add one with hiveq schedules add or PUT /schedules/{name}." })));
  $("#schedules-body").replaceChildren(...rows);
}
