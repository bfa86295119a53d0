// /verify-email: the page the emailed link opens. The token travels in the fragment
// (#token=...), which browsers never send to a server, so it stays out of every log;
// this page takes it out of the address bar too, then hands it to the API.

import { api } from "./api.js";
import { onNewLinkToken, takeLinkToken } from "./link-token.js";
import { byId, setBusy, setText, show } from "./ui.js";

const OUTCOMES = ["verify-done", "verify-failed", "verify-missing"];
const working = byId("verify-working");
const retry = byId("verify-retry");
let token = takeLinkToken();

function outcome(id) {
  for (const other of OUTCOMES) show(byId(other), other === id);
  show(working, id === null);
}

async function verify() {
  let message;
  try {
    ({ message } = await api("POST", "/api/auth/email/verify", { auth: false, body: { token } }));
  } catch (error) {
    // A refused link (400) says why; anything else (no connection, a busy server)
    // may work on a second try, with the token this page still holds.
    const problems = (error.fieldErrors && error.fieldErrors.token) || [];
    setText(byId("verify-error"), problems.length ? problems.join(" ") : error.message);
    show(retry, error.status !== 400);
    outcome("verify-failed");
    return;
  }
  setText(byId("verify-done-message"), message);
  outcome("verify-done");
}

function start() {
  if (!token) {
    outcome("verify-missing");
    return;
  }
  outcome(null);
  verify();
}

retry.addEventListener("click", async () => {
  setBusy(retry, true, "Trying again…");
  await verify();
  setBusy(retry, false);
});

onNewLinkToken((next) => {
  token = next;
  start();
});

start();
