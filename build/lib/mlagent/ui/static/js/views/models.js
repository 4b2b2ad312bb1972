// Models and deployments (MLConnector, seed 003): models with their files and tags;
// deployments with status; predict with a SHAP explanation drawn as bars; drift per
// feature against the training distribution.

import { api } from "../api.js";
import { h, replace, badge, when, errorBox } from "../dom.js";
import { hbar, grouped, legend, COLOURS } from "../charts.js";

function size(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1 << 20) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / (1 << 20)).toFixed(1)} MiB`;
}

function filesTable(files) {
  if (!files || !files.length) return h("p", { class: "muted" }, "No files uploaded.");
  return h("div", { class: "table-wrap" }, h("table", {},
    h("thead", {}, h("tr", {}, h("th", {}, "File"), h("th", {}, "Kind"), h("th", { class: "num" }, "Version"), h("th", { class: "num" }, "Size"), h("th", { class: "hide-narrow" }, "Source"), h("th", { class: "hide-narrow" }, "SHA-256"))),
    h("tbody", {}, files.map((f) => h("tr", {}, h("td", {}, f.filename), h("td", {}, f.file_kind), h("td", { class: "num" }, String(f.version)),
      h("td", { class: "num" }, size(f.size)), h("td", { class: "hide-narrow" }, f.source), h("td", { class: "hide-narrow" }, h("code", {}, (f.sha256 || "").slice(0, 12))))))));
}

function tags(list) {
  return (list || []).length ? list.map((t) => [h("span", { class: "badge" }, t), " "]) : h("span", { class: "muted" }, "none");
}

async function modelList(main) {
  const [models, deps] = await Promise.all([api("/model/all?limit=200"), api("/deployment/all")]);
  replace(main, h("h1", {}, "Models"),
    models.length ? h("div", { class: "table-wrap" }, h("table", {},
      h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Kind"), h("th", {}, "Tags"), h("th", { class: "num" }, "Files"), h("th", { class: "num" }, "Deployments"), h("th", { class: "hide-narrow" }, "Updated"))),
      h("tbody", {}, models.map((m) => h("tr", {},
        h("td", {}, h("a", { href: `#/models/${encodeURIComponent(m.id)}` }, m.modelname), h("div", { class: "muted" }, h("code", {}, m.id))),
        h("td", {}, m.modelkind), h("td", {}, tags(m.modeltags)), h("td", { class: "num" }, String((m.files || []).length)),
        h("td", { class: "num" }, String(deps.filter((d) => d.modelid === m.id).length)), h("td", { class: "hide-narrow" }, when(m.updated_at)))))))
      : h("p", { class: "muted" }, "No models in your registry yet. The agent registers the models it trains; you can also POST /model/add."));
}

async function modelPage(main, id) {
  let m;
  try {
    m = await api(`/model/${encodeURIComponent(id)}`);
  } catch (err) {
    if (err.status === 404) { replace(main, h("h1", {}, "Model not found"), errorBox(`No model ${id} in your registry: it does not exist, or it belongs to another account.`)); return; }
    throw err;
  }
  const deps = (await api("/deployment/all")).filter((d) => d.modelid === m.id);
  replace(main, h("h1", {}, m.modelname, " ", h("span", { class: "muted" }, `(${m.modelkind})`)),
    h("dl", { class: "kv panel" },
      h("dt", {}, "Id"), h("dd", {}, h("code", {}, m.id)),
      h("dt", {}, "Tags"), h("dd", {}, tags(m.modeltags)),
      h("dt", {}, "Features"), h("dd", {}, (m.featurelist || []).map((f) => `${f.feature_name}${f.kind === 1 ? " (target)" : ""}`).join(", ") || "–"),
      h("dt", {}, "Hyperparameters"), h("dd", {}, (m.hyperparameter || []).map((p) => `${p.parameter}=${JSON.stringify(p.value)}`).join(", ") || "–"),
      h("dt", {}, "Drift detection"), h("dd", {}, (m.drift_detection || []).some((d) => d.is_true) ? "on" : "off"),
      h("dt", {}, "Updated"), h("dd", {}, when(m.updated_at))),
    h("h2", {}, "Files"), filesTable(m.files),
    h("h2", {}, "Deployments"), deploymentsTable(deps));
}

