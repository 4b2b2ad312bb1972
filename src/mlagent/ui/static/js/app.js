// The dashboard's router: #/runs, #/runs/<id>, #/usage, #/models[/<id>],
// #/deployments[/<id>], #/operator. Every view is built on the public API only.

import { api, auth } from "./api.js";
import { h, replace, errorBox } from "./dom.js";

// Each view is loaded when first shown, so a run page does not wait for the charts' code.
const VIEWS = {
  runs: () => import("./views/runs.js"),
  run: () => import("./views/run.js"),
  usage: () => import("./views/usage.js"),
  models: () => import("./views/models.js"),
  deployments: () => import("./views/models.js"),
  operator: () => import("./views/operator.js"),
};

const main = document.getElementById("main");
let current = null; // the view's cleanup (stops its streams and timers)

function signInView(message) {
  const input = h("input", { id: "token", type: "password", autocomplete: "off", required: true,
    placeholder: "hf_…", size: 40, "aria-describedby": "token-help" });
  const status = h("div", { role: "alert" }, message ? h("div", { class: "error" }, message) : null);
  const form = h("form", { class: "signin panel", onsubmit: async (e) => {
    e.preventDefault();
    const token = input.value.trim();
    if (!token) return;
    auth.token = token;
    try {
      await api("/v1/responses?limit=1");
      input.value = "";
      route();
    } catch (err) {
      auth.token = null;
      const why = err.status === 401
        ? "That token was not accepted: Hugging Face does not recognise it, or it is an organisation token. Paste a user access token."
        : err.message;
      replace(status, h("div", { class: "error" }, why));
      input.focus();
    }
  } },
  h("h1", {}, "Sign in"),
  h("label", { for: "token" }, "Hugging Face access token"),
  input,
  h("p", { id: "token-help", class: "muted" },
    "The token stays in this browser tab (session storage) and is sent to this server as a bearer header on each call; the server never stores it. Closing the tab forgets it."),
  h("div", { class: "actions" }, h("button", { type: "submit" }, "Sign in")),
  status);
  replace(main, form);
  input.focus();
}

function header() {
  const who = document.getElementById("who");
  replace(who, auth.token
    ? [h("span", {}, "Signed in"), h("button", { class: "secondary", type: "button", onclick: () => {
        auth.token = null; auth.operatorKey = null; location.hash = "#/runs"; route();
      } }, "Sign out")]
    : []);
}

export async function route() {
  const focused = document.activeElement;
  if (current) { try { current(); } catch { /* already gone */ } current = null; }
  const hash = location.hash.replace(/^#\/?/, "") || "runs";
  const [section, ...rest] = hash.split("/");
  const id = rest.length ? decodeURIComponent(rest.join("/")) : null;
  for (const a of document.querySelectorAll("nav a")) {
    if (a.dataset.nav === section) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  header();
  if (!auth.token && section !== "operator") { signInView(); return; }
  const load = VIEWS[section === "runs" && id ? "run" : section];
  replace(main);
  if (!load) { replace(main, errorBox(`There is no page "${section}".`)); return; }
  try {
    const view = await load();
    current = await view.show(main, { section, id, rerender: route }) || null;
  } catch (err) {
    if (err && err.status === 401) { auth.token = null; signInView("Your token was refused (401); sign in again."); return; }
    replace(main, errorBox(err));
  }
  // The new page takes focus (for keyboard and screen-reader users) unless they moved it
  // themselves while the view's data loaded: a late jump would pull them out of the nav.
  if (document.activeElement === focused || document.activeElement === document.body) {
    main.focus({ preventScroll: true });
  }
}

window.addEventListener("hashchange", route);
route();
