// Runs: the caller's responses, newest first (GET /v1/responses), and a form to start one.

import { api } from "../api.js";
import { h, replace, badge, usd, duration, when, errorBox } from "../dom.js";

const ACTIVE = new Set(["queued", "in_progress"]);

export function runDuration(r, now = Date.now() / 1000) {
  const end = ACTIVE.has(r.status) ? now : r.updated_at;
  return end ? end - r.created_at : null;
}

function row(r) {
  const cost = r.usage && r.usage.cost;
  const paused = r.status === "incomplete" && r.incomplete_details && r.incomplete_details.reason === "approval_required";
  return h("tr", { dataset: { id: r.id } },
    h("td", {}, badge(paused ? "paused" : r.status)),
    h("td", {}, h("a", { href: `#/runs/${encodeURIComponent(r.id)}` }, r.input_preview || r.id),
      h("div", { class: "muted hide-narrow" }, h("code", {}, r.id))),
    h("td", { class: "hide-narrow" }, when(r.created_at)),
    h("td", { class: "num" }, duration(runDuration(r))),
    h("td", { class: "num", title: "the session's spend up to this response" }, cost ? usd(cost.total_usd) : "–"),
    h("td", { class: "hide-narrow" }, r.model),
    h("td", { class: "hide-narrow", title: r.session_id }, h("code", {}, r.session_id.slice(0, 13)), r.previous_response_id ? " (continued)" : ""));
}

export async function show(main) {
  const list = h("tbody");
  const more = h("button", { class: "secondary", type: "button", hidden: true }, "Load older runs");
  const status = h("div", { role: "status" });
  let after = null;

  async function load() {
    more.disabled = true;
    try {
      const page = await api(`/v1/responses?limit=25${after ? `&after=${encodeURIComponent(after)}` : ""}`);
      for (const r of page.data) list.append(row(r));
      after = page.last_id;
      more.hidden = !page.has_more;
      if (!list.children.length) replace(status, h("p", { class: "muted" }, "No runs yet: start one above."));
    } catch (err) {
      replace(status, errorBox(err));
    } finally {
      more.disabled = false;
    }
  }
  more.addEventListener("click", load);

  const task = h("textarea", { id: "task", required: true, maxlength: 100000, placeholder: "e.g. Fine-tune a small model on my dataset and report the accuracy" });
  const model = h("select", { id: "model" }, h("option", { value: "" }, "default"));
  const cap = h("input", { id: "cap", type: "number", min: "0.01", max: "500", step: "0.01", value: "5" });
  const formStatus = h("div", { role: "alert" });
  const form = h("form", { class: "panel", onsubmit: async (e) => {
    e.preventDefault();
    const body = { input: task.value, background: true, max_cost_usd: Number(cap.value) };
    if (model.value) body.model = model.value;
    try {
      const r = await api("/v1/responses", { method: "POST", body });
      location.hash = `#/runs/${encodeURIComponent(r.id)}`;
    } catch (err) {
      replace(formStatus, errorBox(err));
    }
  } },
  h("h2", {}, "New run"),
  h("label", { for: "task" }, "Task"), task,
  h("div", { class: "row" },
    h("div", {}, h("label", { for: "model" }, "Model"), model),
    h("div", {}, h("label", { for: "cap" }, "Budget cap (USD)"), cap),
    h("div", {}, h("button", { type: "submit" }, "Start run"))),
  formStatus);

  replace(main, h("h1", {}, "Runs"), form,
    h("h2", {}, "My runs"),
    h("div", { class: "table-wrap" }, h("table", {},
      h("thead", {}, h("tr", {}, h("th", {}, "Status"), h("th", {}, "Task"), h("th", { class: "hide-narrow" }, "Started"),
        h("th", { class: "num" }, "Duration"), h("th", { class: "num" }, "Cost"), h("th", { class: "hide-narrow" }, "Model"),
        h("th", { class: "hide-narrow" }, "Session"))),
      list)),
    status, more);
  api("/api/config/model").then((cfg) => {
    for (const m of (cfg && (cfg.available || cfg.models)) || []) {
      const id = typeof m === "string" ? m : m.id;
      if (id) model.append(h("option", { value: id }, m.label || id));
    }
  }).catch(() => {});
  await load();
}
