// Account settings › Members: who works on this account and as what, inviting people,
// changing roles, removing members (and what happens to their keys), leaving.
// Every rule is the API's: this page shows what the signed-in member may do, and the
// API refuses anything else with a sentence shown here.

import { api, clearSession, signInUrl } from "../api.js";
import { settingsSection } from "../settings.js";
import {
  byId,
  clearErrors,
  dateElement,
  h,
  openDialog,
  setBusy,
  setText,
  show,
  showErrors,
  untilTimeElement,
} from "../ui.js";

const ROLES = ["owner", "admin", "developer", "purger", "viewer"];
const MANAGERS = new Set(["owner", "admin"]);

settingsSection(({ state: page }) => {
  const state = { me: null, members: [], invitations: [] };
  const manages = () => state.me && MANAGERS.has(state.me.role);
  const isOwner = () => state.me && state.me.role === "owner";
  // The roles the signed-in member may give: admins cannot make owners.
  const grantable = () => ROLES.filter((role) => isOwner() || role !== "owner");

  function accountShown() {
    const data = page.account;
    state.me = data;
    setText(byId("account-name"), data.name);
    const role = byId("my-role");
    setText(role, `You are ${data.role}`);
    show(role, true);
    show(byId("invite-form"), manages());
    show(byId("invitations"), manages());
    const select = byId("invite-role");
    select.replaceChildren(
      ...grantable().map((r) => h("option", { value: r, selected: r === "developer" }, r)),
    );
    if (state.members.length) renderMembers();
    loadInvitations();
  }

  async function loadMembers() {
    try {
      const { data } = await api("GET", "/api/account/members");
      state.members = data;
      if (state.me) renderMembers(); // else once the account is known
      setText(byId("members-error"), "");
    } catch (error) {
      if (!error.redirecting) setText(byId("members-error"), error.message);
    } finally {
      show(byId("members-loading"), false);
    }
  }

  async function loadInvitations() {
    if (!manages()) return;
    try {
      const { data } = await api("GET", "/api/account/invitations");
      state.invitations = data;
      renderInvitations();
    } catch (error) {
      if (!error.redirecting) setText(byId("members-error"), error.message);
    }
  }

  function roleCell(member, self) {
    const canChange =
      manages() && !self && (isOwner() || member.role !== "owner");
    if (!canChange) return h("td", { "data-label": "Role" }, member.role);
    const select = h(
      "select",
      { "aria-label": `Role of ${member.email}` },
      ...grantable().map((r) => h("option", { value: r, selected: r === member.role }, r)),
    );
    select.addEventListener("change", async () => {
      select.disabled = true;
      try {
        const { message } = await api("PATCH", `/api/account/members/${member.id}`, {
          body: { role: select.value },
        });
        setText(byId("members-status"), `${message}: ${member.email} is now ${select.value}.`);
        await loadMembers();
      } catch (error) {
        if (!error.redirecting) setText(byId("members-error"), error.message);
        select.value = member.role;
        select.disabled = false;
      }
    });
    return h("td", { "data-label": "Role" }, select);
  }

  function renderMembers() {
    const body = byId("members-body");
    body.replaceChildren(
      ...state.members.map((member) => {
        const self = member.email === state.me.email;
        const canRemove = self || (manages() && (isOwner() || member.role !== "owner"));
        let action = "";
        if (canRemove) {
          action = h(
            "button",
            {
              type: "button",
              class: self ? "button button-small" : "button button-small button-danger",
            },
            self ? "Leave" : "Remove",
          );
          action.addEventListener("click", (event) => askRemove(member, self, event.currentTarget));
        }
        return h(
          "tr",
          {},
          h(
            "td",
            { "data-label": "Email" },
            member.email,
            self ? h("span", { class: "muted" }, " (you)") : "",
          ),
          roleCell(member, self),
          h("td", { "data-label": "Joined" }, dateElement(member.joinedAt)),
          h("td", { "data-label": "" }, action),
        );
      }),
    );
    show(byId("members-table"), true);
  }

  function renderInvitations() {
    const rows = state.invitations.map((invitation) => {
      const withdraw = h(
        "button",
        { type: "button", class: "button button-small" },
        "Withdraw",
      );
      withdraw.addEventListener("click", async () => {
        setBusy(withdraw, true, "Withdrawing…");
        try {
          await api("DELETE", `/api/account/invitations/${invitation.id}`);
          setText(byId("members-status"), `The invitation of ${invitation.email} was withdrawn.`);
        } catch (error) {
          if (!error.redirecting) setText(byId("members-error"), error.message);
        }
        await loadInvitations();
      });
      return h(
        "tr",
        {},
        h("td", { "data-label": "Email" }, invitation.email),
        h("td", { "data-label": "Role" }, invitation.role),
        h("td", { "data-label": "Until" }, untilTimeElement(invitation.expiresAt)),
        h("td", { "data-label": "" }, withdraw),
      );
    });
    byId("invitations-body").replaceChildren(...rows);
    show(byId("invitations-table"), rows.length > 0);
    show(byId("invitations-empty"), rows.length === 0);
  }

  // --- Removing a member, or leaving --------------------------------------------------

  const dialog = byId("remove-dialog");
  const removeForm = byId("remove-form");
  let removing = null;

  function askRemove(member, self, opener) {
    removing = { member, self };
    clearErrors(removeForm);
    setText(
      byId("remove-title"),
      self ? "Leave this account?" : `Remove ${member.email}?`,
    );
    setText(
      byId("remove-description"),
      self
        ? "You will no longer see or change anything in this account. An owner or admin can invite you again."
        : `${member.email} will no longer be able to act on this account; their sessions end at once.`,
    );
    setText(byId("remove-confirm"), self ? "Leave" : "Remove");
    openDialog(dialog, { opener, fallback: byId("members-title") });
  }

  byId("remove-cancel").addEventListener("click", () => dialog.close());
  removeForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = byId("remove-confirm");
    clearErrors(removeForm);
    setBusy(button, true, "Removing…");
    try {
      await api("DELETE", `/api/account/members/${removing.member.id}`, {
        body: { keys: removeForm.elements.keys.value },
      });
    } catch (error) {
      setBusy(button, false);
      if (!error.redirecting) showErrors(removeForm, error);
      return;
    }
    setBusy(button, false);
    dialog.close();
    if (removing.self) {
      // This session no longer reaches the account: sign in again to another one.
      clearSession();
      location.replace(signInUrl({ reason: "signed-out" }));
      return;
    }
    setText(byId("members-status"), `${removing.member.email} was removed.`);
    await loadMembers();
  });

  // --- Inviting ------------------------------------------------------------------------

  const inviteForm = byId("invite-form");
  inviteForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = byId("invite");
    clearErrors(inviteForm);
    setBusy(button, true, "Sending…");
    try {
      const { data } = await api("POST", "/api/account/invitations", {
        body: { email: inviteForm.elements.email.value, role: inviteForm.elements.role.value },
      });
      inviteForm.elements.email.value = "";
      setText(byId("members-status"), `Invitation sent to ${data.email}.`);
      await loadInvitations();
    } catch (error) {
      if (!error.redirecting) showErrors(inviteForm, error);
    } finally {
      setBusy(button, false);
    }
  });

  return { accountShown, load: loadMembers };
});
