// Inline SVG charts drawn with DOM calls. Each chart has a <title> and a text table
// fallback is offered by the views for screen readers.

import { h, s } from "./dom.js";

export const COLOURS = ["#0b57d0", "#b42318", "#116329", "#7d4e00", "#6f42c1", "#0a7d8c"];

// Horizontal bars, one per {label, value}; negative values go left of the zero line.
export function hbar(rows, { title = "", format = (v) => v.toFixed(4), colour = (r) => r.value < 0 ? "#0b57d0" : "#b42318", width = 720 } = {}) {
  const labelW = Math.min(220, 12 + 7.2 * Math.max(4, ...rows.map((r) => String(r.label).length)));
  const barH = 22, gap = 6, top = 8, valueW = 90;
  const height = top * 2 + rows.length * (barH + gap);
  const max = Math.max(1e-12, ...rows.map((r) => Math.abs(r.value)));
  const anyNeg = rows.some((r) => r.value < 0);
  const plotW = width - labelW - valueW;
  const zero = labelW + (anyNeg ? plotW / 2 : 0);
  const scale = (anyNeg ? plotW / 2 : plotW) / max;
  const svg = s("svg", { class: "chart", viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": title },
    s("title", {}, title));
  rows.forEach((r, i) => {
    const y = top + i * (barH + gap);
    const w = Math.abs(r.value) * scale;
    const x = r.value < 0 ? zero - w : zero;
    svg.append(
      s("text", { x: labelW - 6, y: y + barH * 0.7, "text-anchor": "end" }, String(r.label)),
      s("rect", { x, y, width: Math.max(w, 1), height: barH, fill: colour(r), "data-label": r.label, "data-value": r.value },
        s("title", {}, `${r.label}: ${format(r.value)}`)),
      s("text", { x: r.value < 0 ? labelW + plotW + 4 : Math.min(zero + w + 4, labelW + plotW + 4), y: y + barH * 0.7 }, format(r.value)),
    );
  });
  svg.append(s("line", { class: "axis", x1: zero, x2: zero, y1: 0, y2: height }));
  return svg;
}

// Stacked columns: one column per x label, one segment per series.
export function stacked(xLabels, series, { title = "", format = (v) => v.toFixed(4), width = 720, height = 260 } = {}) {
  const left = 64, bottom = 42, top = 10, right = 10;
  const totals = xLabels.map((_, i) => series.reduce((a, se) => a + (se.values[i] || 0), 0));
  const max = Math.max(1e-12, ...totals);
  const plotW = width - left - right, plotH = height - top - bottom;
  const colW = plotW / Math.max(1, xLabels.length);
  const svg = s("svg", { class: "chart", viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": title },
    s("title", {}, title));
  for (let t = 0; t <= 4; t++) {
    const v = (max * t) / 4, y = top + plotH - (v / max) * plotH;
    svg.append(s("line", { x1: left, x2: width - right, y1: y, y2: y, stroke: "#d0d7de" }),
      s("text", { x: left - 4, y: y + 4, "text-anchor": "end" }, format(v)));
  }
  xLabels.forEach((label, i) => {
    let y = top + plotH;
    series.forEach((se, k) => {
      const v = se.values[i] || 0;
      const hgt = (v / max) * plotH;
      y -= hgt;
      if (hgt > 0) svg.append(s("rect", { x: left + i * colW + colW * 0.15, y, width: colW * 0.7, height: hgt,
        fill: se.colour || COLOURS[k % COLOURS.length] }, s("title", {}, `${label} · ${se.name}: ${format(v)}`)));
    });
    if (xLabels.length <= 16 || i % Math.ceil(xLabels.length / 16) === 0)
      svg.append(s("text", { x: left + i * colW + colW / 2, y: height - bottom + 16, "text-anchor": "middle" }, label));
  });
  svg.append(s("line", { class: "axis", x1: left, x2: width - right, y1: top + plotH, y2: top + plotH }));
  return svg;
}

export function legend(series) {
  return h("div", { class: "legend" }, series.map((se, k) => {
    const item = h("span", {}, se.name);
    item.style.setProperty("--c", se.colour || COLOURS[k % COLOURS.length]); // CSSOM: allowed by the CSP
    return item;
  }));
}

// Grouped columns: for each x label, one bar per series side by side.
export function grouped(xLabels, series, { title = "", format = (v) => (v * 100).toFixed(0) + "%", width = 560, height = 200 } = {}) {
  const left = 44, bottom = 38, top = 8, right = 8;
  const max = Math.max(1e-12, ...series.flatMap((se) => se.values));
  const plotW = width - left - right, plotH = height - top - bottom;
  const colW = plotW / Math.max(1, xLabels.length);
  const barW = (colW * 0.8) / series.length;
  const svg = s("svg", { class: "chart", viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": title }, s("title", {}, title));
  for (let t = 0; t <= 2; t++) {
    const v = (max * t) / 2, y = top + plotH - (v / max) * plotH;
    svg.append(s("line", { x1: left, x2: width - right, y1: y, y2: y, stroke: "#d0d7de" }),
      s("text", { x: left - 4, y: y + 4, "text-anchor": "end" }, format(v)));
  }
  xLabels.forEach((label, i) => {
    series.forEach((se, k) => {
      const v = se.values[i] || 0, hh = (v / max) * plotH;
      svg.append(s("rect", { x: left + i * colW + colW * 0.1 + k * barW, y: top + plotH - hh, width: barW, height: Math.max(hh, 0),
        fill: se.colour || COLOURS[k] }, s("title", {}, `${label} · ${se.name}: ${format(v)}`)));
    });
    svg.append(s("text", { x: left + i * colW + colW / 2, y: height - bottom + 14, "text-anchor": "middle" }, String(i + 1)));
  });
  svg.append(s("line", { class: "axis", x1: left, x2: width - right, y1: top + plotH, y2: top + plotH }));
  return svg;
}
