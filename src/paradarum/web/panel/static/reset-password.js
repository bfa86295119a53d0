// /reset-password: the page the emailed reset link opens. As on /verify-email, the
// token travels in the fragment, which browsers never send to a server, and this page
// takes it out of the address bar before anything else.

import { api, clearSession, signInUrl } from "./api.js";
import { onNewLinkToken, takeLinkToken } from "./link-token.js";
import { byId, clearErrors, setBusy, setText, show, showErrors } from "./ui.js";

const form = byId("reset-form");
let token = takeLinkToken();

function start() {
  show(byId("reset-failed"), false);
  show(byId("reset-missing"), !token);
  show(form, Boolean(token));
  if (token) form.elements.password.focus();
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const button = form.querySelector("button[type=submit]");
  clearErrors(form);
  setBusy(button, true, "Saving…");
  try {
    await api("POST", "/api/auth/password/reset", {
      auth: false,
      body: { token, password: form.elements.password.value },
    });
  } catch (error) {
    setBusy(button, false);
    const problems = (error.fieldErrors && error.fieldErrors.token) || [];
    if (problems.length) {
      // The link itself is refused (used, expired): only a new one helps.
      form.reset();
      show(form, false);
      setText(byId("reset-error"), problems.join(" "));
      show(byId("reset-failed"));
      return;
    }
    showErrors(form, error);
    return;
  }
  // Every session has ended, this tab's too: sign in with the new password.
  clearSession();
  location.replace(signInUrl({ reason: "password-changed" }));
});

onNewLinkToken((next) => {
  token = next;
  start();
});

start();
