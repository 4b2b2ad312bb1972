// The public API, called with the token the user pasted (kept in this tab's sessionStorage).

const TOKEN = "mlagent.hfToken";
const OPERATOR = "mlagent.operatorKey";

export const auth = {
  get token() { return sessionStorage.getItem(TOKEN); },
  set token(v) { v ? sessionStorage.setItem(TOKEN, v) : sessionStorage.removeItem(TOKEN); },
  get operatorKey() { return sessionStorage.getItem(OPERATOR); },
  set operatorKey(v) { v ? sessionStorage.setItem(OPERATOR, v) : sessionStorage.removeItem(OPERATOR); },
};

export class ApiError extends Error {
  constructor(status, message, param, code) {
    super(message);
    this.status = status;
    this.param = param;
    this.code = code;
  }
}

export function authHeaders(operator = false) {
  if (operator) return auth.operatorKey ? { "X-API-Key": auth.operatorKey } : {};
  return auth.token ? { Authorization: `Bearer ${auth.token}` } : {};
}

// Both envelopes: /v1 {"error": {message, param, code}}, the others {"error", "details"}.
export function errorFrom(status, data, text) {
  let message = `Request failed (${status}).`, param = null, code = null;
  if (data && typeof data.error === "object" && data.error) {
    message = data.error.message || message; param = data.error.param; code = data.error.code;
  } else if (data && typeof data.error === "string") {
    message = data.error; param = data.details && data.details.field; code = data.details && data.details.code;
  } else if (data && data.detail) {
    message = typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail);
  } else if (text) {
    message = text.slice(0, 300);
  }
  if (param && !message.includes(param)) message += ` (field: ${param})`;
  return new ApiError(status, message, param, code);
}

export async function api(path, { method = "GET", body, operator = false, signal } = {}) {
  const headers = authHeaders(operator);
  let payload = body;
  if (body !== undefined && !(body instanceof FormData)) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  let r;
  try {
    r = await fetch(path, { method, headers, body: payload, signal });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError(0, "The server cannot be reached; check your connection and try again.");
  }
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!r.ok) throw errorFrom(r.status, data, text);
  return data;
}
