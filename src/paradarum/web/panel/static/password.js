// Change the password (POST /api/account/password). Every session of the account ends
// with it, this one too: the person signs in again with the new password.

import { api, clearSession, signInUrl } from "./api.js";
import { byId, clearErrors, setBusy, showErrors } from "./ui.js";

export function passwordSection() {
  const form = byId("password-form");
  const button = byId("change-password");

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    setBusy(button, true, "Changing…");
    try {
      await api("POST", "/api/account/password", {
        body: {
          currentPassword: form.elements.currentPassword.value,
          newPassword: form.elements.newPassword.value,
        },
      });
    } catch (error) {
      setBusy(button, false);
      if (error.redirecting) return;
      showErrors(form, error);
      return;
    }
    clearSession();
    location.replace(signInUrl({ reason: "password-changed" }));
  });
}
