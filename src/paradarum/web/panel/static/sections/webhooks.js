// Account settings › Webhooks: the addresses Paradarum sends this account's events to.
// Add one (its signing secret is shown once), turn it off and on, roll its secret,
// delete it, and read its delivery log, where a delivery can be sent again.
// Every rule is the API's: this page shows its sentences.

import { api, nextLink } from "../api.js";
import { badge } from "../keyrows.js";
import { pagedList } from "../paged.js";
import { settingsSection } from "../settings.js";
import {
  byId,
  clearErrors,
  dateElement,
  h,
  openDialog,
  relativeTimeElement,
  secretDialog,
  setBusy,
  setText,
  showErrors,
  utcText,
} from "../ui.js";

const WEBHOOKS_URL = "/api/account/webhooks";
const DELIVERIES_PAGE = 20;
// How often an open delivery log with deliveries on their way asks again.
const FOLLOW_MS = 2000;

function dueSoon(delivery) {
  if (delivery.status !== "queued") return false;
  return !delivery.nextAttemptAt || Date.parse(delivery.nextAttemptAt) - Date.now() < 60_000;
}

// A delivery's state as a badge, in the colours the key list uses for the same ideas:
// queued (not tried yet, or tried and waiting for its next attempt), delivered, failed
// (given up on).
function deliveryBadge(delivery) {
  if (delivery.status === "delivered") return badge("active", "Delivered");
  if (delivery.status === "failed") return badge("revoked", "Failed");
  if (delivery.status === "queued") return badge("pending", delivery.attempts ? "Retrying" : "Queued");
  return badge("pending", delivery.status);
}

const webhookPath = (webhook) => `/api/account/webhooks/${encodeURIComponent(webhook.id)}`;

