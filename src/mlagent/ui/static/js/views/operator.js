// Operator view (seed 002's /api/v1): agents with pause / resume, live threads, inject.
// It needs the operator key (X-API-Key), kept in this tab's sessionStorage like the token.

import { api, auth } from "../api.js";
import { h, replace, badge, when, errorBox, toast, usd } from "../dom.js";

const REFRESH_MS = 3000;

function keyForm(main, message) {
  const key = h("input", { id: "opkey", type: "password", autocomplete: "off", required: true, size: 40 });
  const status = h("div", { role: "alert" }, message ? errorBox(message) : null);
  replace(main, h("form", { class: "signin panel", onsubmit: async (e) => {
    e.preventDefault();
    auth.operatorKey = key.value.trim();
    try {
      const probe = await api("/api/v1/organism", { operator: true });
      if (probe.scope !== "all") throw new Error("That key is an account key, not the operator key: it sees only its own threads.");
      location.reload();
    } catch (err) {
      auth.operatorKey = null;
      replace(status, errorBox(err.status === 401 ? "That key was not accepted (401)." : err));
    }
  } }, h("h1", {}, "Operator"), h("label", { for: "opkey" }, "Operator key (X-API-Key)"), key,
  h("p", { class: "muted" }, "MLAGENT_OPERATOR_KEY of this server. Kept in this tab only."),
  h("div", { class: "actions" }, h("button", { type: "submit" }, "Use key")), status));
  key.focus();
}

export async function show(main) {
  if (!auth.operatorKey) { keyForm(main); return null; }
  const agentsBox = h("div");
  const threadsBox = h("div", { id: "threads" });
  const injectStatus = h("div", { id: "inject-status", role: "status" });
  const to = h("select", { id: "inject-to" });
  const thread = h("input", { id: "inject-thread", placeholder: "new thread" });
  const payload = h("textarea", { id: "inject-payload", required: true, placeholder: "Plain text, or a JSON object matching the agent's input schema" });

  async function refresh() {
    try {
      const [agents, threads] = await Promise.all([
        api("/api/v1/agents", { operator: true }),
        api("/api/v1/threads?limit=50", { operator: true }),
      ]);
      drawAgents(agents.agents);
      drawThreads(threads);
    } catch (err) {
      if (err.status === 401 || err.status === 403) { auth.operatorKey = null; keyForm(main, err.message); stop(); return; }
      replace(agentsBox, errorBox(err));
    }
  }

  function drawAgents(agents) {
    if (to.options.length !== agents.length) replace(to, agents.map((a) => h("option", { value: a.name }, a.name)));
    replace(agentsBox, h("div", { class: "table-wrap" }, h("table", {},
      h("thead", {}, h("tr", {}, h("th", {}, "Agent"), h("th", {}, "State"), h("th", { class: "num" }, "Running"), h("th", { class: "num" }, "Waiting"), h("th", { class: "num" }, "Threads"), h("th", {}, "Model"), h("th", {}, ""))),
      h("tbody", {}, agents.map((a) => h("tr", { dataset: { agent: a.name } },
        h("td", {}, h("strong", {}, a.name), h("div", { class: "muted" }, a.description)),
        h("td", {}, badge(a.state)), h("td", { class: "num" }, String(a.running_turns)), h("td", { class: "num" }, String(a.waiting_turns)),
        h("td", { class: "num" }, String(a.thread_count)), h("td", {}, a.model),
        h("td", {}, h("button", { type: "button", class: a.state === "paused" ? "" : "secondary",
          onclick: () => toggle(a.name, a.state === "paused" ? "resume" : "pause") }, a.state === "paused" ? "Resume" : "Pause"))))))));
  }

  function drawThreads(t) {
    replace(threadsBox, t.threads.length
      ? h("div", { class: "table-wrap" }, h("table", {},
        h("thead", {}, h("tr", {}, h("th", {}, "Thread"), h("th", {}, "Account"), h("th", {}, "Status"), h("th", {}, "Agents"),
          h("th", { class: "num" }, "Turns"), h("th", { class: "num" }, "Spent"), h("th", { class: "hide-narrow" }, "Updated"))),
        h("tbody", {}, t.threads.map((th) => h("tr", {},
          h("td", {}, h("code", {}, th.id)), h("td", {}, th.account), h("td", {}, badge(th.status)),
          h("td", {}, (th.participants || [th.agent]).join(", ")), h("td", { class: "num" }, String(th.turn_count)),
          h("td", { class: "num" }, usd(th.spent_usd)), h("td", { class: "hide-narrow" }, when(th.updated_at)))))))
      : h("p", { class: "muted" }, "No threads yet."));
  }

  async function toggle(name, action) {
    try {
      await api(`/api/v1/agents/${encodeURIComponent(name)}/${action}`, { method: "POST", operator: true });
      toast(`${name}: ${action}d`);
      refresh();
    } catch (err) {
      toast(err.message);
    }
  }

  const form = h("form", { class: "panel", onsubmit: async (e) => {
    e.preventDefault();
    let body = payload.value;
    try { const parsed = JSON.parse(body); if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) body = parsed; } catch { /* plain text */ }
    const req = { to: to.value, payload: body };
    if (thread.value.trim()) req.thread_id = thread.value.trim();
    try {
      const r = await api("/api/v1/inject", { method: "POST", operator: true, body: req });
      replace(injectStatus, h("p", {}, `Delivered to ${to.value}: thread `, h("code", {}, r.thread_id), ", response ", h("code", {}, r.response_id), ` (${r.status}).`));
      payload.value = "";
      refresh();
    } catch (err) {
      replace(injectStatus, errorBox(err));
    }
  } }, h("h2", {}, "Inject a message"),
  h("div", { class: "row" }, h("div", {}, h("label", { for: "inject-to" }, "To agent"), to), h("div", {}, h("label", { for: "inject-thread" }, "Thread id"), thread)),
  h("label", { for: "inject-payload" }, "Payload"), payload,
  h("div", { class: "actions" }, h("button", { type: "submit" }, "Inject")), injectStatus);

  replace(main, h("h1", {}, "Operator"),
    h("div", { class: "actions" }, h("button", { type: "button", class: "secondary", onclick: () => { auth.operatorKey = null; keyForm(main); stop(); } }, "Forget operator key")),
    h("section", { class: "panel" }, h("h2", {}, "Agents"), agentsBox),
    h("section", { class: "panel" }, h("h2", {}, "Threads"), h("p", { class: "muted" }, `Refreshed every ${REFRESH_MS / 1000} s.`), threadsBox),
    form);
  await refresh();
  const timer = setInterval(refresh, REFRESH_MS);
  function stop() { clearInterval(timer); }
  return stop;
}
