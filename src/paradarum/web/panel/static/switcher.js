// The account switcher in the top bar: the accounts the signed-in person belongs to.
// Choosing one asks the API for a session of that account (POST /api/auth/switch),
// which replaces this tab's session; the page then loads again for that account.

import { api, saveSession } from "./api.js";
import { byId, h, show } from "./ui.js";

export async function accountSwitcher(currentId) {
  const box = byId("switcher");
  const select = byId("account-switch");
  let accounts;
  try {
    ({ data: accounts } = await api("GET", "/api/accounts"));
  } catch {
    return; // the page works without it
  }
  select.replaceChildren(
    ...accounts.map((account) =>
      h(
        "option",
        { value: String(account.id), selected: account.id === currentId },
        `${account.name} (${account.role})`,
      ),
    ),
  );
  show(box, accounts.length > 1);
  select.onchange = async () => {
    select.disabled = true;
    try {
      const { data } = await api("POST", "/api/auth/switch", {
        body: { accountId: Number(select.value) },
      });
      saveSession(data);
      location.reload();
    } catch {
      select.disabled = false;
      select.value = String(currentId);
    }
  };
}
