// Account settings › Purge: URLs, tags or everything, and the history of purges.

import { purgeSection } from "../purge.js";
import { firstPage, settingsSection } from "../settings.js";
import { ZONES_URL } from "../zones.js";

settingsSection(({ state }) => {
  async function refreshZones() {
    state.zones = await firstPage(ZONES_URL);
  }
  const purge = purgeSection(state, { refreshZones });
  return {
    load() {
      refreshZones().then(purge.renderZones);
      purge.load();
    },
  };
});
