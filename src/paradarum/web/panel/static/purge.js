// The Purge section: URLs (checked against the account's zones as they are typed), tags,
// or everything (after a question that names the zones), and the history, which follows
// each purge's delivery to every cache node until it is finished.

import { api } from "./api.js";
import { badge } from "./keyrows.js";
import { pagedList } from "./paged.js";
import {
  byId,
  clearErrors,
  count,
  h,
  openDialog,
  plural,
  relativeTimeElement,
  setBusy,
  setText,
  show,
  showErrors,
} from "./ui.js";

const PURGES_URL = "/api/account/purges?limit=10";
// How often an unfinished purge is asked about again.
const FOLLOW_MS = 1500;
// Targets shown in a history item before "and N more".
const SHOWN_TARGETS = 5;
const KIND_TEXT = { urls: "URLs", tags: "Tags", everything: "Everything" };
const PURGE_STATUS = {
  queued: ["pending", "Delivering"],
  running: ["pending", "Delivering"],
  done: ["active", "Done"],
  failed: ["leaked", "Failed"],
};

// --- Rules mirrored from the server (src/paradarum/hostnames.py), for the typing -----

/** Whether `zone` covers `host`: exactly, or `*.example.com` for any subdomain. */
export function covers(zone, host) {
  if (!zone.startsWith("*.")) return host === zone;
  const suffix = zone.slice(1);
  return host.length > suffix.length && host.endsWith(suffix);
}

/** What is wrong with one line of the URL list, or null when the server will take it. */
export function urlProblem(line, zones) {
  let url;
  try {
    url = new URL(line);
  } catch {
    return "is not a full URL: start it with https://";
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return "must start with http:// or https://";
  }
  if (url.username || url.password) return "must not contain a user name or password";
  const host = url.hostname.replace(/\.$/, ""); // lowercase and IDNA-encoded already
  const mine = zones.filter((zone) => covers(zone.hostname, host));
  if (mine.some((zone) => zone.status === "active")) return null;
  if (mine.length) return `is on ${mine[0].hostname}, which is not verified yet (see Zones)`;
  return `is on ${host}, which is not one of your zones`;
}

const lines = (text) =>
  text
    .split("\n")
    .map((line) => line.trim())
    .filter(Boolean);

/**
 * `state.zones` holds the account's zones (the page loads them);
 * `hooks.refreshZones()` loads them again.
 */
