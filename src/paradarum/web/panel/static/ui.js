// Small DOM helpers. Every string that came from a user or the server is set with
// textContent or setAttribute, never parsed as HTML.

/** Build an element: h("td", {className: "x", title: "y"}, "text", childNode). */
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "className") element.className = value;
    else if (name === "dataset") Object.assign(element.dataset, value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

const SVG_NS = "http://www.w3.org/2000/svg";

/** The same for SVG: svg("rect", {x: 0, class: "bar"}). Attributes only, never markup. */
export function svg(tag, attributes = {}, ...children) {
  const element = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value !== null && value !== undefined) element.setAttribute(name, String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

export const byId = (id) => document.getElementById(id);

export function show(element, visible = true) {
  element.hidden = !visible;
}

export function setText(element, text) {
  element.textContent = text;
  element.hidden = !text;
}

// --- Time -----------------------------------------------------------------

const UNITS = [
  ["year", 365 * 24 * 3600],
  ["month", 30 * 24 * 3600],
  ["week", 7 * 24 * 3600],
  ["day", 24 * 3600],
  ["hour", 3600],
  ["minute", 60],
];
const relativeFormat = new Intl.RelativeTimeFormat("en", { numeric: "auto" });
const dateFormat = new Intl.DateTimeFormat("en", { dateStyle: "medium" });

/** "just now", "3 minutes ago", "yesterday", "2 months ago". */
export function relativeTime(iso, now = Date.now()) {
  const seconds = Math.round((Date.parse(iso) - now) / 1000);
  if (Math.abs(seconds) < 45) return "just now";
  for (const [unit, size] of UNITS) {
    if (Math.abs(seconds) >= size || unit === "minute") {
      return relativeFormat.format(Math.round(seconds / size), unit);
    }
  }
  return "just now";
}

/** "2026-11-27 09:14:03 UTC": the exact moment, shown on hover. */
export function utcText(iso) {
  return `${new Date(iso).toISOString().slice(0, 19).replace("T", " ")} UTC`;
}

/** A <time> showing a relative time, kept fresh by refreshTimes(). */
export function relativeTimeElement(iso) {
  return h(
    "time",
    { datetime: iso, title: utcText(iso), dataset: { relative: "" } },
    relativeTime(iso),
  );
}

/** How long until `iso`: "in 40 minutes", "in 5 hours", "tomorrow", "in 30 days". */
export function untilTime(iso, now = Date.now()) {
  const seconds = (Date.parse(iso) - now) / 1000;
  if (seconds < 60) return "now";
  if (seconds < 55 * 60) return relativeFormat.format(Math.round(seconds / 60), "minute");
  if (seconds < 36 * 3600) return relativeFormat.format(Math.round(seconds / 3600), "hour");
  return relativeFormat.format(Math.round(seconds / 86400), "day");
}

/** A <time> showing a relative time, kept fresh by refreshTimes(). */
export function untilTimeElement(iso) {
  return h("time", { datetime: iso, title: utcText(iso), dataset: { until: "" } }, untilTime(iso));
}

/** "Nov 27, 2026": the date in the reader's calendar. */
export function dateText(iso) {
  return dateFormat.format(new Date(iso));
}

/** A <time> showing the date in the reader's calendar. */
export function dateElement(iso) {
  return h("time", { datetime: iso, title: utcText(iso) }, dateText(iso));
}

export function refreshTimes(root = document) {
  const now = Date.now();
  for (const element of root.querySelectorAll("time[data-relative]")) {
    element.textContent = relativeTime(element.dateTime, now);
  }
  for (const element of root.querySelectorAll("time[data-until]")) {
    element.textContent = untilTime(element.dateTime, now);
  }
}

const numberFormat = new Intl.NumberFormat("en");

/** "1,204". */
export function count(value) {
  return numberFormat.format(value);
}

/** "1 request", "1,204 requests". */
export function plural(value, one, many = `${one}s`) {
  return `${count(value)} ${value === 1 ? one : many}`;
}

/** The key's public part as the table shows it: "pdm_AbCd…". */
export function prefixText(prefix) {
  return `${prefix}…`;
}

// --- Forms ----------------------------------------------------------------

export function clearErrors(form) {
  for (const element of form.querySelectorAll("[data-error-for]")) setText(element, "");
  for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  setText(form.querySelector("[data-form-error]"), "");
}

/**
 * Show an ApiError in a form: each field's problems under that field, anything
 * else (or the message when no field matched) in the form's alert.
 */
export function showErrors(form, error) {
  clearErrors(form);
  let placed = false;
  for (const [field, problems] of Object.entries(error.fieldErrors || {})) {
    const slot = form.querySelector(`[data-error-for="${CSS.escape(field)}"]`);
    let input = form.elements.namedItem(field);
    if (input instanceof RadioNodeList) input = input[0]; // a group of checkboxes or radios
    if (!slot || !input) continue;
    setText(slot, problems.join(" "));
    input.setAttribute("aria-invalid", "true");
    if (!placed) input.focus();
    placed = true;
  }
  if (!placed) setText(form.querySelector("[data-form-error]"), error.message);
}

/** Disable a submit button while its request runs, with a label saying so. */
export function setBusy(button, busy, busyLabel) {
  if (busy) {
    button.dataset.label = button.textContent;
    button.textContent = busyLabel;
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
  } else {
    if (button.dataset.label) button.textContent = button.dataset.label;
    delete button.dataset.label;
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
}

// --- Dialogs --------------------------------------------------------------

/**
 * Open a modal <dialog> (it takes focus; Escape closes it) and give focus back
 * to the opener when it closes, or to `fallback` if the opener is gone.
 */
export function openDialog(dialog, { opener = document.activeElement, fallback = null } = {}) {
  dialog.addEventListener(
    "close",
    () => {
      const target = opener && opener.isConnected && !opener.disabled ? opener : fallback;
      if (target) target.focus();
    },
    { once: true },
  );
  dialog.showModal();
}

// --- Copying ----------------------------------------------------------------

/**
 * Put `text` on the clipboard. Where the clipboard API is missing or refused, select
 * `element`'s text (an input, or any element) and try the older copy command, so that
 * Ctrl+C works at worst. Resolves true when the text was copied.
 */
export async function copyText(text, element) {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch {
      // Refused: fall back to selecting it.
    }
  }
  if (element instanceof HTMLInputElement) {
    element.focus();
    element.select();
  } else if (element) {
    const range = document.createRange();
    range.selectNodeContents(element);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }
  try {
    return document.execCommand("copy");
  } catch {
    return false;
  }
}

/**
 * A secret shown once, in `dialog`'s read-only `field` (a new key, a signing secret).
 * It lives there only while the dialog is open: Done, Escape and leaving the page
 * (even into the back/forward cache) forget it, with whatever `forget` clears besides.
 * The Copy button says whether the clipboard took it, else selects it for Ctrl+C.
 * Returns `show(value)`, which puts the value in the field (the caller opens the dialog).
 */
export function secretDialog({ dialog, field, copyButton, copyStatus, done, noun, forget = () => {} }) {
  let copyTimer = 0;

  function resetCopy() {
    clearTimeout(copyTimer);
    copyButton.textContent = "Copy";
    copyStatus.textContent = "";
  }

  function forgetSecret() {
    field.value = "";
    forget();
    resetCopy();
  }

  function end() {
    forgetSecret();
    if (dialog.open) dialog.close();
  }

  done.addEventListener("click", end);
  dialog.addEventListener("close", forgetSecret);
  window.addEventListener("pagehide", end);
  field.addEventListener("focus", () => field.select());
  field.addEventListener("click", () => field.select());

  copyButton.addEventListener("click", async () => {
    const value = field.value;
    if (!value) return;
    const copied = await copyText(value, field);
    clearTimeout(copyTimer);
    if (copied) {
      copyButton.textContent = "Copied";
      copyStatus.textContent = "Copied to your clipboard.";
      copyTimer = setTimeout(resetCopy, 4000);
    } else {
      copyStatus.textContent = `The ${noun} is selected: press Ctrl+C (⌘C on a Mac) to copy it.`;
    }
  });

  return function show(value) {
    field.value = value;
    resetCopy();
  };
}
