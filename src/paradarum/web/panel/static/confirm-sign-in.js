// /confirm-sign-in: the page the emailed one-time sign-in link opens (sent when the
// right password came from a new address while the account is under attack). The
// token travels in the fragment and leaves the address bar at once; it is spent only
// when the person presses the button, never by a mail scanner opening the page.

import { api, saveSession } from "./api.js";
import { onNewLinkToken, takeLinkToken } from "./link-token.js";
import { byId, clearErrors, setBusy, show, showErrors } from "./ui.js";

const form = byId("confirm-form");
let token = takeLinkToken();

function start() {
  show(byId("confirm-missing"), !token);
  show(form, Boolean(token));
  if (token) form.querySelector("button[type=submit]").focus();
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const button = form.querySelector("button[type=submit]");
  clearErrors(form);
  setBusy(button, true, "Signing in…");
  try {
    const { data } = await api("POST", "/api/auth/login/link", { auth: false, body: { token } });
    saveSession(data);
    location.replace("/account");
  } catch (error) {
    setBusy(button, false);
    showErrors(form, error);
  }
});

onNewLinkToken((next) => {
  token = next;
  start();
});

start();
