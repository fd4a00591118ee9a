// The task list (search, status filter, pager) and the selected task's detail with its DAG.

import { $, ago, age, badge, bar, el, isoTime, jobHref, pretty, progressOf, svg, when } from "./dom.js";
import { api } from "./api.js";
import { refresh } from "./live.js";
import { recoverButton } from "./vanished.js";

export const PAGE_SIZE = 25;
export const tasks = { selected: null, status: "", q: "", offset: 0, scrollToDetail: false };

export async function loadTasks() {
  const { status, q, offset } = tasks;
  const data = await api("/tasks", { params: { status, q, offset, limit: PAGE_SIZE } });
  if (status !== tasks.status || q !== tasks.q || offset !== tasks.offset) return; // a newer ask is on its way
  if (!data.items.length && offset > 0 && data.total > 0) { // the page emptied under us: show the last one
    tasks.offset = Math.floor((data.total - 1) / PAGE_SIZE) * PAGE_SIZE;
    refresh("tasks");
    return;
  }
  const rows = data.items.map((t) => {
    const p = progressOf(t);
    return el("tr", {
      class: t.id === tasks.selected ? "selected" : "", "data-task-id": t.id, "data-status": t.status,
      onclick: () => select(t.id, { scroll: true }),
    },
    el("td", { class: "desc" }, el("div", { class: "desc-text", text: t.description, title: t.description }),
      el("code", { class: "muted small", text: t.id })),
    el("td", {}, badge(t.status), t.stalled ? badge("stalled") : null),
    el("td", {}, bar(p.fraction, `${p.done}/${p.total}`, t.status)),
    el("td", { class: "num", text: t.priority }),
    el("td", { class: "muted", title: isoTime(t.created_ms), text: ago(t.created_ms) }));
  });
  const filtered = Boolean(status || q);
  if (!rows.length) {
    rows.push(el("tr", {}, el("td", { colspan: 5, class: "empty", text: filtered ? "No task matches." : "No tasks yet." })));
  }
  $("#tasks-body").replaceChildren(...rows);
  const last = offset + data.items.length;
  const total = data.total_exact === false ? `at least ${data.total}` : `${data.total}`;
  $("#tasks-range").textContent = data.items.length ? `${offset + 1}–${last} of ${total}` : "";
  $("#tasks-total").textContent = filtered ? `${total} matching` : `${total} in namespace`;
  $("#tasks-total").title = data.total_exact === false
    ? "the search read only the newest tasks (its bound); older ones may match too" : "";
  $("#tasks-prev").disabled = offset === 0;
  $("#tasks-next").disabled = last >= data.total;
}

export function page(delta) {
  tasks.offset = Math.max(0, tasks.offset + delta * PAGE_SIZE);
  refresh("tasks");
}

export function filter(changes) {
  Object.assign(tasks, changes, { offset: 0 });
  refresh("tasks");
}

// Select a task; `scroll` brings its detail into view (a click in the list, a link to it).
export function select(taskId, { scroll = false } = {}) {
  tasks.selected = taskId;
  history.replaceState(null, "", taskId ? `#task=${encodeURIComponent(taskId)}` : "#");
  for (const tr of document.querySelectorAll("#tasks-body tr")) tr.classList.toggle("selected", tr.dataset.taskId === taskId);
  if (scroll) {
    tasks.scrollToDetail = true;
    $("#detail").scrollIntoView({ block: "start" }); // at once; again when the detail has loaded
  }
  refresh("detail");
}

export async function loadDetail() {
  const pane = $("#detail");
  const id = tasks.selected;
  if (!id) return;
  let view;
  try {
    view = await api(`/tasks/${encodeURIComponent(id)}`);
  } catch (err) {
    pane.replaceChildren(el("p", { class: "error", text: err.message }));
    return;
  }
  if (id !== tasks.selected) return;
  const open = new Set([...pane.querySelectorAll("details[open]")].map((d) => d.dataset.key));
  const p = progressOf(view);
  pane.dataset.taskId = view.id;
  pane.dataset.status = view.status;
  pane.replaceChildren(...[
    el("div", { class: "card-head" }, el("h2", { class: "detail-title", text: view.description }),
      el("div", { class: "spacer" }), badge(view.status),
      el("button", { type: "button", class: "ghost small", id: "detail-up", text: "↑ Tasks",
        onclick: () => $("#tasks-card").scrollIntoView({ block: "start" }) })),
    el("div", { class: "meta" },
      el("code", { text: view.id }), el("span", { text: `priority ${view.priority}` }),
      el("span", { text: `planner ${view.planner}` }),
      el("span", { title: isoTime(view.created_ms), text: `created ${ago(view.created_ms)}` }),
      view.finished_ms ? el("span", { text: `took ${age(view.finished_ms - view.created_ms)}` }) : null,
      view.run_at_ms ? el("span", { class: "run-at", title: isoTime(view.run_at_ms), text: `starts ${when(view.run_at_ms)}` }) : null,
      view.schedule ? el("span", { class: "fired-by", text: `fired by schedule ${view.schedule} (${view.metadata?.schedule_tick ?? "?"})` }) : null),
    bar(p.fraction, `${p.done}/${p.total} subtasks`, view.status),
    view.plan_note ? el("p", { class: "note", text: `Plan note: ${view.plan_note}` }) : null,
    view.error ? el("p", { class: "error", text: `Failed: ${view.error}` }) : null,
    ...(view.problems || []).map((pr) => el("p", { class: "error problem", "data-job": pr.job_id },
      `${pr.subtask_id}: ${pr.message} `, recoverButton(pr.job_id))),
    el("h3", { text: "Subtask graph" }),
    dag(view.subtasks || []),
    el("h3", { text: "Subtasks" }),
    el("div", { class: "subtasks" }, (view.subtasks || []).map(subtaskCard)),
    view.result !== null && view.result !== undefined
      ? el("details", { "data-key": "final" }, el("summary", { text: "Final result" }), el("pre", { text: pretty(view.result) }))
      : null,
  ].filter(Boolean));
  for (const d of pane.querySelectorAll("details")) if (open.has(d.dataset.key)) d.open = true;
  if (tasks.scrollToDetail) {
    tasks.scrollToDetail = false;
    pane.scrollIntoView({ block: "start" });
  }
}

function subtaskCard(s) {
  const outcome = s.error || s.reason
    ? el("pre", { class: "error", text: [s.error, s.reason].filter(Boolean).join("\n") })
    : s.result !== null && s.result !== undefined ? el("pre", { text: pretty(s.result) }) : null;
  return el("details", { class: `subtask st-${s.state}`, id: `sub-${s.id}`, "data-key": s.id },
    el("summary", {}, badge(s.state), s.state === "vanished" ? recoverButton(s.job_id) : null, el("strong", { text: s.title || s.id }),
      el("span", { class: "muted", text: ` ${s.id} · ${s.agent} · attempts ${s.attempts ?? 0}` }),
      s.worker ? el("span", { class: "muted", text: ` · ${s.worker}` }) : null),
    outcome || el("p", { class: "muted", text: "No result yet." }),
    el("a", { class: "job-link small", href: jobHref(s.job_id), "data-job": s.job_id,
      text: "Job page: timestamps, input, tracebacks, custody history →" }));
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

