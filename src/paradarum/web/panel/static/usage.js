// Each key's use over the last 30 days (GET /api/account/apikeys/{id}/usage): a
// bar chart with a scale, an inline SVG whose text alternative states the totals, so that an unused
// key is obvious before anyone revokes it. Drawn from attributes and classes only: the
// pages' Content-Security-Policy allows no inline style.

import { api } from "./api.js";
import { count, dateText, h, plural, svg } from "./ui.js";

export const USAGE_DAYS = 30;
const AT_ONCE = 3; // requests in flight, so that a long list is not a burst
const HEIGHT = 36;
const STEP = 5; // a 4-unit bar and a 1-unit gap
const SCALE = 30; // room on the left for the scale's numbers
const compact = new Intl.NumberFormat("en", { notation: "compact", maximumFractionDigits: 1 });

/** "Last 30 days: 1,204 requests, 2 refused" (the chart's name), and a short form. */
export function usageSummary(days) {
  const ok = days.reduce((sum, day) => sum + day.successes, 0);
  const refused = days.reduce((sum, day) => sum + day.refusals, 0);
  const span = `Last ${days.length} days`;
  if (!ok && !refused) return { used: false, text: `${span}: no requests`, short: "Not used" };
  const parts = [plural(ok, "request")];
  if (refused) parts.push(`${count(refused)} refused`);
  return { used: true, text: `${span}: ${parts.join(", ")}`, short: parts.join(" · ") };
}

/** "Dec 3, 2026: 40 requests, 2 refused" (the day is a UTC day). */
export function dayText(day) {
  const refused = day.refusals ? `, ${count(day.refusals)} refused` : "";
  return `${dateText(`${day.day}T12:00:00Z`)}: ${plural(day.successes, "request")}${refused}`;
}

// One bar a day, oldest left: successful requests, with refusals stacked on top; on the
// left a scale from 0 to the busiest day.
export function usageChart(days, text) {
  const most = Math.max(1, ...days.map((day) => day.successes + day.refusals));
  const bars = days.map((day, index) => {
    const x = SCALE + index * STEP;
    const total = day.successes + day.refusals;
    const tip = svg("title", {}, dayText(day));
    if (!total) {
      const base = { class: "bar-none", x, y: HEIGHT - 1, width: STEP - 1, height: 1 };
      return svg("g", { "data-day": day.day }, tip, svg("rect", base));
    }
    const whole = Math.max(2, Math.round((total / most) * HEIGHT));
    const refused = day.refusals ? Math.max(1, Math.round((day.refusals / total) * whole)) : 0;
    const ok = whole - refused;
    const bar = (className, top, height) =>
      height ? svg("rect", { class: className, x, y: top, width: STEP - 1, height }) : null;
    return svg(
      "g",
      { "data-day": day.day },
      tip,
      bar("bar-ok", HEIGHT - ok, ok),
      bar("bar-refused", HEIGHT - whole, refused),
    );
  });
  const width = SCALE + days.length * STEP - 1;
  const label = (y, value, baseline) =>
    svg("text", { class: "usage-scale", x: SCALE - 4, y, "text-anchor": "end", "dominant-baseline": baseline }, value);
  return svg(
    "svg",
    {
      class: "usage-chart",
      role: "img",
      tabindex: "0",
      "aria-label": text,
      viewBox: `0 0 ${width} ${HEIGHT}`,
      width,
      height: HEIGHT,
    },
    svg("line", { class: "usage-axis", x1: SCALE - 2, x2: width, y1: 0.5, y2: 0.5 }),
    svg("line", { class: "usage-axis", x1: SCALE - 2, x2: width, y1: HEIGHT - 0.5, y2: HEIGHT - 0.5 }),
    label(0, compact.format(most), "hanging"),
    label(HEIGHT, "0", "auto"),
    ...bars,
  );
}

