// Step-up: an action that mints power (a key, members, the password, second factors,
// trust policies) needs a sign-in from the last 10 minutes. When the server says
// `stepUpRequired`, this dialog asks for the password (and a code, or a passkey, where
// two-factor sign-in is on), gets a fresh session, and the caller repeats the action.

import { api, saveSession } from "./api.js";
import { h, openDialog, setBusy, setText, showErrors, clearErrors } from "./ui.js";
import { passkeyProblem, passkeysSupported, usePasskey } from "./webauthn.js";

let pending = null;

function field(id, label, input, hint) {
  return h(
    "div",
    { className: "field" },
    h("label", { for: id }, label),
    input,
    hint ? h("p", { className: "hint" }, hint) : null,
    h("p", { id: `${id}-error`, className: "field-error", dataset: { errorFor: input.name }, hidden: true }),
  );
}

function build(status) {
  const password = h("input", {
    id: "step-up-password",
    name: "password",
    type: "password",
    autocomplete: "current-password",
  });
  const code = h("input", {
    id: "step-up-code",
    name: "code",
    type: "text",
    inputmode: "numeric",
    autocomplete: "one-time-code",
    spellcheck: "false",
  });
  const secondFactor = status && (status.totp || status.passkeys.length > 0);
  const form = h(
    "form",
    { id: "step-up-form", className: "stack", method: "dialog", novalidate: true },
    field("step-up-password", "Password", password),
    secondFactor && status.totp
      ? field("step-up-code", "Code from your authenticator app", code, "Or one of your recovery codes.")
      : null,
    h("p", { className: "alert", role: "alert", dataset: { formError: "" }, hidden: true }),
    h(
      "div",
      { className: "dialog-actions" },
      h("button", { type: "button", id: "step-up-cancel", className: "button" }, "Cancel"),
      secondFactor && status.passkeys.length > 0 && passkeysSupported()
        ? h("button", { type: "button", id: "step-up-passkey", className: "button" }, "Use a passkey")
        : null,
      h("button", { type: "submit", id: "step-up-confirm", className: "button button-primary" }, "Confirm"),
    ),
  );
  const dialog = h(
    "dialog",
    { id: "step-up-dialog", className: "dialog", "aria-labelledby": "step-up-title" },
    h("h2", { id: "step-up-title" }, "Confirm it’s you"),
    h(
      "p",
      { className: "dialog-lead" },
      "This needs a sign-in from the last 10 minutes. Enter your password" +
        (secondFactor ? " and a second factor" : "") +
        " to go on.",
    ),
    form,
  );
  return { dialog, form, secondFactor: Boolean(secondFactor) };
}

async function confirm(form, body) {
  const { data } = await api("POST", "/api/auth/reauthenticate", { body, stepUp: false });
  saveSession(data);
}

/** Ask the person to confirm it is them; true once a fresh session is saved. */
export function stepUp() {
  if (pending) return pending;
  pending = (async () => {
    let status = null;
    try {
      ({ data: status } = await api("GET", "/api/account/two-factor", { stepUp: false }));
    } catch {
      status = null;
    }
    const { dialog, form } = build(status);
    document.body.append(dialog);
    return await new Promise((resolve) => {
      let done = false;
      const finish = (ok) => {
        if (done) return;
        done = true;
        dialog.close();
        dialog.remove();
        resolve(ok);
      };
      dialog.addEventListener("cancel", () => finish(false));
      dialog.querySelector("#step-up-cancel").addEventListener("click", () => finish(false));
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        const button = dialog.querySelector("#step-up-confirm");
        clearErrors(form);
        const body = { password: form.elements.password.value };
        const code = form.elements.code ? form.elements.code.value.trim() : "";
        if (code) {
          if (/^\d[\d ]*$/.test(code)) body.code = code.replace(/ /g, "");
          else body.recoveryCode = code;
        }
        setBusy(button, true, "Confirming…");
        try {
          await confirm(form, body);
          finish(true);
        } catch (error) {
          setBusy(button, false);
          if (error.redirecting) return finish(false);
          if (error.fieldErrors && error.fieldErrors.recoveryCode) {
            error.fieldErrors.code = error.fieldErrors.recoveryCode;
          }
          showErrors(form, error);
        }
      });
      const passkeyButton = dialog.querySelector("#step-up-passkey");
      if (passkeyButton) {
        passkeyButton.addEventListener("click", async () => {
          clearErrors(form);
          if (!form.elements.password.value) {
            showErrors(form, { message: "", fieldErrors: { password: ["Enter your password first."] } });
            return;
          }
          setBusy(passkeyButton, true, "Waiting for the passkey…");
          try {
            const { data: options } = await api("POST", "/api/auth/reauthenticate/passkey-options", {
              stepUp: false,
            });
            const credential = await usePasskey(options.publicKey);
            await confirm(form, {
              password: form.elements.password.value,
              passkey: credential,
              challenge: options.challenge,
            });
            finish(true);
          } catch (error) {
            setBusy(passkeyButton, false);
            if (error.redirecting) return finish(false);
            if (error instanceof Error && error.name !== "ApiError") {
              setText(form.querySelector("[data-form-error]"), passkeyProblem(error));
            } else {
              showErrors(form, error);
            }
          }
        });
      }
      openDialog(dialog);
      form.elements.password.focus();
    });
  })();
  pending.finally(() => {
    pending = null;
  });
  return pending;
}
