// Rendering the doctor's report: consumers of our keys first (foreign ones flagged red), then
// failures, warnings and passes, each with its evidence and fix.

import { badge, el } from "./dom.js";

export function renderDoctor(box, report) {
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
      c.summary ? el("div", { class: "summary", text: c.summary }) : null,
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
