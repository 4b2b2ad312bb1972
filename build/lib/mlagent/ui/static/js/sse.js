// Following a response's event log over SSE with fetch (EventSource cannot send the
// Authorization header). The cursor is the last sequence number seen: every (re)connect
// sends it as Last-Event-ID, and events at or below it are dropped, so a dropped
// connection or a reload resumes with no gap and no duplicate.

import { authHeaders, errorFrom } from "./api.js";

const TERMINAL = new Set(["response.completed", "response.failed", "response.cancelled"]);
const PAUSE = "response.incomplete";

export class RunStream {
  constructor(responseId, { onEvents, onState, lastSeq = -1 }) {
    this.id = responseId;
    this.onEvents = onEvents;          // (events: [{seq, type, data}]) => void
    this.onState = onState || (() => {}); // ("connecting"|"live"|"reconnecting"|"ended"|"paused"|"error", detail)
    this.lastSeq = lastSeq;
    this.controller = null;
    this.stopped = false;
    this.reconnects = 0;
  }

  stop() {
    this.stopped = true;
    if (this.controller) this.controller.abort();
  }

  // Reads until the log ends (terminal event, or a pause that is the last event);
  // resolves with "ended" | "paused" | "stopped"; reconnects by itself on network loss.
  async follow() {
    this.stopped = false;
    let delay = 250;
    while (!this.stopped) {
      this.onState(this.reconnects ? "reconnecting" : "connecting");
      try {
        const outcome = await this._once();
        if (outcome) return outcome;
        delay = 250; // the server closed the stream before the end (restart): go on at once
      } catch (err) {
        if (this.stopped) break;
        if (err && err.status && err.status < 500) {
          this.onState("error", err);
          return "error";
        }
        this.onState("reconnecting", err);
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 5000);
      }
      this.reconnects++;
    }
    return "stopped";
  }

  async _once() {
    this.controller = new AbortController();
    const headers = { ...authHeaders(), Accept: "text/event-stream" };
    if (this.lastSeq >= 0) headers["Last-Event-ID"] = String(this.lastSeq);
    const r = await fetch(`/v1/responses/${encodeURIComponent(this.id)}/events`, { headers, signal: this.controller.signal });
    if (!r.ok) {
      const text = await r.text();
      let data = null;
      try { data = JSON.parse(text); } catch { /* not JSON */ }
      throw errorFrom(r.status, data, text);
    }
    this.onState("live");
    const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let outcome = null;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      const blocks = buffer.split("\n\n");
      buffer = blocks.pop();
      const batch = [];
      for (const block of blocks) {
        const ev = parseBlock(block);
        if (!ev || ev.seq <= this.lastSeq) continue;
        this.lastSeq = ev.seq;
        batch.push(ev);
        if (TERMINAL.has(ev.type)) outcome = "ended";
        else if (ev.type === PAUSE) outcome = "paused";
        else outcome = null;
      }
      if (batch.length) this.onEvents(batch);
    }
    if (outcome) this.onState(outcome);
    return outcome;
  }
}

export function parseBlock(block) {
  let id = null, type = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "id") id = value;
    else if (field === "event") type = value;
    else if (field === "data") data.push(value);
  }
  if (!data.length) return null;
  let parsed;
  try { parsed = JSON.parse(data.join("\n")); } catch { return null; }
  const seq = id !== null ? Number(id) : Number(parsed.sequence_number);
  return { seq, type: parsed.type || type, data: parsed };
}
