// The security log: what happened on the account, newest first. Keys are named (from
// the key list; the prefix when the key is not in it), each event's detail is shown,
// and a run of one event for the same key and address is one row with a count.

import { keyRef } from "./keyrows.js";
import { pagedList } from "./paged.js";
import { byId, count, h, prefixText, relativeTimeElement, show } from "./ui.js";

const LOG_URL = "/api/account/audit?limit=25";

// Names for the events of src/paradarum/services/audit.py (a test keeps them in step).
// An event this page does not know yet is shown by its name.
const EVENT_LABELS = {
  "account.signup": "Account created",
  "account.email_verified": "Email address verified",
  "account.password_changed": "Password changed",
  "account.password_reset": "Password reset by email link",
  "session.login_succeeded": "Signed in",
  "session.login_failed": "Failed sign-in attempt",
  "session.logout": "Signed out",
  "key.created": "API key created",
  "key.first_used": "API key used for the first time",
  "key.revoked": "API key revoked",
  "key.rolled": "API key rolled",
  "key.leaked": "API key revoked automatically: found in public",
  "key.refused": "API key refused by its restrictions",
  "purge.requested": "Cache purge requested",
  "zone.added": "Zone added",
  "zone.verified": "Zone verified",
  "zone.deleted": "Zone deleted",
  "zone.suspended": "Zone suspended: its DNS record is missing",
  "zone.moved": "Zone taken over by the domain's new owner",
  "notification.sent": "Email notification",
  "session.account_switched": "Switched to this account",
  "member.invited": "Member invited",
  "member.invitation_withdrawn": "Invitation withdrawn",
  "member.joined": "Member joined",
  "member.role_changed": "Member's role changed",
  "member.removed": "Member removed",
  "member.left": "Member left",
  "trust_policy.created": "CI trust policy added",
  "trust_policy.deleted": "CI trust policy deleted",
  "oidc.key_minted": "Key issued to a CI job",
  "oidc.token_refused": "CI token refused",
  "session.reauthenticated": "Identity confirmed again (password and second factor)",
  "two_factor.totp_enabled": "Authenticator app turned on",
  "two_factor.totp_disabled": "Authenticator app turned off",
  "two_factor.passkey_added": "Passkey added",
  "two_factor.passkey_removed": "Passkey removed",
  "two_factor.recovery_code_used": "Recovery code used to sign in",
  "two_factor.recovery_codes_renewed": "New recovery codes made",
  "two_factor.requirement_changed": "Two-factor requirement for members changed",
  "webhook.created": "Webhook endpoint added",
  "webhook.updated": "Webhook endpoint changed",
  "webhook.deleted": "Webhook endpoint deleted",
  "webhook.secret_rolled": "Webhook signing secret rolled",
  "webhook.resent": "Webhook delivery sent again",
  "webhook.disabled": "Webhook endpoint turned off: its deliveries kept failing",
};
const WARNING_EVENTS = new Set([
  "session.login_failed",
  "key.leaked",
  "key.refused",
  "zone.suspended",
  "zone.moved",
  "oidc.token_refused",
  "two_factor.totp_disabled",
  "two_factor.passkey_removed",
  "two_factor.recovery_code_used",
  "webhook.disabled",
]);

// Repeats of one event for the same key, address and detail, one right after the
// other, are one row: "Failed sign-in attempt ×37".
function sameGroup(a, b) {
  const key = (entry) => entry.keyId ?? entry.keyPrefix ?? null;
  const actingKey = (entry) => (entry.actorType === "key" ? entry.actorId : null);
  return (
    a.event === b.event &&
    key(a) === key(b) &&
    actingKey(a) === actingKey(b) &&
    (a.clientAddress ?? null) === (b.clientAddress ?? null) &&
    (a.detail ?? null) === (b.detail ?? null)
  );
}

/** `state.keys` names the keys the log mentions. */
export function logSection(state) {
  let entries = null;

  const load = pagedList("log", LOG_URL, {
    errorText: "Could not load the security log.",
    onData(items, append) {
      entries = append ? entries.concat(items) : items;
      render();
      return entries.length;
    },
    onNotFound() {
      // This server has no security log (yet): say so and show nothing else.
      show(byId("log-unavailable"));
    },
  });

  function render() {
    if (!entries) return;
    const groups = [];
    for (const entry of entries) {
      const last = groups[groups.length - 1];
      if (last && sameGroup(last[0], entry)) last.push(entry);
      else groups.push([entry]);
    }
    byId("log-body").replaceChildren(...groups.map(row));
  }

  function mention(key, prefix) {
    return key ? keyRef(key) : h("code", {}, prefixText(prefix));
  }

  function byPrefix(prefix) {
    const found = state.keys.filter((key) => key.keyPrefix === prefix);
    return found.length === 1 ? found[0] : null;
  }

  function row(group) {
    const entry = group[0]; // the newest
    const details = [];
    if (entry.keyPrefix) {
      const key = state.keys.find((candidate) => candidate.id === entry.keyId) || null;
      details.push("Key ", mention(key, entry.keyPrefix));
    }
    if (entry.actorType === "key" && entry.actorId && entry.actorId !== entry.keyPrefix) {
      if (details.length) details.push(" · ");
      details.push("with API key ", mention(byPrefix(entry.actorId), entry.actorId));
    }
    if (entry.actorType !== "key" && entry.actor) {
      if (details.length) details.push(" · ");
      details.push(`by ${entry.actor}`);
    }
    if (!details.length && !entry.detail) details.push("—");
    const label = EVENT_LABELS[entry.event] || entry.event;
    const first = group[group.length - 1].occurredAt;
    return h(
      "tr",
      { className: WARNING_EVENTS.has(entry.event) ? "is-warning" : null },
      h(
        "td",
        { dataset: { label: "When" } },
        relativeTimeElement(entry.occurredAt),
        group.length > 1
          ? h("span", { className: "since" }, "first ", relativeTimeElement(first))
          : null,
      ),
      h(
        "td",
        { className: "cell-name", dataset: { label: "Event" } },
        group.length > 1 ? `${label} ×${count(group.length)}` : label,
      ),
      h(
        "td",
        { dataset: { label: "Details" } },
        h(
          "span",
          { className: "log-details" },
          ...details,
          entry.detail ? h("span", { className: "detail" }, entry.detail) : null,
        ),
      ),
      h(
        "td",
        { dataset: { label: "From" } },
        entry.clientAddress || "—",
        entry.userAgent
          ? h(
              "span",
              { className: "sub", title: `User agent: ${entry.userAgent}` },
              entry.userAgent,
            )
          : null,
      ),
    );
  }

  return { load, render };
}
