// Usage: spend by day and by kind (inference / jobs / sandboxes), from the caller's
// responses, and model-call totals by model from /api/v1/usage.
//
// Each response's usage.cost is the session's spend up to the end of that response, so a
// response's own spend is its total minus the previous response's in the same session.

import { api } from "../api.js";
import { h, replace, usd, errorBox } from "../dom.js";
import { hbar, stacked, legend, COLOURS } from "../charts.js";

const KINDS = [["inference_usd", "inference"], ["jobs_usd", "jobs"], ["sandboxes_usd", "sandboxes"], ["other_usd", "other"]];
const MAX_PAGES = 20; // 2,000 responses: the chart says when it stops there

export function spendPerResponse(responses) {
  const rows = [];
  const bySession = new Map();
  for (const r of [...responses].sort((a, b) => a.created_at - b.created_at || (a.id < b.id ? -1 : 1))) {
    const cost = r.usage && r.usage.cost;
    if (!cost) continue;
    const prev = bySession.get(r.session_id) || { inference_usd: 0, jobs_usd: 0, sandboxes_usd: 0, other_usd: 0 };
    const own = { day: new Date(r.created_at * 1000).toISOString().slice(0, 10), model: r.model };
    for (const [k] of KINDS) own[k] = Math.max(0, (cost[k] || 0) - (prev[k] || 0));
    bySession.set(r.session_id, cost);
    own.total = KINDS.reduce((a, [k]) => a + own[k], 0);
    own.id = r.id;
    rows.push(own);
  }
  return rows;
}

export async function show(main) {
  replace(main, h("h1", {}, "Usage"), h("p", { class: "muted" }, "Loading…"));
  const responses = [];
  let after = null, truncated = false;
  for (let page = 0; page < MAX_PAGES; page++) {
    const body = await api(`/v1/responses?limit=100${after ? `&after=${encodeURIComponent(after)}` : ""}`);
    responses.push(...body.data);
    after = body.last_id;
    if (!body.has_more) break;
    if (page === MAX_PAGES - 1) truncated = true;
  }
  const rows = spendPerResponse(responses);
  const days = [...new Set(rows.map((r) => r.day))].sort();
  const series = KINDS.map(([k, name], i) => ({ name, colour: COLOURS[i], values: days.map((d) => rows.filter((r) => r.day === d).reduce((a, r) => a + r[k], 0)) }));
  const totals = Object.fromEntries(KINDS.map(([k]) => [k, rows.reduce((a, r) => a + r[k], 0)]));
  const total = KINDS.reduce((a, [k]) => a + totals[k], 0);
  const byModel = new Map();
  for (const r of rows) byModel.set(r.model, (byModel.get(r.model) || 0) + r.total);

  let llm = null, llmError = null;
  try { llm = await api("/api/v1/usage"); } catch (err) { llmError = err; }

  const content = [
    h("h1", {}, "Usage"),
    h("div", { class: "cards" },
      h("div", { class: "card" }, h("div", { class: "muted" }, "Total spend"), h("div", { class: "big", id: "total-spend" }, usd(total))),
      KINDS.slice(0, 3).map(([k, name]) => h("div", { class: "card" }, h("div", { class: "muted" }, name), h("div", { class: "big" }, usd(totals[k])))),
      h("div", { class: "card" }, h("div", { class: "muted" }, "Runs"), h("div", { class: "big" }, String(responses.length)))),
    truncated ? h("p", { class: "notice" }, `Only your newest ${responses.length} runs are counted.`) : null,
    h("section", { class: "panel" }, h("h2", {}, "Spend per day"),
      days.length ? [stacked(days, series, { title: "Spend per day by kind (USD)" }), legend(series)] : h("p", { class: "muted" }, "No spend yet.")),
    h("section", { class: "panel" }, h("h2", {}, "Spend by kind"),
      hbar(KINDS.map(([k, name]) => ({ label: name, value: totals[k] })), { title: "Spend by kind (USD)", colour: () => COLOURS[0] })),
    h("section", { class: "panel" }, h("h2", {}, "Spend by model"),
      byModel.size ? hbar([...byModel].map(([label, value]) => ({ label, value })), { title: "Spend by model (USD)", colour: () => COLOURS[2] }) : h("p", { class: "muted" }, "No runs yet.")),
    h("section", { class: "panel" }, h("h2", {}, "Model calls"),
      llm ? usageTable(llm.usage) : errorBox(llmError)),
  ];
  replace(main, content);
}

function usageTable(u) {
  return [
    h("p", {}, `${u.totals.request_count} calls, ${u.totals.total_tokens} tokens, ${usd(u.totals.total_cost)}${u.totals.cost_is_lower_bound ? " (at least)" : ""}, average latency ${Math.round(u.totals.avg_latency_ms)} ms.`),
    h("div", { class: "table-wrap" }, h("table", {},
      h("thead", {}, h("tr", {}, h("th", {}, "Model"), h("th", { class: "num" }, "Calls"), h("th", { class: "num" }, "Tokens"), h("th", { class: "num" }, "Cost"))),
      h("tbody", {}, u.by_model.map((m) => h("tr", {}, h("td", {}, m.model), h("td", { class: "num" }, String(m.request_count)),
        h("td", { class: "num" }, String(m.total_tokens)), h("td", { class: "num" }, usd(m.total_cost))))))),
  ];
}
