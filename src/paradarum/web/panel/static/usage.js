// Each key's use over the last 30 days (GET /api/account/apikeys/{id}/usage): a small
// bar chart, an inline SVG whose text alternative states the totals, so that an unused
// key is obvious before anyone revokes it. Drawn from attributes and classes only: the
// pages' Content-Security-Policy allows no inline style.

import { api } from "./api.js";
import { count, dateText, h, plural, svg } from "./ui.js";

export const USAGE_DAYS = 30;
const AT_ONCE = 3; // requests in flight, so that a long list is not a burst
const HEIGHT = 28;
const STEP = 4; // a 3-unit bar and a 1-unit gap

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

function dayTitle(day) {
  const refused = day.refusals ? `, ${count(day.refusals)} refused` : "";
  return `${dateText(`${day.day}T12:00:00Z`)}: ${plural(day.successes, "request")}${refused}`;
}

// One bar a day, oldest left: successful requests, with refusals stacked on top.
export function usageChart(days, text) {
  const most = Math.max(1, ...days.map((day) => day.successes + day.refusals));
  const bars = days.map((day, index) => {
    const x = index * STEP;
    const total = day.successes + day.refusals;
    const tip = svg("title", {}, dayTitle(day));
    if (!total) {
      const base = { class: "bar-none", x, y: HEIGHT - 1, width: STEP - 1, height: 1 };
      return svg("g", {}, tip, svg("rect", base));
    }
    const whole = Math.max(2, Math.round((total / most) * HEIGHT));
    const refused = day.refusals ? Math.max(1, Math.round((day.refusals / total) * whole)) : 0;
    const ok = whole - refused;
    const bar = (className, top, height) =>
      height ? svg("rect", { class: className, x, y: top, width: STEP - 1, height }) : null;
    return svg(
      "g",
      {},
      tip,
      bar("bar-ok", HEIGHT - ok, ok),
      bar("bar-refused", HEIGHT - whole, refused),
    );
  });
  const width = days.length * STEP - 1;
  return svg(
    "svg",
    {
      class: "usage-chart",
      role: "img",
      "aria-label": text,
      viewBox: `0 0 ${width} ${HEIGHT}`,
      width,
      height: HEIGHT,
    },
    ...bars,
  );
}

function draw(cell, result) {
  if (result.error) {
    cell.replaceChildren(h("span", { className: "muted", title: result.error }, "Unavailable"));
    return;
  }
  const summary = usageSummary(result.days);
  cell.replaceChildren(
    usageChart(result.days, summary.text),
    // The chart's name says the same to a screen reader.
    h(
      "span",
      {
        className: summary.used ? "usage-total" : "usage-total usage-unused",
        "aria-hidden": "true",
      },
      summary.short,
    ),
  );
}

/**
 * Returns cell(key): a chart's place in a key's row, drawn at once when this page has
 * loaded that key's use before, and when it arrives otherwise.
 */
export function usageCells() {
  const known = new Map(); // key id -> {days} | {error}
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
      draw(cell, result);
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
    const result = known.get(key.id);
    if (result) {
      draw(place, result);
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
