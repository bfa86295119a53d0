// CI access: trust policies that let a CI job trade its OpenID Connect identity token
// for a short-lived key. Create (the form explains each field), list with the keys each
// policy issued, delete (which revokes those keys).

import { api } from "./api.js";
import { badge } from "./keyrows.js";
import {
  byId,
  clearErrors,
  dateElement,
  h,
  openDialog,
  plural,
  prefixText,
  setBusy,
  setText,
  showErrors,
  untilTimeElement,
} from "./ui.js";

const PROVIDERS = {
  github: {
    issuer: "https://token.actions.githubusercontent.com",
    conditions: "repository_id=\nref=refs/heads/main",
  },
  gitlab: { issuer: "https://gitlab.com", conditions: "project_id=\nref=main" },
  other: { issuer: "", conditions: "sub=" },
};

/** `claim=value` lines → an object; a line without "=" is kept whole, for the API to refuse. */
export function parseConditions(text) {
  const conditions = {};
  for (const line of text.split("\n")) {
    const trimmed = line.trim();
    if (!trimmed) continue;
    const at = trimmed.indexOf("=");
    if (at < 0) conditions[trimmed] = "";
    else conditions[trimmed.slice(0, at).trim()] = trimmed.slice(at + 1).trim();
  }
  return conditions;
}

