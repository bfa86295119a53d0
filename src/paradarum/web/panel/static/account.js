// Account settings: the email verification banner, API keys, zones, password and the
// security log, each a module of its own; this one signs the page in and keeps what
// they share.

import { api, clearSession, goToSignIn, readSession, signInUrl } from "./api.js";
import { emailSection } from "./email.js";
import { keysSection } from "./keys.js";
import { logSection } from "./log.js";
import { passwordSection } from "./password.js";
import { accountSwitcher } from "./switcher.js";
import { byId, h, refreshTimes, setBusy, setText } from "./ui.js";
import { zonesSection } from "./zones.js";

if (readSession()) {
  start();
} else {
  goToSignIn();
}

// A phone shows the whole address, on two lines if need be, rather than cutting it:
// the line may break after the "@".
function showEmail(email) {
  const target = byId("account-email");
  const at = email.lastIndexOf("@");
  if (at > 0) target.replaceChildren(email.slice(0, at), h("wbr"), email.slice(at));
  else target.textContent = email;
  byId("password-username").value = email;
}

function start() {
  // What the page knows, shared by its sections; each redraws from here.
  const state = { account: null, keys: [], zones: [] };

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
      keys.renderCounter();
      zones.renderForm();
      setText(byId("page-error"), "");
    } catch (error) {
      if (!error.redirecting) {
        setText(byId("page-error"), `Could not load your account. ${error.message}`);
      }
    }
  }

  const verification = emailSection(state, { refreshAccount });
  const log = logSection(state);
  const keys = keysSection(state, {
    refreshAccount,
    keysShown: () => log.render(), // the log names keys
    changed: () => log.load(),
  });
  const zones = zonesSection(state, {
    zonesShown() {
      keys.renderZoneChoices();
      keys.render(); // rows name the zones a key is restricted to
    },
    changed: () => log.load(),
    refreshAccount,
  });
  passwordSection();

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

  setInterval(refreshTimes, 30_000);
  refreshAccount();
  // Zones first: key rows name the zones they are restricted to.
  zones.load().finally(() => keys.load());
  log.load();
}
