// /invitations: the page the emailed invitation link opens. The token travels in the
// fragment (#token=...), which browsers never send to a server; this page keeps it in
// this tab's storage, so that it survives signing in or creating a sign-in first, and
// takes it out of the address bar. Accepting joins the account and switches this tab
// to it.

import { ApiError, api, clearSession, readSession, saveSession, signInUrl } from "./api.js";
import { byId, setBusy, setText, show } from "./ui.js";

const KEPT = "paradarum.invitation";
const OUTCOMES = [
  "invitation-signed-out",
  "invitation-ready",
  "invitation-done",
  "invitation-failed",
  "invitation-missing",
];

function takeToken() {
  const found = new URLSearchParams(location.hash.slice(1)).get("token") || "";
  if (location.hash) history.replaceState(null, "", location.pathname + location.search);
  if (found) sessionStorage.setItem(KEPT, found);
  return found || sessionStorage.getItem(KEPT) || "";
}

function outcome(id) {
  for (const other of OUTCOMES) show(byId(other), other === id);
}

function failed(message, { otherAddress = false } = {}) {
  setText(byId("invitation-error"), message);
  show(byId("invitation-sign-out"), otherAddress);
  outcome("invitation-failed");
}

async function start() {
  const token = takeToken();
  if (!token) {
    outcome("invitation-missing");
    return;
  }
  if (!readSession()) {
    outcome("invitation-signed-out");
    return;
  }
  try {
    const { data } = await api("GET", "/api/account");
    setText(byId("invitation-email"), data.email);
    outcome("invitation-ready");
  } catch (error) {
    if (!error.redirecting) failed(error.message);
  }
}

const accept = byId("accept");
accept.addEventListener("click", async () => {
  setBusy(accept, true, "Joining…");
  try {
    const { data } = await api("POST", "/api/invitations/accept", {
      body: { token: sessionStorage.getItem(KEPT) || "" },
    });
    sessionStorage.removeItem(KEPT);
    const { data: session } = await api("POST", "/api/auth/switch", {
      body: { accountId: data.id },
    });
    saveSession(session);
    setText(byId("invitation-done-message"), `You joined ${data.name} as ${data.role}.`);
    outcome("invitation-done");
  } catch (error) {
    setBusy(accept, false);
    if (error instanceof ApiError && error.redirecting) return;
    if (error.status === 400) sessionStorage.removeItem(KEPT);
    failed(error.message, { otherAddress: error.status === 403 });
  }
});

byId("invitation-sign-out").addEventListener("click", async () => {
  try {
    await api("POST", "/api/auth/logout");
  } catch {
    // Signed out here all the same.
  }
  clearSession();
  location.replace(signInUrl({ next: "/invitations" }));
});

window.addEventListener("hashchange", start);
start();