function deploymentsTable(deps) {
  if (!deps.length) return h("p", { class: "muted" }, "No deployments.");
  return h("div", { class: "table-wrap" }, h("table", {},
    h("thead", {}, h("tr", {}, h("th", {}, "Deployment"), h("th", {}, "Status"), h("th", {}, "Model"), h("th", { class: "hide-narrow" }, "Created"))),
    h("tbody", {}, deps.map((d) => h("tr", {},
      h("td", {}, h("a", { href: `#/deployments/${encodeURIComponent(d.deployment_id)}` }, d.deployment_id)),
      h("td", {}, badge(d.status), d.reason ? h("div", { class: "muted" }, d.reason) : null),
      h("td", {}, h("a", { href: `#/models/${encodeURIComponent(d.modelid)}` }, h("code", {}, d.modelid))),
      h("td", { class: "hide-narrow" }, when(d.created_at)))))));
}

async function deploymentList(main) {
  const deps = await api("/deployment/all");
  replace(main, h("h1", {}, "Deployments"), deploymentsTable(deps));
}

function featureNames(dep, model) {
  const fromWorker = dep.model && dep.model.feature_names;
  if (fromWorker && fromWorker.length) return fromWorker;
  const inputs = ((model && model.featurelist) || []).filter((f) => f.kind !== 1).map((f) => f.feature_name);
  if (inputs.length) return inputs;
  const n = dep.model && dep.model.n_features;
  return n ? Array.from({ length: n }, (_, i) => `x${i}`) : [];
}

export function shapRows(explanation) {
  let values = explanation.feature_importance || [];
  if (Array.isArray(values[0])) values = values[0]; // a batch: the first row
  const names = explanation.feature_names || values.map((_, i) => `x${i}`);
  return values.map((v, i) => ({ label: names[i] ?? `x${i}`, value: Number(v) }))
    .sort((a, b) => Math.abs(b.value) - Math.abs(a.value));
}

