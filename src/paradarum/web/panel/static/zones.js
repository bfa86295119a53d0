// The Zones section: the hostnames the account may purge. Add one, create the DNS TXT
// record it shows, verify it (the API says what DNS had when it is not there yet),
// delete it.

import { api } from "./api.js";
import { awaitsVerification } from "./email.js";
import { badge } from "./keyrows.js";
import { pagedList } from "./paged.js";
import {
  byId,
  clearErrors,
  copyText,
  dateElement,
  h,
  openDialog,
  setBusy,
  setText,
  showErrors,
} from "./ui.js";

export const ZONES_URL = "/api/account/zones?limit=100";

/**
 * `state.zones` is the page's list of zones; `hooks.refreshAccount()` reloads the
 * account.
 */
export function zonesSection(state, hooks) {
  const title = byId("zones-title");
  const status = byId("zones-status");
  const form = byId("new-zone-form");
  const deleteDialog = byId("zone-delete-dialog");
  const deleteConfirm = byId("zone-delete-confirm");
  const deleteError = byId("zone-delete-error");
  const problems = new Map(); // zone id -> the API's sentence from the last verify
  let deleting = null;

  const load = pagedList("zones", ZONES_URL, {
    errorText: "Could not load your zones.",
    onData(items, append) {
      state.zones = append ? state.zones.concat(items) : items;
      render();
      return state.zones.length;
    },
  });

  // Until the address is verified the API refuses new zones: the form says so.
  function renderForm() {
    const unverified = awaitsVerification(state.account);
    byId("new-zone-fields").disabled = unverified;
    setText(
      byId("zone-note"),
      unverified
        ? "Verify your email address to add zones: follow the link we emailed you, " +
            "or press “Send a new link” at the top of this page."
        : "",
    );
  }

  function render() {
    byId("zones-body").replaceChildren(...state.zones.map(zoneItem));
  }

  function rowButton(text, label, className, onClick) {
    const button = h("button", { type: "button", className, "aria-label": label }, text);
    button.addEventListener("click", () => onClick(button));
    return button;
  }

  function zoneItem(zone) {
    const active = zone.status === "active";
    const problem = problems.get(zone.id) || "";
    const when =
      active && zone.verifiedAt
        ? ["Verified ", dateElement(zone.verifiedAt)]
        : ["Added ", dateElement(zone.createdAt)];
    return h(
      "li",
      { className: "zone", dataset: { zoneId: zone.id } },
      h(
        "div",
        { className: "zone-head" },
        h("h3", { className: "zone-host", tabindex: "-1" }, zone.hostname),
        active
          ? badge("active", "Active")
          : badge("pending", zone.status === "suspended" ? "Suspended" : "Pending"),
        h("span", { className: "zone-when muted" }, ...when),
      ),
      active ? null : dnsRecord(zone),
      h("p", { className: "alert", role: "alert", hidden: !problem }, problem),
      h(
        "div",
        { className: "zone-actions" },
        active ? null : verifyButton(zone),
        rowButton(
          "Delete",
          `Delete ${zone.hostname}`,
          "button button-danger-quiet button-small",
          (button) => openDelete(zone, button),
        ),
      ),
    );
  }

  // The record as a DNS provider's form asks for it: type, name, value.
  function dnsRecord(zone) {
    const record = zone.verification;
    const domain = zone.hostname.replace(/^\*\./, "").split(".").slice(-2).join(".");
    const relative = record.name.split(".").slice(0, -2).join(".");
    return h(
      "div",
      { className: "record", role: "group", "aria-label": `DNS record for ${zone.hostname}` },
      h("p", {}, "Create this record at your DNS provider, then press Verify:"),
      h(
        "dl",
        { className: "record-fields" },
        h("div", {}, h("dt", {}, "Type"), h("dd", {}, h("code", {}, "TXT"))),
        recordField("Name", record.name, `Copy the record name for ${zone.hostname}`),
        recordField("Value", record.value, `Copy the record value for ${zone.hostname}`),
      ),
      h(
        "p",
        { className: "hint" },
        `If your provider adds your domain (say ${domain}) to names by itself, ` +
          "enter the name without it: ",
        h("code", {}, relative),
        ". DNS changes can take a few minutes to show.",
      ),
    );
  }

  function recordField(label, value, copyLabel) {
    const text = h("code", { className: "record-value" }, value);
    const button = h(
      "button",
      { type: "button", className: "button button-small", "aria-label": copyLabel },
      "Copy",
    );
    let timer = 0;
    button.addEventListener("click", async () => {
      const copied = await copyText(value, text);
      clearTimeout(timer);
      button.textContent = copied ? "Copied" : "Selected";
      setText(
        status,
        copied
          ? `${label} copied to your clipboard.`
          : `${label} selected: press Ctrl+C (⌘C on a Mac) to copy it.`,
      );
      timer = setTimeout(() => {
        button.textContent = "Copy";
      }, 4000);
    });
    return h("div", {}, h("dt", {}, label), h("dd", {}, text, button));
  }

  function verifyButton(zone) {
    const label = `Verify ${zone.hostname}`;
    return rowButton("Verify", label, "button button-primary button-small", async (button) => {
      setBusy(button, true, "Verifying…");
      try {
        const url = `/api/account/zones/${encodeURIComponent(zone.id)}/verify`;
        const { data, message } = await api("POST", url);
        problems.delete(zone.id);
        state.zones = state.zones.map((other) => (other.id === data.id ? data : other));
        render();
        setText(status, `${data.hostname}: ${message}`);
        // The Verify button is gone: focus goes to the zone, now active.
        const id = CSS.escape(String(data.id));
        const item = byId("zones-body").querySelector(`[data-zone-id="${id}"] .zone-host`);
        if (item) item.focus();
      } catch (error) {
        if (error.redirecting) return;
        setBusy(button, false);
        if (error.status === 404) {
          load(); // deleted meanwhile
          return;
        }
        // Not in DNS (yet): the API's sentence says what it found, next to the zone.
        problems.set(zone.id, error.message);
        setText(button.closest(".zone").querySelector(".alert"), error.message);
      }
    });
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = byId("add-zone");
    clearErrors(form);
    setBusy(button, true, "Adding…");
    try {
      const { message } = await api("POST", "/api/account/zones", {
        body: { hostname: form.elements.hostname.value },
      });
      form.reset();
      await load();
      setText(status, message);
    } catch (error) {
      if (error.redirecting) return;
      showErrors(form, error);
      if (error.status === 403) hooks.refreshAccount(); // the page may be out of date
    } finally {
      setBusy(button, false);
    }
  });

  function openDelete(zone, opener) {
    deleting = zone;
    byId("zone-delete-name").textContent = zone.hostname;
    byId("zone-delete-host").textContent = zone.hostname;
    setText(deleteError, "");
    openDialog(deleteDialog, { opener, fallback: title });
  }

  deleteDialog.addEventListener("close", () => {
    deleting = null;
  });
  byId("zone-delete-cancel").addEventListener("click", () => deleteDialog.close());

  deleteConfirm.addEventListener("click", async () => {
    const zone = deleting;
    if (!zone) return;
    setText(deleteError, "");
    setBusy(deleteConfirm, true, "Deleting…");
    try {
      await api("DELETE", `/api/account/zones/${encodeURIComponent(zone.id)}`);
      problems.delete(zone.id);
      await load();
      setText(status, `Zone ${zone.hostname} deleted.`);
      if (deleteDialog.open) deleteDialog.close();
    } catch (error) {
      if (error.redirecting) return;
      setText(deleteError, error.message);
      load();
    } finally {
      setBusy(deleteConfirm, false);
    }
  });

  return { load, renderForm };
}
