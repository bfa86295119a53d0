// The API keys section: the list, the new-key form (expiration, restrictions), the
// one-time key dialog, revoke and roll.

import { api } from "./api.js";
import { awaitsVerification } from "./email.js";
import { keyRows } from "./keyrows.js";
import { pagedList } from "./paged.js";
import {
  byId,
  clearErrors,
  h,
  openDialog,
  prefixText,
  secretDialog,
  setBusy,
  setText,
  show,
  showErrors,
} from "./ui.js";
import { usageCells } from "./usage.js";

export const KEYS_URL = "/api/account/apikeys?limit=100";
const DAY_MS = 24 * 3600 * 1000;
// A chosen date may be at most this far ahead: the API allows 366 days from now, and
// the key works through the whole chosen day (UTC).
const MAX_EXPIRY_DAYS = 365;
const RESTRICTION_FIELDS = ["permissions", "allowedCidrs", "zoneIds"];
const GRACE_TEXT = {
  0: "has been revoked",
  60: "stops working in 1 hour",
  1440: "stops working in 1 day",
  10080: "stops working in 7 days",
};

// Dates are UTC days, as in the CLI, the client and the API's documentation.
function todayPlus(days) {
  return new Date(Date.now() + days * DAY_MS).toISOString().slice(0, 10);
}

// The key works through the chosen day, UTC: it stops at the start of the next.
function endOfDay(value) {
  const [year, month, day] = value.split("-").map(Number);
  return new Date(Date.UTC(year, month - 1, day + 1)).toISOString();
}

/**
 * `state` is the page's: `account`, `keys`, `zones`. `hooks.refreshAccount()` reloads
 * the account (and the counter).
 */
