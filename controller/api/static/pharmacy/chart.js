// The refrigerator temperature chart, drawn as inline SVG from GET /api/v1/devices/temperature: the 2–8 °C band
// shaded, the readings as a step line (a reading holds until the next one), the part outside the band in red, and
// each excursion the cabinet recorded marked where it was recorded, with a red bar along the time axis for how
// long it lasted. Axes carry units; the current value is written large, so the chart reads at a glance.

const NS = "http://www.w3.org/2000/svg";
const W = 760;
const H = 280;
const M = { left: 58, right: 18, top: 40, bottom: 46 };
const MIN_SPAN_MS = 10 * 60 * 1000;

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attrs))
    if (value !== null && value !== undefined) node.setAttribute(key, String(value));
  for (const child of children)
    if (child) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

function hhmm(ms) {
  return new Date(ms).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
}

/** Round tick values for [lo, hi]. */
function ticks(lo, hi, count) {
  const raw = (hi - lo) / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((f) => f * power).find((s) => s >= raw) || raw;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9; v += step) out.push(Number(v.toFixed(6)));
  return out;
}

/**
 * @param {{title: string, data: {now: string, band_c: number[], readings: {at: string, temperature_c: number}[],
 *          current_c: number|null, excursions: object[]}}} options
 */
export function temperatureChart({ title, data, id }) {
  const [low, high] = data.band_c;
  const now = Date.parse(data.now);
  const points = data.readings.map((r) => ({ t: Date.parse(r.at), c: r.temperature_c }));
  if (data.current_c !== null && data.current_c !== undefined) points.push({ t: now, c: data.current_c });
  const t0 = Math.min(
    now - MIN_SPAN_MS,
    ...points.map((p) => p.t),
    ...data.excursions.map((e) => Date.parse(e.since || e.recorded_at)),
  );
  const values = points.map((p) => p.c);
  const cLo = Math.floor(Math.min(low - 2, ...values) - 0.5);
  const cHi = Math.ceil(Math.max(high + 2, ...values) + 0.5);
  const x = (t) => M.left + ((t - t0) / (now - t0)) * (W - M.left - M.right);
  const y = (c) => M.top + ((cHi - c) / (cHi - cLo)) * (H - M.top - M.bottom);
  const inBand = (c) => c >= low && c <= high;

  const current = data.current_c;
  const ok = current === null || current === undefined ? null : inBand(current);
  const root = svg("svg", {
    id,
    class: "temperature-chart",
    viewBox: `0 0 ${W} ${H}`,
    width: W,
    height: H,
    role: "img",
    "aria-labelledby": `${id}-title ${id}-desc`,
  });
  const excursionCount = data.excursions.length;
  root.append(
    svg("title", { id: `${id}-title` }, title),
    svg(
      "desc",
      { id: `${id}-desc` },
      `Now ${current ?? "unknown"} °C, ${ok === false ? "outside" : "inside"} the ${low}–${high} °C band. ${excursionCount} excursion${excursionCount === 1 ? "" : "s"} recorded.`,
    ),
    svg("text", { x: M.left, y: 22, class: "chart-title" }, title),
    svg(
      "text",
      {
        x: W - M.right,
        y: 24,
        "text-anchor": "end",
        class: `chart-now ${ok === false ? "bad" : "good"}`,
        "data-now": current ?? "",
      },
      current === null || current === undefined
        ? "no reading"
        : `${current.toFixed(1)} °C ${ok ? "in range" : "OUT OF RANGE"}`,
    ),
  );
  // The safe band.
  root.append(
    svg("rect", { x: M.left, y: y(high), width: W - M.left - M.right, height: y(low) - y(high), class: "band" }),
    svg("text", { x: M.left + 6, y: y(high) + 14, class: "band-label" }, `safe ${low}–${high} °C`),
  );
  // Excursions the cabinet recorded: shaded over their duration, marked where recorded.
  for (const e of data.excursions) {
    const end = Date.parse(e.recorded_at);
    const start = e.since ? Date.parse(e.since) : end;
    root.append(
      svg("rect", {
        x: x(start),
        y: H - M.bottom - 10,
        width: Math.max(2, x(end) - x(start)),
        height: 10,
        class: "excursion-span",
      }),
      svg("line", { x1: x(end), x2: x(end), y1: M.top, y2: H - M.bottom, class: "excursion-mark" }),
      // Labels sit on the side of the mark that has room.
      svg(
        "text",
        {
          x: x(end) > W / 2 ? x(end) - 6 : x(end) + 6,
          y: M.top + 14,
          "text-anchor": x(end) > W / 2 ? "end" : "start",
          class: "excursion-label",
        },
        `excursion ${e.minutes ?? "?"} min, worst ${e.worst_c ?? e.temperature_c} °C`,
      ),
    );
  }
  // Axes: °C on the left, local time below.
  for (const c of ticks(cLo, cHi, 6)) {
    root.append(
      svg("line", { x1: M.left, x2: W - M.right, y1: y(c), y2: y(c), class: "grid" }),
      svg("text", { x: M.left - 8, y: y(c) + 5, "text-anchor": "end", class: "tick" }, `${c}`),
    );
  }
  const minutes = (now - t0) / 60000;
  const stepMin = [1, 2, 5, 10, 15, 30, 60, 120, 240, 480].find((s) => minutes / s <= 6) || 720;
  for (let t = Math.ceil(t0 / (stepMin * 60000)) * stepMin * 60000; t <= now; t += stepMin * 60000) {
    root.append(
      svg("line", { x1: x(t), x2: x(t), y1: H - M.bottom, y2: H - M.bottom + 6, class: "axis" }),
      svg("text", { x: x(t), y: H - M.bottom + 22, "text-anchor": "middle", class: "tick" }, hhmm(t)),
    );
  }
  root.append(
    svg("line", { x1: M.left, x2: M.left, y1: M.top, y2: H - M.bottom, class: "axis" }),
    svg("line", { x1: M.left, x2: W - M.right, y1: H - M.bottom, y2: H - M.bottom, class: "axis" }),
    svg(
      "text",
      {
        x: 16,
        y: (M.top + H - M.bottom) / 2,
        transform: `rotate(-90 16 ${(M.top + H - M.bottom) / 2})`,
        "text-anchor": "middle",
        class: "axis-label",
      },
      "Temperature (°C)",
    ),
    svg(
      "text",
      { x: (M.left + W - M.right) / 2, y: H - 6, "text-anchor": "middle", class: "axis-label" },
      "Time (local)",
    ),
  );
  // The readings: each holds until the next; segments outside the band are drawn in red.
  for (let i = 0; i < points.length; i += 1) {
    const p = points[i];
    const next = points[i + 1] || { t: now, c: p.c };
    const cls = inBand(p.c) ? "series" : "series out";
    root.append(svg("path", { d: `M${x(p.t)},${y(p.c)} H${x(next.t)} V${y(next.c)}`, class: cls }));
  }
  for (const p of points)
    if (!inBand(p.c)) root.append(svg("circle", { cx: x(p.t), cy: y(p.c), r: 4, class: "out-point" }));
  return root;
}
