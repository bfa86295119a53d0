// Account settings › Security: the password.

import { passwordSection } from "../password.js";
import { settingsSection } from "../settings.js";
import { byId } from "../ui.js";

settingsSection(({ state }) => {
  passwordSection();
  return {
    accountShown() {
      // For the browser's password manager: whose password this is.
      byId("password-username").value = state.account.email;
    },
  };
});
