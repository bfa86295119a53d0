// Account settings › Security: two-factor sign-in and the password.

import { passwordSection } from "../password.js";
import { settingsSection } from "../settings.js";
import { twoFactorSection } from "../twofactor.js";
import { byId } from "../ui.js";

settingsSection(({ state }) => {
  passwordSection();
  const twoFactor = twoFactorSection(state);
  return {
    accountShown() {
      // For the browser's password manager: whose password this is.
      byId("password-username").value = state.account.email;
      twoFactor.render();
    },
    load: twoFactor.load,
  };
});