settingsSection(() => {
  const state = { webhooks: [] };
  const title = byId("webhooks-title");
  const status = byId("webhooks-status");
  const form = byId("new-webhook-form");
  const secretModal = byId("secret-dialog");
  const rollDialog = byId("webhook-roll-dialog");
  const rollForm = byId("webhook-roll-form");
  const deleteDialog = byId("webhook-delete-dialog");
  // The delivery logs a person opened stay open when the list is drawn again.
  const openLogs = new Set();
  let rolling = null;
  let deleting = null;

  const load = pagedList("webhooks", WEBHOOKS_URL, {
    errorText: "Could not load your endpoints.",
    onData(items, append) {
      state.webhooks = append ? state.webhooks.concat(items) : items;
      render();
      return state.webhooks.length;
    },
  });

  function render() {
    byId("webhooks-body").replaceChildren(...state.webhooks.map(webhookItem));
  }

  function replace(webhook) {
    state.webhooks = state.webhooks.map((other) => (other.id === webhook.id ? webhook : other));
    render();
  }

  function rowButton(text, label, className, onClick) {
    const button = h("button", { type: "button", className, "aria-label": label }, text);
    button.addEventListener("click", () => onClick(button));
    return button;
  }

  // Paused by a person or turned off by Paradarum: the note under it says which.
  function stateBadge(webhook) {
    return webhook.enabled ? badge("active", "Enabled") : badge("revoked", "Disabled");
  }

  function webhookItem(webhook) {
    const actions = h(
      "div",
      { className: "zone-actions" },
      rowButton(
        webhook.enabled ? "Disable" : "Enable",
        `${webhook.enabled ? "Disable" : "Enable"} ${webhook.url}`,
        "button button-small",
        (button) => setEnabled(webhook, !webhook.enabled, button),
      ),
      rowButton("Roll secret", `Roll the secret of ${webhook.url}`, "button button-small", (button) =>
        askRoll(webhook, button),
      ),
      rowButton(
        "Delete",
        `Delete ${webhook.url}`,
        "button button-danger-quiet button-small",
        (button) => askDelete(webhook, button),
      ),
    );
    const events = webhook.events.map((event) => h("li", {}, h("code", {}, event)));
    return h(
      "li",
      { className: "zone webhook", dataset: { webhookId: webhook.id } },
      h(
        "div",
        { className: "zone-head" },
        h("h3", { className: "zone-host webhook-url", tabindex: "-1" }, webhook.url),
        stateBadge(webhook),
        h("span", { className: "zone-when muted" }, "Added ", dateElement(webhook.createdAt)),
      ),
      disabledNote(webhook),
      h("ul", { className: "webhook-events", "aria-label": `Events sent to ${webhook.url}` }, ...events),
      h("p", { className: "muted webhook-meta" }, `Endpoint ID ${webhook.id}`),
      actions,
      deliveryLog(webhook),
    );
  }

  // An endpoint Paradarum turned off after failing for a day says so, and why; one
  // that has been failing says since when, before that happens.
  function disabledNote(webhook) {
    if (!webhook.enabled && webhook.disabledReason) {
      return h(
        "p",
        { className: "note" },
        webhook.disabledReason,
        " Fix your receiver, then press Enable; the delivery log can send what failed again.",
      );
    }
    if (webhook.enabled && webhook.failingSince) {
      return h(
        "p",
        { className: "note" },
        "Deliveries have failed since ",
        h("time", { datetime: webhook.failingSince, title: utcText(webhook.failingSince) }, utcText(webhook.failingSince)),
        ". Each is retried for a day; if none gets through, the endpoint is turned off and the owner is emailed.",
      );
    }
    return null;
  }

  // --- Delivery log ----------------------------------------------------------

  function deliveryLog(webhook) {
    const body = h("tbody", {});
    const empty = h("p", { className: "muted", hidden: true }, "No deliveries yet: they appear here as events happen.");
    const error = h("p", { className: "alert", role: "alert", hidden: true });
    const table = h(
      "table",
      { className: "table table-deliveries", hidden: true },
      h("caption", { className: "visually-hidden" }, `Deliveries to ${webhook.url}, newest first`),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ...["Event", "Status", "Attempts", "Response", "Created"].map((text) =>
            h("th", { scope: "col" }, text),
          ),
          h("th", { scope: "col" }, h("span", { className: "visually-hidden" }, "Actions")),
        ),
      ),
      body,
    );
    const more = h("button", { type: "button", className: "button button-quiet button-small", hidden: true }, "Show older deliveries");
    const refresh = h("button", { type: "button", className: "button button-small" }, "Refresh");
    const details = h(
      "details",
      { className: "deliveries" },
      h("summary", {}, "Delivery log"),
      h("div", { className: "deliveries-body" }, h("div", { className: "zone-actions" }, refresh), empty, table, error, more),
    );
    let next = null;
    let follow = 0;
    const firstUrl = `${webhookPath(webhook)}/deliveries?limit=${DELIVERIES_PAGE}`;

    async function fill(url = firstUrl) {
      const append = url !== firstUrl;
      more.disabled = true;
      clearTimeout(follow);
      try {
        const { data, headers } = await api("GET", url);
        const rows = data.map((delivery) => deliveryRow(webhook, delivery, () => fill()));
        if (append) body.append(...rows);
        else body.replaceChildren(...rows);
        next = nextLink(headers);
        // A delivery about to be tried is followed while the log is open and on the page
        // (one waiting an hour for its next attempt is not asked about every 2 s).
        if (!append && data.some(dueSoon)) {
          follow = setTimeout(() => {
            if (details.open && details.isConnected) fill();
          }, FOLLOW_MS);
        }
        table.hidden = body.children.length === 0;
        empty.hidden = body.children.length > 0;
        more.hidden = !next;
        setText(error, "");
      } catch (failure) {
        if (!failure.redirecting) setText(error, `Could not load the deliveries. ${failure.message}`);
      } finally {
        more.disabled = false;
      }
    }

    details.addEventListener("toggle", () => {
      if (details.open) {
        openLogs.add(webhook.id);
        fill();
      } else {
        openLogs.delete(webhook.id);
      }
    });
    refresh.addEventListener("click", async () => {
      setBusy(refresh, true, "Refreshing…");
      await fill();
      setBusy(refresh, false);
    });
    more.addEventListener("click", () => {
      if (next) fill(next);
    });
    if (openLogs.has(webhook.id)) {
      details.open = true;
      fill();
    }
    return details;
  }

  function cell(label, ...children) {
    return h("td", { dataset: { label } }, ...children);
  }

  function deliveryRow(webhook, delivery, reload) {
    const response = delivery.responseStatus
      ? h("code", {}, String(delivery.responseStatus))
      : h("span", { className: "muted" }, delivery.lastError ? "no answer" : "—");
    // Why the last attempt failed, unless that is only the status already shown.
    const said = delivery.responseStatus && delivery.lastError === `HTTP ${delivery.responseStatus}`;
    const detail = delivery.lastError && !said ? h("span", { className: "sub" }, delivery.lastError) : null;
    const resend = h(
      "button",
      {
        type: "button",
        className: "button button-quiet button-small",
        "aria-label": `Resend ${delivery.event} delivery ${delivery.id}`,
      },
      "Resend",
    );
    resend.addEventListener("click", async () => {
      setBusy(resend, true, "Resending…");
      try {
        const path = `${webhookPath(webhook)}/deliveries/${encodeURIComponent(delivery.id)}/resend`;
        const { message } = await api("POST", path);
        setText(status, message || `Delivery ${delivery.id} is sent again.`);
        await reload();
      } catch (error) {
        if (error.redirecting) return;
        setBusy(resend, false);
        setText(byId("page-error"), error.message);
      }
    });
    return h(
      "tr",
      { dataset: { deliveryId: delivery.id } },
      cell("Event", h("code", {}, delivery.event)),
      cell("Status", deliveryBadge(delivery)),
      cell("Attempts", String(delivery.attempts)),
      cell("Response", response, detail),
      cell("Created", relativeTimeElement(delivery.createdAt)),
      h("td", { className: "cell-actions" }, resend),
    );
  }

  // --- Enable, disable --------------------------------------------------------

  async function setEnabled(webhook, enabled, button) {
    setBusy(button, true, enabled ? "Enabling…" : "Disabling…");
    try {
      const { data } = await api("PATCH", webhookPath(webhook), { body: { enabled } });
      replace(data);
      setText(status, `${data.url} is ${data.enabled ? "enabled" : "disabled"}.`);
      focusItem(data);
    } catch (error) {
      if (error.redirecting) return;
      setBusy(button, false);
      if (error.status === 404) load();
      else setText(byId("page-error"), error.message);
    }
  }

  function itemHeading(webhook) {
    const id = CSS.escape(String(webhook.id));
    return byId("webhooks-body").querySelector(`[data-webhook-id="${id}"] .webhook-url`);
  }

  function focusItem(webhook) {
    const heading = itemHeading(webhook);
    if (heading) heading.focus();
  }

  // --- The one-time secret ------------------------------------------------------

  const putSecret = secretDialog({
    dialog: secretModal,
    field: byId("secret-value"),
    copyButton: byId("copy-secret"),
    copyStatus: byId("secret-copy-status"),
    done: byId("secret-done"),
    noun: "secret",
  });

  function showSecret(webhook, secret, { rolled }, opener) {
    putSecret(secret);
    let lead = `Requests to ${webhook.url} are signed with this secret.`;
    if (rolled) {
      lead = webhook.previousSecretExpiresAt
        ? `The new signing secret of ${webhook.url}. Until ${utcText(webhook.previousSecretExpiresAt)}, ` +
          "requests are signed with the old one too."
        : `The new signing secret of ${webhook.url}. The old one no longer signs requests.`;
    }
    setText(byId("secret-lead"), lead);
    openDialog(secretModal, { opener, fallback: title });
  }

  // --- Add ---------------------------------------------------------------------

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const button = byId("add-webhook");
    const events = [...form.querySelectorAll('input[name="events"]:checked')].map((input) => input.value);
    const body = { url: byId("webhook-url").value.trim(), events };
    setBusy(button, true, "Adding…");
    try {
      const { data } = await api("POST", "/api/account/webhooks", { body });
      form.reset();
      await load();
      setText(status, `Endpoint ${data.url} added.`);
      showSecret(data, data.secret, { rolled: false }, button);
    } catch (error) {
      if (!error.redirecting) showErrors(form, error);
    } finally {
      setBusy(button, false);
    }
  });

  // --- Roll the secret -------------------------------------------------------------

  function askRoll(webhook, opener) {
    rolling = webhook;
    setText(byId("webhook-roll-url"), webhook.url);
    rollForm.reset();
    clearErrors(rollForm);
    openDialog(rollDialog, { opener, fallback: title });
  }
  byId("webhook-roll-cancel").addEventListener("click", () => rollDialog.close());
  rollForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = byId("webhook-roll-confirm");
    if (!rolling) return;
    const webhook = rolling;
    const grace = Number(rollForm.elements.gracePeriodMinutes.value);
    setBusy(button, true, "Rolling…");
    try {
      const { data } = await api("POST", `${webhookPath(webhook)}/roll`, {
        body: { gracePeriodMinutes: grace },
      });
      rollDialog.close();
      replace(data);
      setText(status, `The signing secret of ${webhook.url} is rolled.`);
      showSecret(data, data.secret, { rolled: true }, itemHeading(data));
    } catch (error) {
      if (!error.redirecting) showErrors(rollForm, error);
    } finally {
      setBusy(button, false);
    }
  });

  // --- Delete -----------------------------------------------------------------------

  function askDelete(webhook, opener) {
    deleting = webhook;
    setText(byId("webhook-delete-url"), webhook.url);
    setText(byId("webhook-delete-error"), "");
    openDialog(deleteDialog, { opener, fallback: title });
  }
  byId("webhook-delete-cancel").addEventListener("click", () => deleteDialog.close());
  byId("webhook-delete-confirm").addEventListener("click", async (event) => {
    const button = event.currentTarget;
    if (!deleting) return;
    setBusy(button, true, "Deleting…");
    try {
      await api("DELETE", webhookPath(deleting));
      setText(status, `Endpoint ${deleting.url} deleted.`);
      openLogs.delete(deleting.id);
      deleteDialog.close();
      await load();
    } catch (error) {
      if (!error.redirecting) setText(byId("webhook-delete-error"), error.message);
    } finally {
      setBusy(button, false);
    }
  });

  return { load };
});
