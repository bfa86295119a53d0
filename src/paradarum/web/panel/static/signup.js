import { api, enterAuthPage, saveSession, signInUrl } from "./api.js";
import { clearErrors, setBusy, showErrors } from "./ui.js";

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
    try {
      await api("POST", "/api/auth/signup", { auth: false, body: credentials });
    } catch (error) {
      setBusy(button, false);
      showErrors(form, error);
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
