import { api, enterAuthPage, saveSession } from "./api.js";
import { clearErrors, setBusy, setText, showErrors } from "./ui.js";

const NOTICES = {
  expired: "Your session has expired. Sign in again to continue.",
  "signed-out": "You have signed out.",
  created: "Your account is ready. Sign in to continue.",
  "password-changed":
    "Your password has been changed and every session has been signed out. " +
    "Sign in with your new password.",
};

// Where sign-up is turned off (the server says so in the page), nobody is offered it.
document.getElementById("signup-offer").hidden = document.body.dataset.signup === "off";

const page = enterAuthPage(document.getElementById("signup-link"));

if (page) {
  const form = document.getElementById("signin-form");
  setText(document.getElementById("notice"), NOTICES[page.reason] || "");
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
      location.replace(page.next);
    } catch (error) {
      setBusy(button, false);
      form.elements.password.value = "";
      showErrors(form, error);
    }
  });
}
