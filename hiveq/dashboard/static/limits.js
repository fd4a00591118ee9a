// The limits card (docs/limits.md): each rule with the live usage of every key under it — jobs
// in use of the limit and who holds them, starts in the rate window, tokens this minute, budget
// spent, how often a job was passed over, and a 429 cool-down.

import { $, el, jobHref } from "./dom.js";
import { api } from "./api.js";

function ruleText(r) {
  const parts = [];
  if (r.concurrency != null) parts.push(`concurrency ${r.concurrency}`);
  if (r.rate != null) parts.push(`rate ${r.rate}`);
  if (r.tokens != null) parts.push(`${Number(r.tokens).toLocaleString()} tokens/min`);
  if (r.budget_tokens != null) parts.push(`budget ${Number(r.budget_tokens).toLocaleString()} tokens`);
  if (r.budget_usd != null) parts.push(`budget ${r.budget_usd} USD`);
  return parts.join(" · ");
}

export async function loadLimits() {
  const views = await api("/limits");
  const rows = [];
  for (const v of views) {
    const usage = v.usage.length ? v.usage : [null];
    usage.forEach((u, i) => {
      const inUse = u ? (v.rule.concurrency != null ? `${u.in_use}/${v.rule.concurrency}` : String(u.in_use)) : "0";
      const full = u && v.rule.concurrency != null && u.in_use >= v.rule.concurrency;
      rows.push(el("tr", { "data-limit": u ? u.key : v.key, class: full || (u && u.cooling_until_ms) ? "held" : "" },
        el("td", {}, i === 0 ? el("code", { text: v.key }) : null, i === 0 ? el("div", { class: "muted small", text: ruleText(v.rule) }) : null),
        el("td", {}, u ? el("code", { text: u.key }) : "–", u && u.cooling_until_ms ? el("span", { class: "chip small s-dead", text: "cooling" }) : null),
        el("td", { class: "num", "data-in-use": u ? u.in_use : 0, text: inUse }),
        el("td", {}, u ? u.holders.slice(0, 3).map((id) => el("a", { href: jobHref(id), class: "job-link" }, el("code", { text: id.split(".").pop() }))) : null),
        el("td", { class: "small", text: u ? `${u.starts_in_window} starts · ${u.tokens_this_minute.toLocaleString()} tok/min · spent ${u.budget_tokens_used.toLocaleString()} tok` : "" }),
        el("td", { class: "num", text: u ? u.throttled_total : 0 })));
    });
  }
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 6, class: "empty", text: "No limit rules (hiveq limits set KEY --concurrency N)." })));
  $("#limits-body").replaceChildren(...rows);
}
