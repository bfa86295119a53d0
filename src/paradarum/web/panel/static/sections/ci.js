// Account settings › CI access: trust policies, and the keys they issued to CI jobs.

import { settingsSection } from "../settings.js";
import { trustSection } from "../trust.js";

settingsSection(({ state }) => trustSection(state));
