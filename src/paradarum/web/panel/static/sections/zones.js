// Account settings › Zones: the hostnames the account may purge.

import { settingsSection } from "../settings.js";
import { zonesSection } from "../zones.js";

settingsSection(({ state, refreshAccount }) => {
  const zones = zonesSection(state, { refreshAccount });
  return { accountShown: () => zones.renderForm(), load: () => zones.load() };
});
