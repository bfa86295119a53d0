import {
  api,
  clearSession,
  goToSignIn,
  nextLink,
  readSession,
  signInUrl,
} from "./api.js";
import {
  clearErrors,
  dateElement,
  h,
  openDialog,
  prefixText,
  refreshTimes,
  relativeTimeElement,
  setBusy,
  setText,
  show,
  showErrors,
  utcText,
} from "./ui.js";

const KEYS_URL = "/api/account/apikeys?limit=100";
const LOG_URL = "/api/account/audit?limit=25";

// Names for the events of src/paradarum/services/audit.py (a test keeps them in step).
// An event this page does not know yet is shown by its name.
const EVENT_LABELS = {
  "account.signup": "Account created",
  "account.email_verified": "Email address verified",
  "account.password_changed": "Password changed",
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
  "notification.sent": "Email notification",
};
const WARNING_EVENTS = new Set(["session.login_failed", "key.leaked", "key.refused"]);

const $ = (id) => document.getElementById(id);

/**
 * A table filled from a paginated list endpoint, its parts found by id:
 * `${name}-body`, `-table`, `-empty`, `-loading`, `-error` and the `-more` button,
 * which appends the page that the last response's Link header points to.
 * Returns load(): the first page again, replacing the rows.
 */
function pagedTable(name, firstUrl, row, errorText, onNotFound = null) {
  const body = $(`${name}-body`);
  const more = $(`${name}-more`);
  let next = null;

  async function load(url = firstUrl) {
    const append = url !== firstUrl;
    more.disabled = true;
    try {
      const { data, headers } = await api("GET", url);
      if (!append) body.replaceChildren();
      body.append(...data.map(row));
      next = nextLink(headers);
      const none = body.children.length === 0;
      show($(`${name}-empty`), none);
      show($(`${name}-table`), !none);
      show(more, Boolean(next));
      setText($(`${name}-error`), "");
    } catch (error) {
      if (error.redirecting) return;
      if (error.status === 404 && !append && onNotFound) onNotFound();
      else setText($(`${name}-error`), `${errorText} ${error.message}`);
    } finally {
      more.disabled = false;
      show($(`${name}-loading`), false);
    }
  }

  more.addEventListener("click", () => {
    if (next) load(next);
  });
  return () => load();
}

if (readSession()) {
  start();
} else {
  goToSignIn();
}

