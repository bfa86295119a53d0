// What every Account settings page shares: it signs the page in, loads the account
// (the address in the top bar, the email verification banner), and signs out. Each
// section's own script (static/sections/<section>.js) hands its part to
// settingsSection().

import { api, clearSession, goToSignIn, readSession, signInUrl } from "./api.js";
import { emailSection } from "./email.js";
import { accountSwitcher } from "./switcher.js";
import { byId, h, refreshTimes, setBusy, setText } from "./ui.js";

// A phone shows the whole address, on two lines if need be, rather than cutting it:
// the line may break after the "@".
function showEmail(email) {
  const target = byId("account-email");
  const at = email.lastIndexOf("@");
  if (at > 0) target.replaceChildren(email.slice(0, at), h("wbr"), email.slice(at));
  else target.textContent = email;
}

/**
 * Run one section of Account settings. `setup(page)` builds the section from
 * `page.state` (what the page knows: `account`, `keys`, `zones`) and
 * `page.refreshAccount()`, and returns `{ accountShown(), load() }` (both optional):
 * the first runs each time the account is (re)loaded, the second once, to fetch the
 * section's own data.
 */
export function settingsSection(setup) {
  if (!readSession()) {
    goToSignIn();
    return;
  }
  const state = { account: null, keys: [], zones: [] };
  let section = {};
  let switcherShown = false;

  async function refreshAccount() {
    try {
      const { data } = await api("GET", "/api/account");
      state.account = data;
      if (!switcherShown) {
        switcherShown = true;
        accountSwitcher(data.id);
      }
      showEmail(data.email);
      verification.render();
      if (section.accountShown) section.accountShown();
      setText(byId("page-error"), "");
    } catch (error) {
      if (!error.redirecting) {
        setText(byId("page-error"), `Could not load your account. ${error.message}`);
      }
    }
  }

  const verification = emailSection(state, { refreshAccount });

  byId("sign-out").addEventListener("click", async (event) => {
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

  section = setup({ state, refreshAccount }) || {};
  setInterval(refreshTimes, 30_000);
  refreshAccount();
  if (section.load) section.load();
}

/** The first page of a list endpoint (what another section's list needs to name things). */
export async function firstPage(url) {
  try {
    const { data } = await api("GET", url);
    return data;
  } catch (error) {
    if (!error.redirecting) setText(byId("page-error"), error.message);
    return [];
  }
}
