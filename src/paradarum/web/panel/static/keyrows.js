// The rows of the key list: what each key is, may do, and what happened to it.
// Everything from the API goes on the page as text; a link only for a web address.

import {
  dateElement,
  h,
  prefixText,
  relativeTimeElement,
  untilTimeElement,
} from "./ui.js";

const SOON_MS = 7 * 24 * 3600 * 1000;

/** Only a web address becomes a link; anything else stays text. */
export function webUrl(value) {
  try {
    const url = new URL(value);
    return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
  } catch {
    return null;
  }
}

/** “Deploy script” pdm_AbCd… */
export function keyRef(key) {
  return h(
    "span",
    { className: "key-ref" },
    `“${key.name}” `,
    h("code", {}, prefixText(key.keyPrefix)),
  );
}

export function badge(kind, text) {
  return h("span", { className: `badge badge-${kind}` }, text);
}

const isRevoked = (key) => key.status === "revoked" || key.isRevoked;
const isLeaked = (key) => key.revokedReason === "leaked";

function button(text, label, className, onClick) {
  const element = h("button", { type: "button", className, "aria-label": label }, text);
  element.addEventListener("click", () => onClick(element));
  return element;
}

/**
 * Draws key rows. `context` holds what rows refer to: `keys` (the whole list, for the
 * keys a leak took along and for who replaced whom), `zones`, `usageCell(key)`, and
 * `roll(key, button)` / `revoke(key, button)` for the row's buttons.
 */
export function keyRows(key, context) {
  const notice = leakNotice(key, context.keys);
  const row = keyRow(key, context);
  if (!notice) return [row];
  // What happened to a leaked key, across the table, right below its row.
  row.classList.add("has-notice");
  return [
    row,
    h(
      "tr",
      { className: "is-revoked notice-row", dataset: { noticeFor: key.id } },
      h("td", { className: "cell-notice", colspan: 8 }, notice),
    ),
  ];
}

function keyRow(key, context) {
  const revoked = isRevoked(key);
  const actions = [];
  if (key.status === "active") {
    actions.push(
      button("Roll", `Roll ${key.name}`, "button button-quiet button-small", (opener) =>
        context.roll(key, opener),
      ),
    );
  }
  if (!revoked) {
    actions.push(
      button("Revoke", `Revoke ${key.name}`, "button button-danger-quiet button-small", (opener) =>
        context.revoke(key, opener),
      ),
    );
  }
  return h(
    "tr",
    {
      className: revoked ? "is-revoked" : key.status === "expired" ? "is-expired" : null,
      dataset: { keyId: key.id },
    },
    h(
      "td",
      { className: "cell-name", dataset: { label: "Name" } },
      h("span", { className: "key-name" }, key.name),
      restrictionList(key, context.zones),
    ),
    h("td", { dataset: { label: "Key" } }, h("code", {}, prefixText(key.keyPrefix))),
    h("td", { dataset: { label: "Created" } }, dateElement(key.createdAt), createdBy(key, context)),
    h("td", { dataset: { label: "Last used" } }, ...lastUsed(key)),
    h("td", { className: "cell-expiry", dataset: { label: "Expires" } }, ...expiry(key)),
    h("td", { dataset: { label: "Last 30 days" } }, context.usageCell(key)),
    h("td", { dataset: { label: "Status" } }, ...status(key, context.keys)),
    h("td", { className: "cell-actions" }, ...actions),
  );
}

// Who made the key, when it was someone else (another member, or a key).
function createdBy(key, context) {
  const by = key.createdBy || {};
  if (by.kind === "key" && by.keyPrefix) {
    return h("span", { className: "sub" }, `by key ${prefixText(by.keyPrefix)}`);
  }
  if (by.email && context.me && by.email !== context.me) {
    return h("span", { className: "sub" }, `by ${by.email}`);
  }
  return null;
}

function restrictionList(key, zones) {
  const zoneName = (id) => {
    const zone = zones.find((candidate) => candidate.id === id);
    return zone ? zone.hostname : `zone ${id} (deleted)`;
  };
  const items = [];
  if (key.permissions === "purge") items.push("Purge only");
  if (key.allowedCidrs && key.allowedCidrs.length) {
    items.push(`From ${key.allowedCidrs.join(", ")}`);
  }
  if (key.zoneIds && key.zoneIds.length) {
    const label = key.zoneIds.length === 1 ? "Zone" : "Zones";
    items.push(`${label} ${key.zoneIds.map(zoneName).join(", ")}`);
  }
  if (!items.length) return null;
  return h(
    "ul",
    { className: "tags", "aria-label": "Restrictions" },
    ...items.map((text) => h("li", { className: "tag" }, text)),
  );
}

