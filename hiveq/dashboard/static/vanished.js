// Jobs that vanished (left hiveq's places without a hiveq step): a banner on top names each one
// with the key it left and the suspected culprit, and a Recover button puts it back
// (POST /jobs/{id}/recover). The same button sits on a vanished subtask and on its job page.

import { $, el, toast } from "./dom.js";
import { api } from "./api.js";
import { refresh } from "./live.js";

async function recover(jobId, button) {
  if (button) button.disabled = true;
  try {
    const res = await api(`/jobs/${encodeURIComponent(jobId)}/recover`, { method: "POST" });
    toast(`${jobId}: recovered (${res.state})`);
  } catch (err) {
    toast(`recover ${jobId} failed: ${err.message}`);
    if (button) button.disabled = false;
  }
  refresh("vanished", "tasks", "detail", "queues", "dead", "job");
}

export function recoverButton(jobId) {
  return el("button", {
    type: "button", class: "small danger recover", "data-action": "recover", "data-job": jobId,
    text: "Recover", title: "Put it back where it belongs (one delivery is counted)",
    onclick: (ev) => { ev.preventDefault(); ev.stopPropagation(); recover(jobId, ev.currentTarget); },
  });
}

export async function loadVanished() {
  const banner = $("#vanished-banner");
  const data = await api("/vanished", { params: { limit: 20 } });
  const items = data.items || [];
  banner.hidden = items.length === 0;
  if (!items.length) { banner.replaceChildren(); return; }
  banner.replaceChildren(
    el("div", { class: "row" },
      el("strong", { text: `⚠ ${data.total} job${data.total === 1 ? "" : "s"} vanished` }),
      el("span", { text: "— taken out of hiveq's keys without a hiveq step; their tasks cannot finish until recovered." }),
      el("div", { class: "spacer" }),
      el("button", { type: "button", class: "small", "data-action": "recover-all", text: "Recover all",
        onclick: async (ev) => { ev.currentTarget.disabled = true; for (const p of items) await recover(p.job_id); } })),
    el("ul", {}, items.map((p) => el("li", { "data-job": p.job_id },
      el("code", { text: p.job_id }), " from ", el("code", { text: p.key || "?" }),
      el("span", { class: "suspect", text: ` · suspect: ${p.suspect || "unknown"}` }), " ", recoverButton(p.job_id)))));
}
