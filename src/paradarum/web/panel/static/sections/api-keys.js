// Account settings › API keys: the list, the new-key form, revoke and roll.

import { keysSection } from "../keys.js";
import { firstPage, settingsSection } from "../settings.js";
import { ZONES_URL } from "../zones.js";

settingsSection(({ state, refreshAccount }) => {
  const keys = keysSection(state, { refreshAccount });
  return {
    accountShown() {
      keys.renderCounter();
      keys.render(); // rows made by other members name them
    },
    async load() {
      // The zones first: key rows and the new-key form name them.
      state.zones = await firstPage(ZONES_URL);
      keys.renderZoneChoices();
      await keys.load();
    },
  };
});