/** The section, on `state` (the settings page's: `zones` and `keys` are filled here). */
export function trustSection(state) {
  state.policies = [];
  const form = byId("new-policy-form");
  const provider = byId("policy-provider");
  const deleteDialog = byId("policy-delete-dialog");
  let deleting = null;

  function fillProvider() {
    const chosen = PROVIDERS[provider.value] || PROVIDERS.other;
    byId("policy-issuer").value = chosen.issuer;
    byId("policy-conditions").value = chosen.conditions;
  }
  provider.addEventListener("change", fillProvider);
  fillProvider();

  async function loadZones() {
    try {
      const { data } = await api("GET", "/api/account/zones?limit=100");
      state.zones = data;
    } catch (error) {
      if (error.redirecting) return;
      state.zones = [];
    }
    byId("policy-zones").replaceChildren(
      ...state.zones.map((zone) =>
        h(
          "label",
          { className: "check" },
          h("input", { type: "checkbox", name: "zoneIds", value: String(zone.id) }),
          h("span", {}, zone.hostname),
        ),
      ),
    );
    if (!state.zones.length) {
      byId("policy-zones").replaceChildren(h("p", { className: "muted" }, "No zones yet."));
    }
  }

  async function load() {
    try {
      const [policies, keys] = await Promise.all([
        api("GET", "/api/account/trust-policies"),
        api("GET", "/api/account/apikeys?limit=100"),
      ]);
      state.policies = policies.data;
      state.keys = keys.data.filter((key) => key.createdBy && key.createdBy.kind === "oidc");
      setText(byId("page-error"), "");
    } catch (error) {
      if (error.redirecting) return;
      setText(byId("page-error"), `Could not load your trust policies. ${error.message}`);
    }
    byId("policies-loading").hidden = true;
    render();
  }

  function render() {
    byId("policies-empty").hidden = state.policies.length > 0;
    byId("policies-body").replaceChildren(...state.policies.map(policyItem));
  }

  function zoneNames(ids) {
    if (!ids) return "every zone";
    return ids
      .map((id) => (state.zones.find((zone) => zone.id === id) || { hostname: `zone ${id}` }).hostname)
      .join(", ");
  }

  function keyItem(key) {
    const when =
      key.status === "active"
        ? ["expires ", untilTimeElement(key.expiresAt)]
        : [key.status, " ", dateElement(key.revokedAt || key.expiresAt)];
    return h(
      "li",
      { className: "minted-key", dataset: { keyPrefix: key.keyPrefix } },
      h("code", {}, prefixText(key.keyPrefix)),
      " ",
      badge(key.status, key.status[0].toUpperCase() + key.status.slice(1)),
      " ",
      h("span", { className: "sub" }, ...when),
      key.createdBy.subject ? h("span", { className: "sub" }, ` for ${key.createdBy.subject}`) : "",
    );
  }

  function policyItem(policy) {
    const minted = state.keys.filter((key) => key.createdBy.policyId === policy.id);
    const conditions = Object.entries(policy.conditions).map(([claim, value]) =>
      h("li", {}, h("code", {}, `${claim}=${value}`)),
    );
    const remove = h(
      "button",
      { type: "button", className: "button button-quiet button-small", "aria-label": `Delete ${policy.name}` },
      "Delete",
    );
    remove.addEventListener("click", () => askDelete(policy, remove));
    return h(
      "li",
      { className: "zone policy", dataset: { policyId: policy.id } },
      h("div", { className: "zone-head" }, h("strong", { className: "policy-name" }, policy.name), remove),
      h("p", { className: "sub" }, "Issuer ", h("code", {}, policy.issuer), " · audience ", h("code", {}, policy.audience)),
      h("ul", { className: "policy-conditions", "aria-label": "Conditions" }, ...conditions),
      h(
        "p",
        { className: "sub" },
        `${policy.permissions === "full" ? "Full-access" : "Purge-only"} keys for ${zoneNames(policy.zoneIds)}, `,
        `working ${policy.ttlSeconds} s · added `,
        dateElement(policy.createdAt),
      ),
      h("p", { className: "sub" }, `Policy ID ${policy.id} · ${plural(policy.activeKeys, "key")} working now`),
      minted.length
        ? h("ul", { className: "minted-keys", "aria-label": `Keys issued by ${policy.name}` }, ...minted.map(keyItem))
        : h("p", { className: "muted" }, "No keys issued yet."),
    );
  }

  function askDelete(policy, opener) {
    deleting = policy;
    setText(byId("policy-delete-name"), policy.name);
    setText(byId("policy-delete-error"), "");
    openDialog(deleteDialog, { opener, fallback: byId("policies-title") });
  }
  byId("policy-delete-cancel").addEventListener("click", () => deleteDialog.close());
  byId("policy-delete-confirm").addEventListener("click", async (event) => {
    const button = event.currentTarget;
    if (!deleting) return;
    setBusy(button, true, "Deleting…");
    try {
      await api("DELETE", `/api/account/trust-policies/${deleting.id}`);
      setText(byId("policies-status"), `Trust policy “${deleting.name}” deleted; its keys are revoked.`);
      deleteDialog.close();
      await load();
    } catch (error) {
      if (!error.redirecting) setText(byId("policy-delete-error"), error.message);
    } finally {
      setBusy(button, false);
    }
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const button = byId("add-policy");
    const zoneIds = [...form.querySelectorAll('input[name="zoneIds"]:checked')].map((input) =>
      Number(input.value),
    );
    const body = {
      name: byId("policy-name").value,
      issuer: byId("policy-issuer").value.trim(),
      conditions: parseConditions(byId("policy-conditions").value),
      permissions: byId("policy-full").checked ? "full" : "purge",
      ttlSeconds: Number.parseInt(byId("policy-ttl").value, 10) || 0,
    };
    const audience = byId("policy-audience").value.trim();
    if (audience) body.audience = audience;
    if (zoneIds.length) body.zoneIds = zoneIds;
    setBusy(button, true, "Adding…");
    try {
      const { data } = await api("POST", "/api/account/trust-policies", { body });
      setText(byId("policies-status"), `Trust policy “${data.name}” added.`);
      byId("policy-name").value = "";
      fillProvider();
      await load();
    } catch (error) {
      if (!error.redirecting) showErrors(form, error);
    } finally {
      setBusy(button, false);
    }
  });

  return { load: () => loadZones().finally(load) };
}