export function purgeSection(state, hooks) {
  const status = byId("purge-status");
  const urlsForm = byId("purge-urls-form");
  const urlsInput = byId("purge-urls");
  const urlChecks = byId("purge-urls-check");
  const tagsForm = byId("purge-tags-form");
  const everythingButton = byId("purge-everything");
  const everythingDialog = byId("purge-everything-dialog");
  const everythingConfirm = byId("purge-everything-confirm");
  const everythingError = byId("purge-everything-error");
  const historyTitle = byId("purges-title");
  let purges = [];
  const following = new Map(); // purge id -> timer

  const activeZones = () => state.zones.filter((zone) => zone.status === "active");

  // --- Zones: what may be purged at all -------------------------------------------

  function renderZones() {
    const none = activeZones().length === 0;
    for (const id of ["purge-urls-fields", "purge-tags-fields"]) byId(id).disabled = none;
    everythingButton.disabled = none;
    const note = byId("purge-zones-note");
    if (none) {
      note.replaceChildren(
        "Purges reach only your active zones, and you have none yet: ",
        h("a", { href: "/account/zones" }, "add and verify a zone"),
        " first.",
      );
    }
    show(note, none);
    checkUrls();
  }

  // --- URLs, checked as they are typed ------------------------------------------------

  function checkUrls() {
    const given = lines(urlsInput.value);
    const items = [];
    given.forEach((line, index) => {
      const problem = urlProblem(line, state.zones);
      if (problem) {
        items.push(
          h(
            "li",
            { className: "check-bad" },
            `Line ${index + 1}: `,
            h("code", {}, line),
            ` ${problem}.`,
          ),
        );
      }
    });
    const max = Number(urlsInput.dataset.max);
    if (given.length > max) {
      items.push(h("li", { className: "check-bad" }, `${count(given.length)} URLs: at most ${max} at a time.`));
    }
    if (given.length && !items.length) {
      const all = given.length === 1 ? "It is on one of your active zones." : "All are on your active zones.";
      items.push(h("li", { className: "check-ok" }, `${plural(given.length, "URL")}. ${all}`));
    }
    urlChecks.replaceChildren(...items);
    const bad = items.some((item) => item.className === "check-bad");
    if (bad) urlsInput.setAttribute("aria-invalid", "true");
    else urlsInput.removeAttribute("aria-invalid");
    return !bad;
  }

  urlsInput.addEventListener("input", checkUrls);

  // --- Sending ------------------------------------------------------------------------

  async function send(body, { form = null, button, busyLabel, done }) {
    if (form) clearErrors(form);
    setBusy(button, true, busyLabel);
    try {
      const { data, message } = await api("POST", "/api/account/purge", { body });
      setText(status, message);
      done(data);
      await loadHistory();
      return true;
    } catch (error) {
      if (error.redirecting) return false;
      if (form) showErrors(form, error);
      else throw error;
      // A zone may have changed elsewhere: the checks and the forms catch up.
      if (error.status === 403 || error.status === 400) hooks.refreshZones().then(renderZones);
      return false;
    } finally {
      setBusy(button, false);
    }
  }

  urlsForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    await send(
      { urls: lines(urlsInput.value) },
      {
        form: urlsForm,
        button: byId("purge-urls-submit"),
        busyLabel: "Purging…",
        done() {
          urlsForm.reset();
          checkUrls();
        },
      },
    );
  });

  tagsForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    await send(
      { tags: lines(byId("purge-tags").value) },
      {
        form: tagsForm,
        button: byId("purge-tags-submit"),
        busyLabel: "Purging…",
        done: () => tagsForm.reset(),
      },
    );
  });

  // --- Everything, after a question naming the zones --------------------------------

  everythingButton.addEventListener("click", () => {
    byId("purge-everything-zones").replaceChildren(
      ...activeZones().map((zone) => h("li", {}, h("strong", {}, zone.hostname))),
    );
    setText(everythingError, "");
    openDialog(everythingDialog, { opener: everythingButton, fallback: historyTitle });
  });
  byId("purge-everything-cancel").addEventListener("click", () => everythingDialog.close());

  everythingConfirm.addEventListener("click", async () => {
    setText(everythingError, "");
    try {
      const sent = await send(
        { everything: true },
        { button: everythingConfirm, busyLabel: "Purging…", done() {} },
      );
      if (sent && everythingDialog.open) everythingDialog.close();
    } catch (error) {
      setText(everythingError, error.message);
    }
  });

  // --- History, followed while it is delivered --------------------------------------

  const loadHistory = pagedList("purges", PURGES_URL, {
    errorText: "Could not load your purges.",
    onData(items, append) {
      purges = append ? purges.concat(items) : items;
      render();
      for (const purge of items) follow(purge);
      return purges.length;
    },
  });

  function render() {
    byId("purges-body").replaceChildren(...purges.map(purgeItem));
  }

  // Each purge's nodes come from its own endpoint; an unfinished one is asked again
  // until every node has answered for good.
  function follow(purge) {
    clearTimeout(following.get(purge.id));
    following.delete(purge.id);
    if (purge.nodes && (purge.status === "done" || purge.status === "failed")) return;
    const timer = setTimeout(
      async () => {
        try {
          const { data } = await api("GET", `/api/account/purges/${encodeURIComponent(purge.id)}`);
          const at = purges.findIndex((item) => item.id === data.id);
          if (at < 0) return;
          const finishedNow = isFinished(data) && !isFinished(purges[at]);
          purges[at] = data;
          const old = byId("purges-body").querySelector(`[data-purge-id="${data.id}"]`);
          if (old) old.replaceWith(purgeItem(data));
          if (finishedNow) setText(status, finishedText(data));
          follow(data);
        } catch (error) {
          if (!error.redirecting) following.delete(purge.id);
        }
      },
      purge.nodes ? FOLLOW_MS : 0,
    );
    following.set(purge.id, timer);
  }

  const isFinished = (purge) => purge.status === "done" || purge.status === "failed";

  function finishedText(purge) {
    if (purge.status === "failed") return `Purge ${purge.id} failed on a cache node.`;
    return `Purge ${purge.id} reached every cache node.`;
  }

  function purgeItem(purge) {
    const [kind, text] = PURGE_STATUS[purge.status] || ["pending", purge.status];
    const shown = purge.targets.slice(0, SHOWN_TARGETS);
    const more = purge.targets.length - shown.length;
    return h(
      "li",
      { className: "purge", dataset: { purgeId: purge.id } },
      h(
        "div",
        { className: "purge-head" },
        h("span", { className: "purge-kind" }, KIND_TEXT[purge.kind] || purge.kind),
        badge(kind, text),
        h("span", { className: "muted purge-when" }, relativeTimeElement(purge.createdAt)),
      ),
      purge.kind === "everything"
        ? h("p", { className: "purge-targets muted" }, "Everything cached for your active zones")
        : h(
            "ul",
            { className: "purge-targets", "aria-label": "What was purged" },
            ...shown.map((target) => h("li", {}, h("code", {}, target))),
            more > 0 ? h("li", { className: "muted" }, `and ${count(more)} more`) : null,
          ),
      nodeList(purge),
    );
  }

  function nodeList(purge) {
    if (!purge.nodes) return h("p", { className: "muted purge-nodes-loading" }, "Asking the cache nodes…");
    if (!purge.nodes.length) {
      return h("p", { className: "muted" }, "No cache node is configured on this server: nothing was sent.");
    }
    return h(
      "ul",
      { className: "purge-nodes", "aria-label": `Cache nodes for purge ${purge.id}` },
      ...purge.nodes.map((node) =>
        h(
          "li",
          { className: "purge-node", dataset: { node: node.node } },
          h("span", { className: "purge-node-label" }, node.node),
          nodeBadge(node),
          node.lastError && node.status !== "done"
            ? h("span", { className: "purge-node-reason" }, node.lastError)
            : null,
        ),
      ),
    );
  }

  function nodeBadge(node) {
    if (node.status === "done") return badge("active", "Done");
    if (node.status === "failed") return badge("leaked", "Failed");
    return badge("pending", node.lastError ? "Retrying" : "Sending");
  }

  // Leaving the page stops the following.
  window.addEventListener("pagehide", () => {
    for (const timer of following.values()) clearTimeout(timer);
    following.clear();
  });

  return { load: loadHistory, renderZones };
}