// A key revoked as leaked takes the keys it created with it (an intruder's foothold):
// they name it as their creator (createdBy.keyPrefix) and are revoked as leaked too.
function createdByLeak(key, other) {
  return (
    other.id !== key.id &&
    isLeaked(other) &&
    other.createdBy &&
    other.createdBy.kind === "key" &&
    other.createdBy.keyPrefix === key.keyPrefix
  );
}

function leakNotice(key, keys) {
  if (!isLeaked(key)) return null;
  const parent = keys.find((other) => isLeaked(other) && createdByLeak(other, key));
  if (parent) {
    return h(
      "div",
      { className: "key-notice" },
      h(
        "p",
        {},
        "Revoked automatically with ",
        keyRef(parent),
        ", the key that created it, which was found in public.",
      ),
    );
  }
  const where = key.revokedDetail;
  const url = where ? webUrl(where) : null;
  let found = ["Revoked automatically — found in public."];
  if (url) {
    const link = h("a", { href: url, rel: "noopener noreferrer", target: "_blank" }, where);
    found = ["Revoked automatically — found public at ", link];
  } else if (where) {
    found = ["Revoked automatically — found public at ", h("span", {}, where)];
  }
  const children = keys.filter((other) => createdByLeak(key, other));
  return h(
    "div",
    { className: "key-notice" },
    h("p", {}, ...found),
    children.length
      ? h(
          "p",
          {},
          "Revoked with it, as keys it created: ",
          ...children.flatMap((child, index) => (index ? [", ", keyRef(child)] : [keyRef(child)])),
          ".",
        )
      : null,
  );
}

function lastUsed(key) {
  if (!key.lastUsedAt) return [h("span", { className: "muted" }, "Never")];
  const where = [];
  if (key.lastUsedFrom) where.push(`from ${key.lastUsedFrom}`);
  if (key.lastUsedUserAgent) where.push(key.lastUsedUserAgent);
  return [
    relativeTimeElement(key.lastUsedAt),
    where.length
      ? h(
          "span",
          {
            className: "sub",
            title: key.lastUsedUserAgent ? `User agent: ${key.lastUsedUserAgent}` : null,
          },
          where.join(" · "),
        )
      : null,
  ];
}

// "Expires in 6 days" at a glance, the date below it; "Expired" once it has.
function expiry(key) {
  if (isRevoked(key)) return [h("span", { className: "muted" }, "—")];
  if (!key.expiresAt) return [h("span", { className: "muted" }, "Never")];
  const left = Date.parse(key.expiresAt) - Date.now();
  const date = h("span", { className: "sub" }, dateElement(key.expiresAt));
  if (key.status === "expired" || left <= 0) {
    return [h("span", { className: "expiry expiry-past" }, "Expired"), date];
  }
  const className = left < SOON_MS ? "expiry expiry-soon" : "expiry";
  return [h("span", { className }, "Expires ", untilTimeElement(key.expiresAt)), date];
}

// The status, and for a revoked key, visibly, when and why.
function status(key, keys) {
  const successor = keys.find((other) => other.replaces === key.id);
  // A rolled key still working through its grace period names what replaced it.
  const replaced = successor
    ? h("span", { className: "sub" }, `Replaced by ${prefixText(successor.keyPrefix)}`)
    : null;
  if (key.status === "expired") return [badge("expired", "Expired"), replaced];
  if (!isRevoked(key)) return [badge("active", "Active"), replaced];
  const parts = [badge(isLeaked(key) ? "leaked" : "revoked", "Revoked")];
  if (key.revokedAt) parts.push(h("span", { className: "sub" }, dateElement(key.revokedAt)));
  if (isLeaked(key)) {
    parts.push(h("span", { className: "sub sub-danger" }, "Found in public"));
  } else if (key.revokedReason === "rolled") {
    const text = successor ? `Rolled: replaced by ${prefixText(successor.keyPrefix)}` : "Rolled";
    parts.push(h("span", { className: "sub" }, text));
  } else if (key.revokedReason === "member") {
    parts.push(h("span", { className: "sub" }, "Its member was demoted or removed"));
  } else if (key.revokedReason === "policy") {
    parts.push(h("span", { className: "sub" }, "Its CI trust policy was deleted"));
  }
  return parts;
}
