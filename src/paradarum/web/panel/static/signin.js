import { api, readSession, safeNext, saveSession, sessionHasExpired } from "./api.js";
import { clearErrors, setBusy, setText, showErrors } from "./ui.js";

const NOTICES = {
  expired: "Your session has expired. Sign in again to continue.",
  "signed-out": "You have signed out.",
  created: "Your account is ready. Sign in to continue.",
};

const params = new URLSearchParams(location.search);
const next = safeNext(params.get("next"));
const existing = readSession();

if (existing && !sessionHasExpired(existing)) {
  location.replace(next);
} else {
  const form = document.getElementById("signin-form");
  const notice = document.getElementById("notice");
  const signupLink = document.getElementById("signup-link");

  setText(notice, NOTICES[params.get("reason")] || "");
  if (params.has("next")) signupLink.search = new URLSearchParams({ next }).toString();
  form.elements.email.focus();

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
    clearErrors(form);
    setBusy(button, true, "Signing in…");
    try {
      const { data } = await api("POST", "/api/auth/login", {
        auth: false,
        body: { email: form.elements.email.value, password: form.elements.password.value },
      });
      saveSession(data);
      location.replace(next);
    } catch (error) {
      setBusy(button, false);
      form.elements.password.value = "";
      showErrors(form, error);
    }
  });
}
