// Account settings › Webhooks: endpoints (URL, events, on or off), their signing
// secret shown once, and each one's delivery log with "Resend".

import { api } from "../api.js";
import { settingsSection } from "../settings.js";
import {
  byId,
  clearErrors,
  copyText,
  dateElement,
  h,
  relativeTimeElement,
  setBusy,
  setText,
  showErrors,
} from "../ui.js";

const EVENTS = [
  ["api_key.created", "A key was created"],
  ["api_key.revoked", "A key was revoked"],
  ["api_key.leaked", "A key was found in public and revoked"],
  ["api_key.expiring", "A key expires in 7 days"],
  ["api_key.expired", "A key expired"],
  ["api_key.rolled", "A key was rolled"],
  ["member.joined", "A member joined"],
  ["member.removed", "A member left or was removed"],
  ["zone.verified", "A zone was verified"],
];
const STATES = { queued: "Waiting to retry", running: "Sending", done: "Delivered", failed: "Failed" };

function webhooksSection() {
  const form = byId("new-webhook-form");
  const status = byId("webhooks-status");
  const list = byId("webhooks-body");
  const reveal = byId("webhook-secret");
  const open = new Set(); // endpoints whose delivery log is shown
  let endpoints = [];

  byId("webhook-events").replaceChildren(
    ...EVENTS.map(([name, label]) =>
      h(
        "label",
        { className: "check" },
        h("input", { type: "checkbox", name: "events", value: name }),
        h("span", {}, label),
      ),
    ),
  );

  function showSecret(endpoint) {
    byId("webhook-secret-value").value = endpoint.secret;
    setText(byId("webhook-secret-for"), `For ${endpoint.url}`);
    reveal.hidden = false;
    byId("webhook-secret-value").focus();
  }

  byId("webhook-secret-copy").addEventListener("click", async (event) => {
    const copied = await copyText(byId("webhook-secret-value").value, byId("webhook-secret-value"));
    event.currentTarget.textContent = copied ? "Copied" : "Copy";
  });
  byId("webhook-secret-done").addEventListener("click", () => {
    byId("webhook-secret-value").value = "";
    reveal.hidden = true;
  });

  async function load() {
    try {
      const { data } = await api("GET", "/api/account/webhooks");
      endpoints = data;
      setText(byId("webhooks-error"), "");
    } catch (error) {
      if (!error.redirecting) setText(byId("webhooks-error"), `Could not load your endpoints. ${error.message}`);
    }
    byId("webhooks-loading").hidden = true;
    byId("webhooks-empty").hidden = endpoints.length > 0;
    list.replaceChildren(...endpoints.map(endpointItem));
    for (const id of open) showDeliveries(id);
  }

  function badgeFor(endpoint) {
    if (endpoint.enabled) return h("span", { className: "badge badge-active" }, "On");
    return h("span", { className: "badge badge-revoked" }, endpoint.disabledReason ? "Turned off" : "Off");
  }

  function button(text, label, onClick, className = "button button-quiet") {
    const element = h("button", { type: "button", className, "aria-label": label }, text);
    element.addEventListener("click", () => onClick(element));
    return element;
  }

  function endpointItem(endpoint) {
    const actions = h(
      "div",
      { className: "zone-actions" },
      button(open.has(endpoint.id) ? "Hide deliveries" : "Deliveries", `Deliveries to ${endpoint.url}`, () => toggle(endpoint.id)),
      button(endpoint.enabled ? "Turn off" : "Turn on", `${endpoint.enabled ? "Turn off" : "Turn on"} ${endpoint.url}`, (el) =>
        change(endpoint, { enabled: !endpoint.enabled }, el),
      ),
      button("Roll secret", `Roll the signing secret of ${endpoint.url}`, (el) => roll(endpoint, el)),
      button("Delete", `Delete ${endpoint.url}`, (el) => remove(endpoint, el), "button button-danger"),
    );
    return h(
      "li",
      { className: "zone", dataset: { webhookId: endpoint.id } },
      h("div", { className: "zone-main" }, h("span", { className: "zone-host webhook-url" }, endpoint.url), " ", badgeFor(endpoint)),
      h("p", { className: "muted" }, "Events: ", endpoint.events.join(", ")),
      endpoint.disabledReason ? h("p", { className: "alert" }, endpoint.disabledReason) : null,
      actions,
      h("div", { className: "webhook-deliveries", id: `deliveries-${endpoint.id}`, hidden: !open.has(endpoint.id) }),
    );
  }

  async function change(endpoint, body, element) {
    setBusy(element, true, "Saving…");
    try {
      await api("PATCH", `/api/account/webhooks/${endpoint.id}`, { body });
      setText(status, body.enabled ? `${endpoint.url} is on.` : `${endpoint.url} is off.`);
    } catch (error) {
      if (!error.redirecting) setText(byId("webhooks-error"), error.message);
    }
    await load();
  }

  async function roll(endpoint, element) {
    setBusy(element, true, "Rolling…");
    try {
      const { data } = await api("POST", `/api/account/webhooks/${endpoint.id}/secret`);
      showSecret(data);
    } catch (error) {
      if (!error.redirecting) setText(byId("webhooks-error"), error.message);
    }
    await load();
  }

  async function remove(endpoint, element) {
    setBusy(element, true, "Deleting…");
    try {
      await api("DELETE", `/api/account/webhooks/${endpoint.id}`);
      open.delete(endpoint.id);
      setText(status, `${endpoint.url} was deleted.`);
    } catch (error) {
      if (!error.redirecting) setText(byId("webhooks-error"), error.message);
    }
    await load();
  }

  function toggle(id) {
    if (open.has(id)) open.delete(id);
    else open.add(id);
    load();
  }

  async function showDeliveries(id) {
    const box = byId(`deliveries-${id}`);
    if (!box) return;
    box.hidden = false;
    let items = [];
    try {
      ({ data: items } = await api("GET", `/api/account/webhooks/${id}/deliveries?limit=50`));
    } catch (error) {
      if (!error.redirecting) box.replaceChildren(h("p", { className: "alert" }, error.message));
      return;
    }
    if (items.length === 0) {
      box.replaceChildren(h("p", { className: "muted" }, "Nothing sent yet."));
      return;
    }
    box.replaceChildren(
      h(
        "ul",
        { className: "deliveries", "aria-label": "Deliveries, newest first" },
        ...items.map((delivery) =>
          h(
            "li",
            { className: "delivery", dataset: { deliveryId: delivery.id } },
            h("code", {}, delivery.eventType),
            " ",
            h("span", { className: `delivery-state state-${delivery.status}` }, STATES[delivery.status] || delivery.status),
            " · ",
            relativeTimeElement(delivery.createdAt),
            ` · ${delivery.attempts} attempt${delivery.attempts === 1 ? "" : "s"}`,
            delivery.result ? ` · ${delivery.result}` : "",
            delivery.error && delivery.status !== "done" ? h("span", { className: "muted" }, ` — ${delivery.error}`) : null,
            delivery.nextAttemptAt ? h("span", { className: "muted" }, " · next try ", dateElement(delivery.nextAttemptAt)) : null,
            " ",
            button("Resend", `Resend ${delivery.eventType} ${delivery.eventId}`, (el) => resend(id, delivery, el)),
          ),
        ),
      ),
    );
  }

  async function resend(id, delivery, element) {
    setBusy(element, true, "Resending…");
    try {
      await api("POST", `/api/account/webhooks/${id}/deliveries/${delivery.id}/resend`);
      setText(status, `${delivery.eventType} is queued again.`);
    } catch (error) {
      if (!error.redirecting) setText(byId("webhooks-error"), error.message);
    }
    await showDeliveries(id);
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const submit = byId("add-webhook");
    const events = [...form.querySelectorAll('input[name="events"]:checked')].map((input) => input.value);
    setBusy(submit, true, "Adding…");
    try {
      const { data, message } = await api("POST", "/api/account/webhooks", {
        body: { url: byId("webhook-url").value.trim(), events },
      });
      form.reset();
      showSecret(data);
      setText(status, message);
    } catch (error) {
      if (!error.redirecting) showErrors(form, error);
    } finally {
      setBusy(submit, false);
    }
    await load();
  });

  return { load };
}

settingsSection(() => webhooksSection());
