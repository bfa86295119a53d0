import { api, enterAuthPage, saveSession, signInUrl } from "./api.js";
import { byId, clearErrors, setBusy, setText, show, showErrors } from "./ui.js";

const page = enterAuthPage(document.getElementById("signin-link"));
// The server says in the page whether it takes sign-ups; when it does not, the page
// says so instead of offering a form that can only be refused.
const signupOn = document.body.dataset.signup !== "off";
for (const element of document.querySelectorAll(".signup-on")) element.hidden = !signupOn;
for (const element of document.querySelectorAll(".signup-off")) element.hidden = signupOn;

if (page && signupOn) {
  const form = document.getElementById("signup-form");
  form.elements.email.focus();

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
    const credentials = {
      email: form.elements.email.value,
      password: form.elements.password.value,
    };
    clearErrors(form);
    setBusy(button, true, "Creating your account…");
    let created;
    try {
      created = await api("POST", "/api/auth/signup", { auth: false, body: credentials });
    } catch (error) {
      setBusy(button, false);
      showErrors(form, error);
      return;
    }
    // A server that verifies addresses answers without the account (data is null):
    // the link goes by email, and the page says so rather than signing in.
    if (created.data === null) {
      showLinkSent(created.message, credentials.email);
      return;
    }
    // A new account goes straight in, through the same sign-in as the sign-in page.
    try {
      const { data } = await api("POST", "/api/auth/login", { auth: false, body: credentials });
      saveSession(data);
      location.replace(page.next);
    } catch {
      location.replace(signInUrl({ reason: "created", next: page.next }));
    }
  });
}

function showLinkSent(message, email) {
  const form = byId("signup-form");
  form.reset();
  show(form, false);
  for (const element of document.querySelectorAll(".signup-on")) show(element, false);
  setText(byId("signup-sent-message"), message);
  byId("signup-sent-address").textContent = email.trim();
  byId("signup-sent-signin").search = byId("signin-link").search;
  show(byId("signup-sent"));
  show(byId("signin-offer"), false); // the button above says it
  const title = byId("signup-title");
  title.textContent = "Check your inbox";
  document.title = "Check your inbox · Paradarum";
  title.focus();
}
