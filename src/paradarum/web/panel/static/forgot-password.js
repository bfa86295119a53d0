// /forgot-password: ask for a reset link. The answer is the same whether or not the
// email has an account (the server says nothing else), and the page shows it as is.

import { api } from "./api.js";
import { byId, clearErrors, setBusy, setText, show, showErrors } from "./ui.js";

const form = byId("forgot-form");
form.elements.email.focus();

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const button = form.querySelector("button[type=submit]");
  clearErrors(form);
  setBusy(button, true, "Sending…");
  let answer;
  try {
    answer = await api("POST", "/api/auth/password/forgot", {
      auth: false,
      body: { email: form.elements.email.value },
    });
  } catch (error) {
    setBusy(button, false);
    showErrors(form, error);
    return;
  }
  show(form, false);
  setText(byId("forgot-sent-message"), answer.message);
  show(byId("forgot-sent"));
  const title = byId("forgot-title");
  title.textContent = "Check your inbox";
  document.title = "Check your inbox · Paradarum";
  title.focus();
});
