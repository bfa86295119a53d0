import { api, enterAuthPage, saveSession } from "./api.js";
import { byId, clearErrors, setBusy, setText, show, showErrors } from "./ui.js";
import { passkeyProblem, passkeysSupported, usePasskey } from "./webauthn.js";

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
      if (data.twoFactorRequired) {
        form.hidden = true;
        secondStep(data, page.next);
        return;
      }
      saveSession(data);
      location.replace(page.next);
    } catch (error) {
      setBusy(button, false);
      form.elements.password.value = "";
      showErrors(form, error);
    }
  });
}

// The second step: a code of the authenticator app, a recovery code, or a passkey.
function secondStep(challenge, next) {
  const form = byId("two-factor-form");
  const input = form.elements.code;
  const submit = byId("two-factor-submit");
  const methods = challenge.methods;
  let recovery = false;
  if (!methods.includes("totp")) {
    byId("use-recovery").textContent = "Lost your passkey? Use a recovery code";
    byId("two-factor-lead").textContent = "Use your passkey to finish signing in.";
  }

  function showMode() {
    byId("code-label").textContent = recovery ? "Recovery code" : "Code";
    if (recovery) {
      byId("two-factor-lead").textContent = "Enter one of your recovery codes. Each works once.";
    }
    input.inputMode = recovery ? "text" : "numeric";
    input.autocomplete = recovery ? "off" : "one-time-code";
    show(byId("use-recovery"), !recovery);
    show(byId("code-field"), recovery || methods.includes("totp"));
    show(submit, recovery || methods.includes("totp"));
  }

  async function finish(body, button, label) {
    clearErrors(form);
    setBusy(button, true, label);
    try {
      const { data } = await api("POST", "/api/auth/login/two-factor", {
        auth: false,
        body: { challenge: challenge.challenge, ...body },
      });
      saveSession(data);
      location.replace(next);
    } catch (error) {
      setBusy(button, false);
      input.value = "";
      showErrors(form, error);
    }
  }

  form.hidden = false;
  showMode();
  byId("use-recovery").addEventListener("click", () => {
    recovery = true;
    showMode();
    input.focus();
  });
  const passkeyButton = byId("use-passkey");
  if (methods.includes("passkey") && passkeysSupported()) {
    show(passkeyButton, true);
    passkeyButton.addEventListener("click", async () => {
      clearErrors(form);
      let credential;
      try {
        const { data } = await api("POST", "/api/auth/login/two-factor/passkey-options", {
          auth: false,
          body: { challenge: challenge.challenge },
        });
        credential = await usePasskey(data.publicKey);
      } catch (error) {
        setText(form.querySelector("[data-form-error]"), error.status ? error.message : passkeyProblem(error));
        return;
      }
      await finish({ passkey: credential }, passkeyButton, "Signing in…");
    });
  }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const value = input.value.trim();
    const body = recovery ? { recoveryCode: value } : { code: value.replace(/ /g, "") };
    await finish(body, submit, "Verifying…");
  });
  if (!input.closest("[hidden]")) input.focus();
  else if (!passkeyButton.hidden) passkeyButton.focus();
}
