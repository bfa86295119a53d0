// Account settings › Security log: what happened on the account, newest first.

import { KEYS_URL } from "../keys.js";
import { logSection } from "../log.js";
import { firstPage, settingsSection } from "../settings.js";

settingsSection(({ state }) => {
  const log = logSection(state);
  return {
    async load() {
      // The log names the keys it mentions; it shows prefixes until they are known.
      const entries = log.load();
      state.keys = await firstPage(KEYS_URL);
      await entries;
      log.render();
    },
  };
});
