// /verify-email: the page the emailed link opens. The token travels in the fragment
// (#token=...), which browsers never send to a server, so it stays out of every log;
// this page takes it out of the address bar too, then hands it to the API.

import { api } from "./api.js";
import { byId, setBusy, setText, show } from "./ui.js";

const token = new URLSearchParams(location.hash.slice(1)).get("token") || "";
// Done with the address bar: the token lingers in neither history nor bookmarks.
if (location.hash) history.replaceState(null, "", location.pathname + location.search);

const working = byId("verify-working");
const retry = byId("verify-retry");

function outcome(id) {
  for (const other of ["verify-done", "verify-failed", "verify-missing"]) {
    show(byId(other), other === id);
  }
  show(working, false);
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

retry.addEventListener("click", async () => {
  setBusy(retry, true, "Trying again…");
  await verify();
  setBusy(retry, false);
});

if (token) {
  verify();
} else {
  outcome("verify-missing");
}