// Pointing at a day (or choosing one with the arrow keys while the chart has focus)
// shows that day's numbers in place of the totals.
function explore(chart, readout, days, rest) {
  let current = -1;
  const groups = [...chart.querySelectorAll("g[data-day]")];

  function choose(index) {
    if (current >= 0) groups[current].classList.remove("is-current");
    current = index;
    if (index < 0) {
      readout.textContent = rest;
      return;
    }
    groups[index].classList.add("is-current");
    readout.textContent = dayText(days[index]);
  }

  chart.addEventListener("pointermove", (event) => {
    const box = chart.getBoundingClientRect();
    const unit = box.width / (SCALE + days.length * STEP - 1);
    const index = Math.floor((event.clientX - box.left - SCALE * unit) / (STEP * unit));
    choose(Math.min(days.length - 1, Math.max(0, index)));
  });
  chart.addEventListener("pointerleave", () => {
    if (document.activeElement !== chart) choose(-1);
  });
  chart.addEventListener("focus", () => choose(days.length - 1));
  chart.addEventListener("blur", () => choose(-1));
  chart.addEventListener("keydown", (event) => {
    const moves = { ArrowLeft: -1, ArrowRight: 1 };
    let next = current;
    if (event.key in moves) next = current + moves[event.key];
    else if (event.key === "Home") next = 0;
    else if (event.key === "End") next = days.length - 1;
    else return;
    event.preventDefault();
    choose(Math.min(days.length - 1, Math.max(0, next)));
  });
}

// A key younger than this that has not been used yet is new, not forgotten.
const NEW_KEY_MS = 7 * 24 * 3600 * 1000;

function draw(cell, key, result) {
  if (result.error) {
    cell.replaceChildren(h("span", { className: "muted", title: result.error }, "Unavailable"));
    return;
  }
  const summary = usageSummary(result.days);
  const chart = usageChart(result.days, summary.text);
  const isNew = Date.now() - Date.parse(key.createdAt) < NEW_KEY_MS;
  const rest = summary.used || !isNew ? summary.short : "No requests yet";
  // Says the totals; while a day is pointed at or chosen, that day's numbers. Unused
  // is a warning only for a key that has had the time to be used.
  const readout = h(
    "span",
    {
      className: summary.used || isNew ? "usage-total" : "usage-total usage-unused",
      "aria-live": "polite",
    },
    rest,
  );
  explore(chart, readout, result.days, rest);
  cell.replaceChildren(chart, readout);
}

/**
 * Returns cell(key): a chart's place in a key's row, drawn at once when this page has
 * loaded that key's use before, and when it arrives otherwise.
 */
export function usageCells() {
  const known = new Map(); // key id -> {days} | {error}
  const keys = new Map(); // key id -> the key, as last drawn
  const asked = new Set(); // queued or on their way
  const queue = [];
  let running = 0;

  async function load(id) {
    let result;
    try {
      const { data } = await api("GET", `/api/account/apikeys/${encodeURIComponent(id)}/usage`);
      result = { days: data.days.slice(-USAGE_DAYS) };
    } catch (error) {
      if (error.redirecting) return;
      result = { error: error.message };
    }
    known.set(id, result);
    // Rows are redrawn often: draw into whichever cell shows this key now.
    for (const cell of document.querySelectorAll(`[data-usage-for="${CSS.escape(String(id))}"]`)) {
      draw(cell, keys.get(id), result);
    }
  }

  function pump() {
    while (running < AT_ONCE && queue.length) {
      running += 1;
      load(queue.shift()).finally(() => {
        running -= 1;
        pump();
      });
    }
  }

  return function cell(key) {
    const place = h("div", { className: "usage", dataset: { usageFor: key.id } });
    keys.set(key.id, key);
    const result = known.get(key.id);
    if (result) {
      draw(place, key, result);
    } else {
      place.append(h("span", { className: "muted" }, "Loading…"));
      if (!asked.has(key.id)) {
        asked.add(key.id);
        queue.push(key.id);
        pump();
      }
    }
    return place;
  };
}
