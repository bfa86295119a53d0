// Account settings › Security › Two-factor sign-in: the authenticator app (TOTP),
// passkeys, recovery codes, and (owners) requiring a second factor of every member.
// Changes need a recent sign-in: api() asks for it in a dialog and goes on.

import { api } from "./api.js";
import {
  byId,
  clearErrors,
  h,
  relativeTimeElement,
  setBusy,
  setText,
  show,
  showErrors,
} from "./ui.js";
import { createPasskey, passkeyProblem, passkeysSupported } from "./webauthn.js";

export function twoFactorSection(state) {
  const setupForm = byId("totp-setup");
  const offForm = byId("totp-off");
  const passkeyForm = byId("passkey-form");
  let status = null;

  show(byId("enrol-required"), new URLSearchParams(location.search).get("enrol") === "required");

  function showCodes(codes) {
    byId("recovery-codes").replaceChildren(...codes.map((code) => h("li", {}, code)));
    show(byId("recovery-box"), true);
  }

  function render() {
    const on = status.totp;
    setText(
      byId("totp-state"),
      on ? "On: signing in asks for a code from your app." : "Off.",
    );
    show(byId("totp-start"), !on && setupForm.hidden);
    show(offForm, on);
    const list = byId("passkey-list");
    list.replaceChildren(
      ...status.passkeys.map((passkey) => {
        const remove = h(
          "button",
          { type: "button", className: "button button-danger-quiet button-small" },
          "Remove",
        );
        remove.addEventListener("click", () => removePasskey(passkey, remove));
        return h(
          "li",
          { className: "passkey", dataset: { passkeyId: passkey.id } },
          h("span", { className: "strong" }, passkey.name),
          " · added ",
          relativeTimeElement(passkey.createdAt),
          passkey.lastUsedAt ? " · last used " : " · never used",
          passkey.lastUsedAt ? relativeTimeElement(passkey.lastUsedAt) : null,
          " ",
          remove,
        );
      }),
    );
    show(passkeyForm, passkeysSupported());
    const enabled = status.totp || status.passkeys.length > 0;
    setText(
      byId("recovery-state"),
      enabled
        ? `${status.recoveryCodesLeft} of 10 recovery codes left.`
        : "You get ten recovery codes when you turn on a second factor.",
    );
    show(byId("recovery-renew"), enabled);
    if (enabled) show(byId("enrol-required"), false);
    const owner = state.account && state.account.role === "owner";
    show(byId("require-box"), Boolean(owner));
    byId("require-two-factor").checked = status.required;
  }

  async function load() {
    try {
      ({ data: status } = await api("GET", "/api/account/two-factor"));
      setText(byId("two-factor-error"), "");
      render();
    } catch (error) {
      if (!error.redirecting) setText(byId("two-factor-error"), error.message);
    }
  }

  byId("totp-start").addEventListener("click", async (event) => {
    const button = event.currentTarget;
    setBusy(button, true, "Preparing…");
    try {
      const { data } = await api("POST", "/api/account/two-factor/totp");
      byId("totp-qr").src = data.qrCode;
      byId("totp-secret").textContent = data.secret;
      show(setupForm, true);
      show(button, false);
      byId("totp-code").focus();
    } catch (error) {
      if (!error.redirecting) setText(byId("two-factor-error"), error.message);
    } finally {
      setBusy(button, false);
    }
  });

  setupForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = byId("totp-confirm");
    clearErrors(setupForm);
    setBusy(button, true, "Turning on…");
    try {
      const { data } = await api("POST", "/api/account/two-factor/totp/confirm", {
        body: { code: setupForm.elements.code.value.trim() },
      });
      setupForm.reset();
      show(setupForm, false);
      showCodes(data.recoveryCodes);
      await load();
    } catch (error) {
      if (!error.redirecting) showErrors(setupForm, error);
    } finally {
      setBusy(button, false);
    }
  });

  offForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = byId("totp-disable");
    clearErrors(offForm);
    setBusy(button, true, "Turning off…");
    try {
      await api("DELETE", "/api/account/two-factor/totp", {
        body: { code: offForm.elements.code.value.trim() },
      });
      offForm.reset();
      show(byId("recovery-box"), false);
      await load();
    } catch (error) {
      if (!error.redirecting) showErrors(offForm, error);
    } finally {
      setBusy(button, false);
    }
  });

  passkeyForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = byId("passkey-add");
    clearErrors(passkeyForm);
    const name = passkeyForm.elements.name.value.trim();
    if (!name) {
      showErrors(passkeyForm, { message: "", fieldErrors: { name: ["Give it a name."] } });
      return;
    }
    setBusy(button, true, "Waiting for the passkey…");
    try {
      const { data: options } = await api("POST", "/api/account/two-factor/passkeys/options");
      let credential;
      try {
        credential = await createPasskey(options.publicKey);
      } catch (error) {
        setText(passkeyForm.querySelector("[data-form-error]"), passkeyProblem(error));
        return;
      }
      const { data } = await api("POST", "/api/account/two-factor/passkeys", {
        body: { challenge: options.challenge, name, credential },
      });
      passkeyForm.reset();
      if (data.recoveryCodes) showCodes(data.recoveryCodes);
      await load();
    } catch (error) {
      if (!error.redirecting) showErrors(passkeyForm, error);
    } finally {
      setBusy(button, false);
    }
  });

  async function removePasskey(passkey, button) {
    setBusy(button, true, "Removing…");
    try {
      await api("DELETE", `/api/account/two-factor/passkeys/${passkey.id}`);
      await load();
    } catch (error) {
      setBusy(button, false);
      if (!error.redirecting) setText(byId("two-factor-error"), error.message);
    }
  }

  byId("recovery-renew").addEventListener("click", async (event) => {
    const button = event.currentTarget;
    setBusy(button, true, "Making codes…");
    try {
      const { data } = await api("POST", "/api/account/two-factor/recovery-codes");
      showCodes(data.recoveryCodes);
      await load();
    } catch (error) {
      if (!error.redirecting) setText(byId("two-factor-error"), error.message);
    } finally {
      setBusy(button, false);
    }
  });

  byId("require-two-factor").addEventListener("change", async (event) => {
    const box = event.currentTarget;
    box.disabled = true;
    try {
      await api("PATCH", "/api/account", { body: { requireTwoFactor: box.checked } });
      setText(byId("require-error"), "");
    } catch (error) {
      box.checked = !box.checked;
      if (!error.redirecting) setText(byId("require-error"), error.message);
    } finally {
      box.disabled = false;
    }
  });

  return { load, render: () => status && render() };
}
