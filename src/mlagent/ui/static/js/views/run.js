// One run: replays its event log from the start, then follows it live (sse.js), and
// offers the controls the API has: approve / deny a paused batch, cancel, continue.

import { api } from "../api.js";
import { RunStream } from "../sse.js";
import { render as markdown } from "../markdown.js";
import { h, replace, badge, usd, duration, when, errorBox, safeHref, toast } from "../dom.js";

const LIFECYCLE = new Set(["response.created", "response.queued", "response.in_progress", "response.completed",
  "response.failed", "response.cancelled", "response.incomplete"]);
const ACTIVE = new Set(["queued", "in_progress"]);

export class RunState {
  constructor() {
    this.response = null;
    this.plan = [];
    this.items = new Map();      // output_index -> item (messages get .text)
    this.outputs = new Map();    // call_id -> a tool run's result (a done mcp_call's output; an old log's function_call_output)
    this.seen = new Map();       // call_id -> when this page first saw the run going (Date.now())
    this.logs = new Map();       // call_id -> the full tool result (response.tool_log)
    this.jobs = new Map();       // job_id -> latest response.job_status
    this.artifacts = new Map();  // a stable key -> artifact
    this.cost = null;
    this.approval = null;
    this.llmCalls = 0;
    this.events = 0;
    this.error = null;
    this.dirty = new Set(["all"]);
  }

  apply(ev) {
    const d = ev.data;
    this.events++;
    if (LIFECYCLE.has(ev.type)) {
      this.response = d.response;
      for (const a of d.response.artifacts || []) this.addArtifact(a);
      if (d.response.usage && d.response.usage.cost) this.cost = d.response.usage.cost;
      this.approval = d.response.status === "incomplete" ? (d.response.pending_approval || this.approval) : null;
      if (ev.type !== "response.created" && ev.type !== "response.queued" && ev.type !== "response.in_progress") {
        (d.response.output || []).forEach((item, i) => this.mergeItem(i, item, true));
      }
      this.dirty.add("head").add("side");
      return;
    }
    switch (ev.type) {
      case "response.output_item.added":
      case "response.output_item.done":
        this.mergeItem(d.output_index, d.item, ev.type.endsWith("done"));
        break;
      case "response.output_text.delta": {
        const item = this.items.get(d.output_index);
        if (item) { item.text = (item.text || "") + d.delta; this.dirty.add(`i${d.output_index}`); }
        break;
      }
      case "response.output_text.done": {
        const item = this.items.get(d.output_index);
        if (item) { item.text = d.text; this.dirty.add(`i${d.output_index}`); }
        break;
      }
      case "response.tool_log":
        this.logs.set(d.call_id, d.text);
        this.dirty.add(`c${d.call_id}`);
        break;
      case "response.plan":
        this.plan = d.steps || [];
        this.dirty.add("plan");
        break;
      case "response.artifact.created":
        this.addArtifact(d.artifact);
        this.dirty.add("side");
        break;
      case "response.approval_required":
        this.approval = { batch: d.batch, actions: d.actions, budget: d.budget };
        this.dirty.add("side");
        break;
      case "response.cost.updated":
        this.cost = d.cost;
        this.dirty.add("side");
        break;
      case "response.job_status":
        this.jobs.set(d.job_id, d);
        this.dirty.add("side");
        break;
      case "response.llm_call":
        this.llmCalls++;
        this.dirty.add("head");
        break;
      case "error":
        this.error = d.message;
        this.dirty.add("head");
        break;
      default:
        break; // event names a client does not know are ignored (docs/responses-api.md)
    }
  }

  mergeItem(index, item, final) {
    const known = this.items.get(index) || {};
    const merged = { ...known, ...item };
    if (item.type === "message") {
      const text = (item.content || []).map((p) => p.text || "").join("");
      merged.text = final || text.length >= (known.text || "").length ? (text || known.text || "") : known.text;
    }
    if (item.type === "function_call_output" || (item.type === "mcp_call" && item.status !== "in_progress")) {
      this.outputs.set(item.call_id, item.output ?? "");
      this.dirty.add(`c${item.call_id}`);
    }
    if ((item.type === "mcp_call" || item.type === "function_call") && !this.seen.has(item.call_id)) this.seen.set(item.call_id, Date.now());
    this.items.set(index, merged);
    this.dirty.add(`i${index}`);
    if (item.call_id) this.dirty.add(`c${item.call_id}`);
  }

  addArtifact(a) {
    const key = `${a.type}:${a.id || a.repo_id || a.slug || a.url || JSON.stringify(a)}`;
    this.artifacts.set(key, { ...(this.artifacts.get(key) || {}), ...a });
  }
}

