// hiveq dashboard: build-free ES modules on the public HTTP API, kept live by the /events stream.
// Routes: `#task=<id>` (the overview with that task's detail) and `#/jobs/<id>` (a job's page).

import { $, el } from "./dom.js";
import { api, askToken, tokenHooks } from "./api.js";
import { connect, live, reconnect, refresh, register } from "./live.js";
import { filter, loadDetail, loadTasks, page, select, tasks } from "./tasks.js";
import { appendOutput, job, loadJob } from "./job.js";
import { loadLimits } from "./limits.js";
import { deadAndDoctor, loadDeadAndDoctor, loadQueues, loadThroughput, loadWorkers } from "./side.js";
import { loadVanished } from "./vanished.js";
import { loadSchedules } from "./schedules.js";

const OVERVIEW = ["tasks", "detail", "queues", "workers", "limits", "dead", "throughput", "vanished", "schedules"];

register("tasks", loadTasks);
register("detail", loadDetail);
register("queues", loadQueues);
register("workers", loadWorkers);
register("limits", loadLimits);
register("dead", loadDeadAndDoctor);
register("throughput", loadThroughput);
register("job", loadJob);
register("vanished", loadVanished);
register("schedules", loadSchedules);

const onJobPage = () => job.id !== null;
const refreshView = () => (onJobPage() ? refresh("job") : refresh(...OVERVIEW));

function route({ fromLink = false } = {}) {
  const m = /^#\/jobs\/(.+)$/.exec(location.hash);
  $("#overview").hidden = Boolean(m);
  $("#job-page").hidden = !m;
  if (m) {
    job.id = decodeURIComponent(m[1]);
    const pg = $("#job-page");
    delete pg.dataset.jobId;
    pg.replaceChildren(el("p", { class: "muted card", text: `Loading job ${job.id}…` }));
    window.scrollTo(0, 0);
    refresh("job");
    return;
  }
  job.id = null;
  const t = /task=([^&]+)/.exec(location.hash);
  if (t) select(decodeURIComponent(t[1]), { scroll: fromLink }); // back from a job page: show its task
  refresh(...OVERVIEW);
}

// What an event changes, for the view on screen.
live.onEvent = (ev) => {
  if (ev.from === "vanished" || ev.to === "vanished") refresh("vanished"); // the banner, on every page
  if (ev.type === "output") { // streamed text: appended to an open output panel, never a reload
    if (onJobPage()) appendOutput(ev);
    return;
  }
  if (onJobPage()) {
    if (ev.job === job.id) refresh("job");
    return;
  }
  const what = ["tasks", "queues"];
  if (ev.type === "limit" || (ev.type === "job" && (ev.from === "active" || ev.to === "active"))) what.push("limits");
  const sel = tasks.selected;
  if (sel && (ev.task === sel || (ev.job || "").startsWith(`${sel}.`))) what.push("detail");
  if (ev.type === "job" && (ev.to === "succeeded" || ev.to === "dead")) what.push("throughput");
  if (ev.type === "worker" || ev.worker) what.push("workers");
  if (ev.type === "schedule") what.push("schedules");
  // The doctor checks dead letters, workers and anomalies: it is refreshed with the dead letters.
  if (ev.type === "worker" || ev.type === "anomaly" || [ev.from, ev.to].some((s) => s === "dead" || s === "quarantined")) {
    what.push("dead");
  }
  refresh(...what);
};
live.onReconnect = refreshView;
tokenHooks.saved = reconnect;

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

async function runDoctor(button, sample) {
  button.disabled = true;
  try { await deadAndDoctor({ sample, remember: true }); } finally { button.disabled = false; }
}

function init() {
  const prio = $("#submit-priority");
  for (let p = 1; p <= 10; p++) prio.append(el("option", { value: p, selected: p === 5, text: p === 1 ? "1 (most urgent)" : p }));
  $("#submit-form").addEventListener("submit", submitTask);
  $("#tasks-status").addEventListener("change", (e) => filter({ status: e.target.value }));
  let typing = null;
  $("#tasks-search").addEventListener("input", (e) => {
    clearTimeout(typing);
    typing = setTimeout(() => filter({ q: e.target.value.trim() }), 250);
  });
  $("#tasks-prev").addEventListener("click", () => page(-1));
  $("#tasks-next").addEventListener("click", () => page(1));
  $("#doctor-run").addEventListener("click", (e) => runDoctor(e.currentTarget, 0));
  $("#doctor-sample").addEventListener("click", (e) => runDoctor(e.currentTarget, 3));
  $("#token-button").addEventListener("click", () => askToken("API token (kept in this browser):"));
  window.addEventListener("hashchange", () => route({ fromLink: true }));
  loadHealth();
  route();
  connect();
  setInterval(() => { if (!onJobPage()) refresh("throughput"); }, 2000); // the window slides on
  setInterval(() => { if (!onJobPage()) refresh("queues", "workers", "limits", "schedules"); }, 5000); // ages, heartbeats, limits, next runs
}

init();
