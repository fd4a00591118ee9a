// The public HTTP API, with an optional bearer token kept in this browser's localStorage.

import { $ } from "./dom.js";

const API = new URL("../", document.baseURI); // the dashboard is served at <api>/dashboard/
export const TOKEN_KEY = "hiveq.token";
export const tokenHooks = { saved: () => {} }; // set by app.js: reconnect a refused event stream

export class ApiError extends Error {
  constructor(status, body) {
    const e = body && typeof body === "object" ? body.error : null;
    super(e ? `${e.message}${e.field ? ` (field: ${e.field})` : ""}` : `HTTP ${status}: ${String(body).slice(0, 200)}`);
    this.status = status;
  }
}

let tokenPrompt = null;
export function askToken(message) {
  tokenPrompt ??= new Promise((resolve) => {
    const dlg = $("#token-dialog");
    $("#token-msg").textContent = message;
    $("#token-input").value = "";
    dlg.addEventListener("close", () => {
      const t = $("#token-input").value.trim();
      const saved = dlg.returnValue === "ok" && t !== "";
      if (saved) localStorage.setItem(TOKEN_KEY, t);
      tokenPrompt = null;
      if (saved) tokenHooks.saved();
      resolve(saved);
    }, { once: true });
    dlg.showModal();
  });
  return tokenPrompt;
}

export function apiUrl(path, params = {}) {
  const u = new URL(path.replace(/^\//, ""), API);
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") u.searchParams.set(k, v);
  return u;
}

export async function api(path, { method = "GET", body, params } = {}) {
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