function artifactLink(a) {
  const label = a.name || a.repo_id || a.id || a.slug || a.space_id || a.url || a.type;
  if (a.type === "registered_model" && a.id) return h("a", { href: `#/models/${encodeURIComponent(a.id)}` }, label);
  if (a.type === "deployment" && a.id) return h("a", { href: `#/deployments/${encodeURIComponent(a.id)}` }, label);
  const href = a.url && safeHref(a.url);
  return href ? h("a", { href, target: "_blank", rel: "noopener noreferrer" }, label) : h("span", {}, label);
}

function pretty(json) {
  try { return JSON.stringify(JSON.parse(json), null, 2); } catch { return String(json ?? ""); }
}

export async function show(main, { id }) {
  let first;
  try {
    first = await api(`/v1/responses/${encodeURIComponent(id)}`);
  } catch (err) {
    if (err.status === 404) {
      replace(main, h("h1", {}, "Run not found"), errorBox(`No run ${id} in your account: it does not exist, or it belongs to another account.`),
        h("p", {}, h("a", { href: "#/runs" }, "Back to my runs")));
      return null;
    }
    throw err;
  }
  const state = new RunState();
  state.response = first;
  const conn = h("span", { class: "conn muted", role: "status", "aria-live": "polite" }, "connecting…");
  const headBox = h("div");
  const planBox = h("ul", { class: "plan", "aria-label": "Plan" });
  const timeline = h("div", { class: "timeline", "aria-live": "off" });
  const side = h("div");
  const controls = h("div");
  const nodes = new Map(); // output_index -> element
  const started = Date.now();

  replace(main,
    h("h1", {}, "Run ", h("code", {}, id)),
    headBox,
    h("div", { class: "grid" },
      h("div", {},
        h("section", { class: "panel", "aria-labelledby": "plan-h" }, h("h2", { id: "plan-h" }, "Plan"), planBox),
        h("section", { class: "panel", "aria-labelledby": "ans-h" }, h("h2", { id: "ans-h" }, "Answer and tool calls"), timeline)),
      h("div", {}, controls, side)));

  const stream = new RunStream(id, {
    onEvents(batch) { for (const ev of batch) state.apply(ev); schedule(); },
    onState(s, err) {
      replace(conn, { connecting: "connecting…", live: "● live", reconnecting: "reconnecting… (resuming from event " + stream.lastSeq + ")",
        ended: "finished", paused: "waiting for your answer", error: "error" }[s] || s);
      main.dataset.conn = s;
      if (s === "error" && err) replace(controls, errorBox(err));
    },
  });
  let frame = 0;
  function schedule() {
    if (!frame) frame = requestAnimationFrame(draw);
  }

  function draw() {
    frame = 0;
    main.dataset.lastSeq = String(stream.lastSeq);
    main.dataset.reconnects = String(stream.reconnects);
    main.dataset.applied = String(state.events); // events applied: last seq + 1 when none was missed or repeated
    const all = state.dirty.has("all");
    if (all || state.dirty.has("head")) drawHead();
    if (all || state.dirty.has("plan")) drawPlan();
    const indexes = [...state.items.keys()].sort((a, b) => a - b);
    for (const i of indexes) {
      const item = state.items.get(i);
      if (!(all || state.dirty.has(`i${i}`) || (item.call_id && state.dirty.has(`c${item.call_id}`)))) continue;
      drawItem(i, item);
    }
    if (all || state.dirty.has("side") || state.dirty.has("head")) { drawSide(); drawControls(); }
    state.dirty.clear();
  }

  function drawHead() {
    const r = state.response;
    const paused = r.status === "incomplete" && r.incomplete_details && r.incomplete_details.reason === "approval_required";
    const end = ACTIVE.has(r.status) ? Date.now() / 1000 : null;
    replace(headBox, h("dl", { class: "kv panel" },
      h("dt", {}, "Status"), h("dd", { "data-status": r.status }, badge(paused ? "paused" : r.status), " ", conn),
      h("dt", {}, "Model"), h("dd", {}, r.model),
      h("dt", {}, "Started"), h("dd", {}, when(r.created_at), end ? ` · running ${duration(end - r.created_at)}` : ""),
      h("dt", {}, "Session"), h("dd", {}, h("code", {}, r.session_id)),
      r.previous_response_id ? [h("dt", {}, "Continues"), h("dd", {}, h("a", { href: `#/runs/${encodeURIComponent(r.previous_response_id)}` }, r.previous_response_id))] : null,
      h("dt", {}, "Model calls"), h("dd", {}, String(state.llmCalls)),
      r.error ? [h("dt", {}, "Error"), h("dd", { class: "error" }, `${r.error.code}: ${r.error.message}`)] : null,
      state.error ? [h("dt", {}, "Stream error"), h("dd", { class: "error" }, state.error)] : null));
  }

  function drawPlan() {
    replace(planBox, state.plan.length ? state.plan.map((step) =>
      h("li", { class: step.status, "aria-label": `${step.status}: ${step.step}` }, step.step))
      : h("li", { class: "muted" }, "No plan yet."));
  }

  function drawItem(i, item) {
    if (item.type === "function_call_output") return; // shown inside its call
    let node = nodes.get(i);
    if (item.type === "message") {
      if (!node) { node = h("div", { class: "answer", dataset: { index: i } }); insert(i, node); }
      replace(node, markdown(item.text || ""));
      return;
    }
    // A tool call: `mcp_call` is the agent's own run (done on the server); `function_call` is a
    // client tool the client must answer, or, in a log written before mcp_call, the agent's
    // own run followed by its function_call_output.
    if (item.type === "mcp_call" || item.type === "function_call") {
      if (!node) {
        node = h("details", { class: "tool", dataset: { index: i, call: item.call_id } }, h("summary"), h("div", { class: "body" }));
        insert(i, node);
      }
      const output = state.outputs.get(item.call_id);
      const log = state.logs.get(item.call_id);
      const active = ACTIVE.has(state.response.status);
      const cut = item.status === "incomplete";
      const waiting = item.type === "function_call" && output === undefined && state.response.status === "completed";
      const status = cut ? "interrupted" : output !== undefined ? "completed" : waiting ? "waiting" : active ? "in_progress" : "pending";
      const took = typeof item.duration_ms === "number" ? item.duration_ms / 1000
        : status === "in_progress" && state.seen.has(item.call_id) ? (Date.now() - state.seen.get(item.call_id)) / 1000 : null;
      const result = output === undefined ? "" : (String(output).split("\n").find((l) => l.trim()) || "(no output)").trim();
      node.dataset.toolStatus = status;
      replace(node.querySelector("summary"), h("span", { class: "muted" }, "tool "), `${item.name} `, badge(status),
        took !== null ? h("span", { class: "muted took" }, ` ${duration(took)}`) : null,
        result ? h("span", { class: "muted result" }, ` → ${result.length > 100 ? result.slice(0, 99) + "…" : result}`) : null);
      replace(node.querySelector(".body"),
        h("div", { class: "label" }, "Arguments"), h("pre", { class: "log" }, pretty(item.arguments)),
        waiting ? h("p", { class: "notice waiting" }, "Client tool: waiting for the client's tool output (a function_call_output with this call_id, sent with previous_response_id).") : null,
        output !== undefined ? [h("div", { class: "label" }, "Result"), h("pre", { class: "log" }, output)] : null,
        log !== undefined && log !== output ? [h("div", { class: "label" }, "Full log"), h("pre", { class: "log tool-log" }, log)] : null);
    }
  }

  function insert(i, node) {
    nodes.set(i, node);
    const after = [...nodes.entries()].filter(([k]) => k > i).sort((a, b) => a[0] - b[0])[0];
    if (after) timeline.insertBefore(node, after[1]); else timeline.append(node);
  }

  function drawSide() {
    const cost = state.cost;
    const cap = cost ? cost.max_cost_usd : state.response.max_cost_usd;
    const spent = cost ? cost.total_usd : 0;
    const jobs = [...state.jobs.values()];
    const arts = [...state.artifacts.values()];
    replace(side,
      h("section", { class: "panel", "aria-labelledby": "budget-h" },
        h("h2", { id: "budget-h" }, "Budget"),
        h("meter", { id: "budget", min: 0, max: cap || 1, low: (cap || 1) * 0.7, high: (cap || 1) * 0.9, optimum: 0, value: spent,
          "aria-label": `Spent ${usd(spent)} of ${usd(cap, 2)}` }),
        h("p", { class: "budget-text" }, `${usd(spent)} spent of ${usd(cap, 2)}`, cost && cost.lower_bound ? " (at least: some actions had no price)" : ""),
        cost ? h("p", { class: "muted" }, `inference ${usd(cost.inference_usd)} · jobs ${usd(cost.jobs_usd)} · sandboxes ${usd(cost.sandboxes_usd)}`) : null),
      h("section", { class: "panel", "aria-labelledby": "jobs-h" }, h("h2", { id: "jobs-h" }, "Jobs"),
        jobs.length ? h("ul", {}, jobs.map((j) => h("li", {}, h("code", {}, j.job_id), " ", badge(String(j.stage || "").toLowerCase()), j.message ? ` ${j.message}` : "")))
          : h("p", { class: "muted" }, "No jobs.")),
      h("section", { class: "panel", "aria-labelledby": "art-h" }, h("h2", { id: "art-h" }, "Artifacts"),
        arts.length ? h("ul", { class: "artifacts" }, arts.map((a) => h("li", {}, h("span", { class: "muted" }, `${a.type}: `), artifactLink(a), a.status ? [" ", badge(a.status)] : null)))
          : h("p", { class: "muted" }, "None yet.")));
  }

  let controlsKey = "";
  function drawControls() {
    const r = state.response;
    const paused = r.status === "incomplete" && state.approval;
    const key = `${r.status}:${paused ? state.approval.budget && state.approval.budget.spent : ""}`;
    if (key === controlsKey) return; // keep what the user is typing
    controlsKey = key;
    const parts = [];
    if (paused) parts.push(approvalForm(state.approval));
    if (ACTIVE.has(r.status) || r.status === "incomplete") {
      parts.push(h("div", { class: "actions" }, h("button", { class: "danger", type: "button", onclick: cancel }, "Cancel run")));
    }
    if (!ACTIVE.has(r.status) && !paused) parts.push(continueForm());
    replace(controls, parts);
  }

  function approvalForm(approval) {
    const cap = h("input", { id: "new-cap", type: "number", min: "0.01", max: "500", step: "0.01", placeholder: "keep current" });
    const feedback = h("textarea", { id: "feedback", maxlength: 4000, placeholder: "optional: what the agent should do instead" });
    const status = h("div", { role: "alert" });
    const answer = async (approve) => {
      const body = { approve };
      if (cap.value) body.new_max_cost_usd = Number(cap.value);
      if (feedback.value.trim()) body.feedback = feedback.value.trim();
      try {
        await api(`/v1/responses/${encodeURIComponent(id)}/approvals`, { method: "POST", body });
        toast(approve ? "Approved: the run continues." : "Denied.");
        controlsKey = "";
        follow();
      } catch (err) {
        replace(status, errorBox(err));
      }
    };
    const b = approval.budget || {};
    return h("section", { class: "panel notice", "aria-labelledby": "appr-h" },
      h("h2", { id: "appr-h" }, "Approval needed"),
      h("p", {}, `The next ${approval.batch === "tools" ? "tool calls" : "model call"} would cost about ${usd(b.estimate)}; ${usd(b.spent)} of ${usd(b.cap, 2)} is spent (${usd(b.remaining)} left).`),
      h("ul", {}, (approval.actions || []).map((a) => h("li", {}, h("code", {}, a.name), ` (${a.kind}) ≈ ${usd(a.estimate_usd)}${a.priced ? "" : " (no price known)"}`))),
      h("label", { for: "new-cap" }, "New budget cap (USD)"), cap,
      h("label", { for: "feedback" }, "Feedback for the agent"), feedback,
      h("div", { class: "actions" },
        h("button", { type: "button", onclick: () => answer(true) }, "Approve"),
        h("button", { type: "button", class: "secondary", onclick: () => answer(false) }, "Deny")),
      status);
  }

  function continueForm() {
    const text = h("textarea", { id: "continue", required: true, maxlength: 100000, placeholder: "Ask a follow-up in the same session" });
    const status = h("div", { role: "alert" });
    return h("form", { class: "panel", onsubmit: async (e) => {
      e.preventDefault();
      try {
        const r = await api("/v1/responses", { method: "POST", body: { input: text.value, previous_response_id: id, background: true } });
        location.hash = `#/runs/${encodeURIComponent(r.id)}`;
      } catch (err) {
        replace(status, errorBox(err));
      }
    } }, h("h2", {}, "Continue"), h("label", { for: "continue" }, "Message"), text,
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Send")), status);
  }

  async function cancel() {
    try {
      await api(`/v1/responses/${encodeURIComponent(id)}/cancel`, { method: "POST" });
      toast("Cancel requested.");
      if (main.dataset.conn === "paused" || main.dataset.conn === "ended") follow();
    } catch (err) {
      toast(err.message);
    }
  }

  let following = null;
  function follow() {
    if (following) return following;
    following = stream.follow().finally(() => { following = null; schedule(); });
    return following;
  }

  const ticker = setInterval(() => {
    if (!ACTIVE.has(state.response.status)) return;
    state.dirty.add("head");
    for (const [callId] of state.seen) if (!state.outputs.has(callId)) state.dirty.add(`c${callId}`); // running times
    schedule();
  }, 1000);
  schedule();
  follow();
  main.dataset.openedAt = String(started);
  return () => { stream.stop(); clearInterval(ticker); if (frame) cancelAnimationFrame(frame); };
}