function start() {
  const keysTitle = $("keys-title");
  const keysStatus = $("keys-status");
  const form = $("new-key-form");
  const nameInput = $("key-name");
  const generate = $("generate");
  const newKeyDialog = $("new-key-dialog");
  const keyValue = $("new-key-value");
  const copyButton = $("copy-key");
  const copyStatus = $("copy-status");
  const revokeDialog = $("revoke-dialog");
  const revokeConfirm = $("revoke-confirm");
  const revokeError = $("revoke-error");
  let revoking = null;
  let copyTimer = 0;

  // --- Account and counter ------------------------------------------------

  async function refreshAccount() {
    try {
      const { data } = await api("GET", "/api/account");
      $("account-email").textContent = data.email;
      renderCounter(data.activeKeys, data.keyLimit);
      setText($("page-error"), "");
    } catch (error) {
      if (!error.redirecting) {
        setText($("page-error"), `Could not load your account. ${error.message}`);
      }
    }
  }

  function renderCounter(active, limit) {
    const full = active >= limit;
    const counter = $("key-counter");
    counter.textContent = `${active} of ${limit} active keys`;
    counter.classList.toggle("counter-full", full);
    show(counter);
    $("new-key-fields").disabled = full;
    setText(
      $("limit-note"),
      full
        ? `You have ${limit} active keys, the most an account can have. ` +
            "Revoke a key you no longer use to free a slot for a new one."
        : "",
    );
  }

  // --- Key list -------------------------------------------------------------

  const loadKeys = pagedTable("keys", KEYS_URL, keyRow, "Could not load your keys.");

  function refreshKeys() {
    return Promise.all([refreshAccount(), loadKeys()]);
  }

  function keyRow(key) {
    return h(
      "tr",
      { className: key.isRevoked ? "is-revoked" : null, dataset: { keyId: key.id } },
      h("td", { className: "cell-name", dataset: { label: "Name" } }, key.name),
      h("td", { dataset: { label: "Key" } }, h("code", {}, prefixText(key.keyPrefix))),
      h("td", { dataset: { label: "Created" } }, dateElement(key.createdAt)),
      h("td", { dataset: { label: "Last used" } }, ...lastUsed(key)),
      h("td", { dataset: { label: "Status" } }, statusBadge(key)),
      h("td", { className: "cell-actions" }, key.isRevoked ? null : revokeButton(key)),
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

  function statusBadge(key) {
    return key.isRevoked
      ? h(
          "span",
          {
            className: "badge badge-revoked",
            title: key.revokedAt ? `Revoked ${utcText(key.revokedAt)}` : null,
          },
          "Revoked",
        )
      : h("span", { className: "badge badge-active" }, "Active");
  }

  function revokeButton(key) {
    const button = h(
      "button",
      {
        type: "button",
        className: "button button-danger-quiet button-small",
        "aria-label": `Revoke ${key.name}`,
      },
      "Revoke",
    );
    button.addEventListener("click", () => openRevoke(key, button));
    return button;
  }

  // --- New key ---------------------------------------------------------------

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    setBusy(generate, true, "Generating…");
    let created;
    try {
      ({ data: created } = await api("POST", "/api/account/apikeys", {
        body: { name: nameInput.value },
      }));
    } catch (error) {
      setBusy(generate, false);
      if (error.redirecting) return;
      showErrors(form, error);
      refreshAccount(); // a refusal such as the limit may mean the counter is stale
      return;
    }
    setBusy(generate, false);
    form.reset();
    showNewKey(created);
    refreshKeys();
    loadLog();
  });

  // The raw key lives only in the dialog's field, and only until the dialog closes.
  function showNewKey(created) {
    keyValue.value = created.key;
    delete created.key;
    $("new-key-name").textContent = created.name;
    resetCopy();
    openDialog(newKeyDialog, { opener: generate, fallback: keysTitle });
    setText(keysStatus, `Key “${created.name}” created.`);
  }

  function forgetNewKey() {
    keyValue.value = "";
    $("new-key-name").textContent = "";
    resetCopy();
  }

  function resetCopy() {
    clearTimeout(copyTimer);
    copyButton.textContent = "Copy";
    copyStatus.textContent = "";
  }

  function endNewKey() {
    forgetNewKey();
    if (newKeyDialog.open) newKeyDialog.close();
  }

  $("new-key-done").addEventListener("click", endNewKey);
  newKeyDialog.addEventListener("close", forgetNewKey); // Escape, too
  // Leaving the page (even into the back/forward cache) forgets the key at once.
  window.addEventListener("pagehide", endNewKey);

  keyValue.addEventListener("focus", () => keyValue.select());
  keyValue.addEventListener("click", () => keyValue.select());

  copyButton.addEventListener("click", async () => {
    const value = keyValue.value;
    if (!value) return;
    let copied = false;
    if (navigator.clipboard && window.isSecureContext) {
      try {
        await navigator.clipboard.writeText(value);
        copied = true;
      } catch {
        copied = false;
      }
    }
    if (!copied) {
      // Fallback: select the whole key, then try the older copy command.
      keyValue.focus();
      keyValue.select();
      try {
        copied = document.execCommand("copy");
      } catch {
        copied = false;
      }
    }
    clearTimeout(copyTimer);
    if (copied) {
      copyButton.textContent = "Copied";
      copyStatus.textContent = "Copied to your clipboard.";
      copyTimer = setTimeout(resetCopy, 4000);
    } else {
      copyStatus.textContent = "The key is selected: press Ctrl+C (⌘C on a Mac) to copy it.";
    }
  });

  // --- Revoke ---------------------------------------------------------------

  function openRevoke(key, opener) {
    revoking = key;
    $("revoke-name").textContent = key.name;
    $("revoke-prefix").textContent = prefixText(key.keyPrefix);
    setText(revokeError, "");
    openDialog(revokeDialog, { opener, fallback: keysTitle });
  }

  revokeDialog.addEventListener("close", () => {
    revoking = null;
  });
  $("revoke-cancel").addEventListener("click", () => revokeDialog.close());

  revokeConfirm.addEventListener("click", async () => {
    const key = revoking;
    if (!key) return;
    setText(revokeError, "");
    setBusy(revokeConfirm, true, "Revoking…");
    try {
      await api("DELETE", `/api/account/apikeys/${encodeURIComponent(key.id)}`);
      await refreshKeys();
      setText(keysStatus, `Key “${key.name}” revoked.`);
      if (revokeDialog.open) revokeDialog.close();
      loadLog();
    } catch (error) {
      if (error.redirecting) return;
      setText(revokeError, error.message);
      refreshKeys(); // already revoked, or gone: show the list as it is now
    } finally {
      setBusy(revokeConfirm, false);
    }
  });

  // --- Security log -----------------------------------------------------------

  const loadLog = pagedTable("log", LOG_URL, logRow, "Could not load the security log.", () => {
    // This server has no security log (yet): say so and show nothing else.
    show($("log-unavailable"));
  });

  function logRow(entry) {
    const details = [];
    if (entry.keyPrefix) details.push("Key ", h("code", {}, prefixText(entry.keyPrefix)));
    if (entry.actorType === "key" && entry.actorId && entry.actorId !== entry.keyPrefix) {
      if (details.length) details.push(" · ");
      details.push("with API key ", h("code", {}, prefixText(entry.actorId)));
    }
    const label = EVENT_LABELS[entry.event] || entry.event;
    return h(
      "tr",
      { className: WARNING_EVENTS.has(entry.event) ? "is-warning" : null },
      h("td", { dataset: { label: "When" } }, relativeTimeElement(entry.occurredAt)),
      h("td", { className: "cell-name", dataset: { label: "Event" } }, label),
      h("td", { dataset: { label: "Details" } }, h("span", {}, ...(details.length ? details : ["—"]))),
      h(
        "td",
        { dataset: { label: "From" } },
        entry.clientAddress || "—",
        entry.userAgent
          ? h("span", { className: "sub", title: `User agent: ${entry.userAgent}` }, entry.userAgent)
          : null,
      ),
    );
  }

  // --- Sign out -----------------------------------------------------------------

  $("sign-out").addEventListener("click", async (event) => {
    setBusy(event.currentTarget, true, "Signing out…");
    try {
      await api("POST", "/api/auth/logout");
    } catch (error) {
      if (error.redirecting) return;
      // Unreachable server: this tab forgets the session all the same.
    }
    clearSession();
    location.replace(signInUrl({ reason: "signed-out" }));
  });

  setInterval(refreshTimes, 30_000);
  refreshKeys();
  loadLog();
}