export function keysSection(state, hooks) {
  const title = byId("keys-title");
  const status = byId("keys-status");
  const form = byId("new-key-form");
  const nameInput = byId("key-name");
  const expirySelect = byId("key-expiry");
  const expiryDate = byId("key-expiry-date");
  const restrictions = byId("restrictions");
  const generate = byId("generate");
  const newKeyDialog = byId("new-key-dialog");
  const revokeDialog = byId("revoke-dialog");
  const revokeConfirm = byId("revoke-confirm");
  const revokeError = byId("revoke-error");
  const rollDialog = byId("roll-dialog");
  const rollForm = byId("roll-form");
  const rollConfirm = byId("roll-confirm");
  const usageCell = usageCells();
  let loaded = false;
  let revoking = null;
  let rolling = null;

  // --- Counter ----------------------------------------------------------------

  // The form is disabled, with the reason beside it, when the API would refuse it:
  // the address is not verified yet, or the account is at its limit.
  function renderCounter() {
    const { activeKeys: active, keyLimit: limit } = state.account;
    const full = active >= limit;
    const unverified = awaitsVerification(state.account);
    const counter = byId("key-counter");
    counter.textContent = `${active} of ${limit} active keys`;
    counter.classList.toggle("counter-full", full);
    show(counter);
    byId("new-key-fields").disabled = full || unverified;
    let reason = "";
    if (unverified) {
      reason =
        "Verify your email address to create keys: follow the link we emailed you, " +
        "or press “Send a new link” at the top of this page.";
    } else if (full) {
      reason =
        `You have ${limit} active keys, the most an account can have. ` +
        "Revoke a key you no longer use to free a slot for a new one.";
    }
    setText(byId("limit-note"), reason);
  }

  // --- List ---------------------------------------------------------------------

  const loadKeys = pagedList("keys", KEYS_URL, {
    errorText: "Could not load your keys.",
    onData(items, append) {
      state.keys = append ? state.keys.concat(items) : items;
      loaded = true;
      render();
      return state.keys.length;
    },
  });

  const rowContext = {
    get keys() {
      return state.keys;
    },
    get zones() {
      return state.zones;
    },
    // The signed-in member's email: keys made by others name their maker.
    get me() {
      return state.account ? state.account.email : null;
    },
    usageCell,
    roll: openRoll,
    revoke: openRevoke,
  };

  function render() {
    if (!loaded) return;
    byId("keys-body").replaceChildren(...state.keys.flatMap((key) => keyRows(key, rowContext)));
  }

  function refresh() {
    return Promise.all([hooks.refreshAccount(), loadKeys()]);
  }

  // --- New key ---------------------------------------------------------------

  // The zones a new key may be restricted to (ticks kept across redraws).
  function renderZoneChoices() {
    const box = byId("key-zones");
    const ticked = new Set(
      [...box.querySelectorAll("input:checked")].map((input) => Number(input.value)),
    );
    if (!state.zones.length) {
      const zonesLink = h("a", { href: "/account/zones" }, "add one under Zones");
      box.replaceChildren(
        h("p", { className: "muted" }, "No zones yet: ", zonesLink, " to restrict a key to it."),
      );
      return;
    }
    box.replaceChildren(
      ...state.zones.map((zone) =>
        h(
          "label",
          { className: "check" },
          h("input", {
            type: "checkbox",
            name: "zoneIds",
            value: zone.id,
            checked: ticked.has(zone.id),
          }),
          h("span", {}, zone.hostname),
          zone.status === "active" ? null : h("span", { className: "muted" }, " (pending)"),
        ),
      ),
    );
  }

  expirySelect.addEventListener("change", () => {
    const onDate = expirySelect.value === "date";
    show(byId("key-expiry-date-field"), onDate);
    if (onDate) {
      expiryDate.min = todayPlus(0);
      expiryDate.max = todayPlus(MAX_EXPIRY_DAYS);
      if (!expiryDate.value) expiryDate.value = todayPlus(90);
      expiryDate.focus();
    }
  });

  // The request's body, or null when the chosen date is missing.
  function newKeyBody() {
    const body = { name: nameInput.value };
    const choice = expirySelect.value;
    if (choice === "30" || choice === "90") {
      body.expiresAt = new Date(Date.now() + Number(choice) * DAY_MS).toISOString();
    } else if (choice === "date") {
      if (!expiryDate.value) return null;
      body.expiresAt = endOfDay(expiryDate.value);
    }
    if (byId("key-purge-only").checked) body.permissions = "purge";
    const cidrs = byId("key-cidrs").value.split(/[\s,]+/).filter(Boolean);
    if (cidrs.length) body.allowedCidrs = cidrs;
    const zoneIds = [...form.querySelectorAll("input[name=zoneIds]:checked")].map((input) =>
      Number(input.value),
    );
    if (zoneIds.length) body.zoneIds = zoneIds;
    return body;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const body = newKeyBody();
    if (!body) {
      setText(byId("key-expiry-date-error"), "Choose the last day the key works.");
      expiryDate.setAttribute("aria-invalid", "true");
      expiryDate.focus();
      return;
    }
    setBusy(generate, true, "Generating…");
    let created;
    try {
      ({ data: created } = await api("POST", "/api/account/apikeys", { body }));
    } catch (error) {
      setBusy(generate, false);
      if (error.redirecting) return;
      if (RESTRICTION_FIELDS.some((field) => field in error.fieldErrors)) restrictions.open = true;
      showErrors(form, error);
      hooks.refreshAccount(); // a refusal such as the limit may mean the counter is stale
      return;
    }
    setBusy(generate, false);
    form.reset();
    show(byId("key-expiry-date-field"), false);
    showNewKey(created, { opener: generate });
    refresh();
  });

  // --- The one-time key dialog ---------------------------------------------------

  // The raw key lives only in the dialog's field, and only until the dialog closes.
  const putKey = secretDialog({
    dialog: newKeyDialog,
    field: byId("new-key-value"),
    copyButton: byId("copy-key"),
    copyStatus: byId("copy-status"),
    done: byId("new-key-done"),
    noun: "key",
    forget() {
      byId("new-key-name").textContent = "";
      setText(byId("new-key-replaces"), "");
    },
  });

  function showNewKey(created, { opener, replaces = null, grace = 0 }) {
    putKey(created.key);
    delete created.key;
    byId("new-key-name").textContent = created.name;
    const stops = GRACE_TEXT[grace] || "stops working soon";
    setText(
      byId("new-key-replaces"),
      replaces ? `It replaces ${prefixText(replaces.keyPrefix)}, which ${stops}.` : "",
    );
    openDialog(newKeyDialog, { opener, fallback: title });
    setText(status, `Key “${created.name}” ${replaces ? "rolled" : "created"}.`);
  }

  // --- Revoke ---------------------------------------------------------------

  function openRevoke(key, opener) {
    revoking = key;
    byId("revoke-name").textContent = key.name;
    byId("revoke-prefix").textContent = prefixText(key.keyPrefix);
    setText(revokeError, "");
    openDialog(revokeDialog, { opener, fallback: title });
  }

  revokeDialog.addEventListener("close", () => {
    revoking = null;
  });
  byId("revoke-cancel").addEventListener("click", () => revokeDialog.close());

  revokeConfirm.addEventListener("click", async () => {
    const key = revoking;
    if (!key) return;
    setText(revokeError, "");
    setBusy(revokeConfirm, true, "Revoking…");
    try {
      await api("DELETE", `/api/account/apikeys/${encodeURIComponent(key.id)}`);
      await refresh();
      setText(status, `Key “${key.name}” revoked.`);
      if (revokeDialog.open) revokeDialog.close();
      } catch (error) {
      if (error.redirecting) return;
      setText(revokeError, error.message);
      refresh(); // already revoked, or gone: show the list as it is now
    } finally {
      setBusy(revokeConfirm, false);
    }
  });

  // --- Roll -------------------------------------------------------------------

  function openRoll(key, opener) {
    rolling = key;
    byId("roll-name").textContent = key.name;
    byId("roll-prefix").textContent = prefixText(key.keyPrefix);
    clearErrors(rollForm);
    // At the limit the old key may not keep working beside the new one (it still
    // counts): only "Now" is possible, and the dialog says why.
    const account = state.account;
    const full = Boolean(account) && account.activeKeys >= account.keyLimit;
    for (const radio of rollForm.elements.gracePeriodMinutes) {
      radio.disabled = full && radio.value !== "0";
      radio.checked = radio.value === (full ? "0" : "60");
    }
    setText(
      byId("roll-limit-note"),
      full
        ? `You have ${account.keyLimit} active keys, the most an account can have, and the ` +
            "old key would still count while it works: it can only stop now."
        : "",
    );
    openDialog(rollDialog, { opener, fallback: title });
  }

  rollDialog.addEventListener("close", () => {
    rolling = null;
  });
  byId("roll-cancel").addEventListener("click", () => rollDialog.close());

  rollForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = rolling;
    if (!key) return;
    const grace = Number(rollForm.elements.gracePeriodMinutes.value || "0");
    clearErrors(rollForm);
    setBusy(rollConfirm, true, "Rolling…");
    let created;
    try {
      const url = `/api/account/apikeys/${encodeURIComponent(key.id)}/roll`;
      ({ data: created } = await api("POST", url, { body: { gracePeriodMinutes: grace } }));
    } catch (error) {
      setBusy(rollConfirm, false);
      if (error.redirecting) return;
      showErrors(rollForm, error);
      refresh();
      return;
    }
    setBusy(rollConfirm, false);
    // Close the question first (focus goes back to the row's button), then show the
    // new key exactly as Generate does.
    await new Promise((resolve) => {
      rollDialog.addEventListener("close", resolve, { once: true });
      rollDialog.close();
    });
    showNewKey(created, { opener: document.activeElement, replaces: key, grace });
    refresh();
  });

  return { load: loadKeys, render, renderCounter, renderZoneChoices };
}
