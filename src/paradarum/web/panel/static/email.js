// Account settings while the account's email address is not verified yet: a banner
// that says so, and what waits for it (keys and zones), with a button that sends a
// new link (POST /api/account/email/verification, a few times an hour).

import { api } from "./api.js";
import { byId, setBusy, setText, show } from "./ui.js";

/** True when the API says the address still awaits its link. */
export function awaitsVerification(account) {
  return Boolean(account) && account.emailVerified === false;
}

/** `hooks.refreshAccount()` reloads the account (and with it this banner). */
export function emailSection(state, hooks) {
  const banner = byId("verify-banner");
  const resend = byId("verify-resend");
  const status = byId("verify-status");
  const error = byId("verify-error");

  function render() {
    const waiting = awaitsVerification(state.account);
    byId("verify-address").textContent = waiting ? state.account.email : "";
    show(banner, waiting);
  }

  resend.addEventListener("click", async () => {
    status.textContent = "";
    setText(error, "");
    setBusy(resend, true, "Sending…");
    try {
      const { message } = await api("POST", "/api/account/email/verification");
      status.textContent = message;
    } catch (failure) {
      if (failure.redirecting) return;
      // The API's sentence: "try again later" (429, with how long), or that the
      // address is verified already (400), in which case the page catches up.
      setText(error, failure.message);
      if (failure.status === 400) hooks.refreshAccount();
    } finally {
      setBusy(resend, false);
    }
  });

  // The link is usually followed in another tab: back on this one, look again.
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && awaitsVerification(state.account)) {
      hooks.refreshAccount();
    }
  });

  return { render };
}