async function deploymentPage(main, id) {
  let dep;
  try {
    dep = await api(`/deployment/get/status/${encodeURIComponent(id)}`);
  } catch (err) {
    if (err.status === 404) { replace(main, h("h1", {}, "Deployment not found"), errorBox(`No deployment ${id} in your account: it does not exist, or it belongs to another account.`)); return; }
    throw err;
  }
  let model = null;
  try { model = await api(`/model/${encodeURIComponent(dep.modelid)}`); } catch { /* shown without it */ }
  const names = featureNames(dep, model);
  const inputs = names.map((n, i) => h("div", {}, h("label", { for: `f${i}` }, n), h("input", { id: `f${i}`, name: n, type: "number", step: "any", required: true, value: "0" })));
  const raw = h("textarea", { id: "row", placeholder: "[0.1, 2.3, …] or {\"feature\": value}" });
  const explain = h("input", { id: "explain", type: "checkbox", checked: true });
  const result = h("div", { id: "predict-result", "aria-live": "polite" });
  const form = h("form", { class: "panel", onsubmit: async (e) => {
    e.preventDefault();
    let data;
    try {
      data = names.length ? inputs.map((d) => Number(d.querySelector("input").value)) : JSON.parse(raw.value);
    } catch {
      replace(result, errorBox("The row must be JSON: a list of numbers or an object of feature: value."));
      return;
    }
    try {
      const r = await api(`/deployment/${encodeURIComponent(id)}/predict`, { method: "POST", body: { data, explain: explain.checked } });
      const parts = [h("p", {}, "Prediction: ", h("strong", { id: "prediction" }, JSON.stringify(r.prediction.length === 1 ? r.prediction[0] : r.prediction)))];
      if (r.explanation) {
        const ex = r.explanation;
        const rows = shapRows(ex);
        parts.push(h("h3", {}, "Why: SHAP values"),
          h("p", { class: "muted" }, `Base value ${Number(ex.base_value).toFixed(4)} + contributions = output ${Number(ex.output).toFixed(4)}${ex.explained_class !== undefined ? ` (class ${ex.explained_class})` : ""}. Red pushes the output up, blue down. Explainer: ${ex.explainer || ex.method}.`),
          h("div", { id: "shap-chart" }, hbar(rows, { title: "SHAP feature contributions" })));
      }
      replace(result, parts);
    } catch (err) {
      replace(result, errorBox(err));
    }
  } },
  h("h2", {}, "Predict"),
  names.length ? h("div", { class: "row" }, inputs) : [h("label", { for: "row" }, "Input row (JSON)"), raw],
  h("div", { class: "actions" }, h("label", { for: "explain" }, explain, " explain with SHAP"), h("button", { type: "submit" }, "Predict")),
  result);

  const driftBox = h("div", { id: "drift" }, h("p", { class: "muted" }, "Loading drift…"));
  replace(main, h("h1", {}, "Deployment ", h("code", {}, dep.deployment_id)),
    h("dl", { class: "kv panel" },
      h("dt", {}, "Status"), h("dd", {}, badge(dep.status), dep.reason ? ` ${dep.reason}` : ""),
      h("dt", {}, "Model"), h("dd", {}, h("a", { href: `#/models/${encodeURIComponent(dep.modelid)}` }, model ? model.modelname : dep.modelid)),
      h("dt", {}, "Endpoint"), h("dd", {}, h("code", {}, dep.endpoint)),
      dep.model ? [h("dt", {}, "Model type"), h("dd", {}, dep.model.model_type, dep.model.classes ? ` · classes ${JSON.stringify(dep.model.classes)}` : "")] : null,
      h("dt", {}, "Records inputs"), h("dd", {}, dep.inference_data ? "yes (needed for drift)" : "no")),
    dep.status === "running" ? form : h("p", { class: "notice" }, `Predictions need a running deployment; this one is ${dep.status}.`),
    h("section", { class: "panel" }, h("h2", {}, "Drift against the training data"),
      h("div", { class: "actions" }, h("button", { type: "button", class: "secondary", onclick: () => loadDrift() }, "Refresh drift")), driftBox));

  async function loadDrift() {
    try {
      const d = await api(`/deployment/${encodeURIComponent(id)}/drift`);
      const series = (f) => [{ name: "training", colour: COLOURS[0], values: f.reference_share }, { name: "served", colour: COLOURS[1], values: f.current_share }];
      replace(driftBox,
        h("p", {}, `${d.method_name}: drift when ${d.threshold}. ${d.n_current} served rows against ${d.n_reference} training rows. `,
          d.drift_detected ? h("strong", { class: "s-failed" }, "Drift detected.") : h("strong", { class: "s-completed" }, "No drift detected.")),
        hbar(d.features.map((f) => ({ label: f.feature, value: f.statistic, drift: f.drift })), { title: `Drift statistic per feature (${d.method_name})`, colour: (r) => r.drift ? COLOURS[1] : COLOURS[2] }),
        h("div", { class: "drift-grid" }, d.features.map((f) => h("div", { class: "drift-feature" },
          h("h3", {}, f.feature, " ", badge(f.drift ? "drift" : "stable")),
          f.reference_share && f.reference_share.length
            ? [grouped(f.reference_share.map((_, i) => binLabel(f.edges, i)), series(f), { title: `${f.feature}: share of rows per training decile`, width: 420, height: 190 }),
              h("p", { class: "muted" }, `Bins are the training data's deciles (${f.edges.length + 1}); hover a bar for its range.`), legend(series(f))]
            : null))));
    } catch (err) {
      replace(driftBox, err.status === 409 ? h("p", { class: "muted" }, err.message) : errorBox(err));
    }
  }
  loadDrift();
}

function binLabel(edges, i) {
  const fmt = (v) => (Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(2));
  if (!edges.length) return "all";
  if (i === 0) return `<${fmt(edges[0])}`;
  if (i === edges.length) return `≥${fmt(edges[i - 1])}`;
  return `${fmt(edges[i - 1])}–${fmt(edges[i])}`;
}

export async function show(main, { section, id }) {
  if (section === "models") return id ? modelPage(main, id) : modelList(main);
  return id ? deploymentPage(main, id) : deploymentList(main);
}

