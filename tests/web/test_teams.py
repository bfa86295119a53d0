"""Teams: people and accounts many-to-many, roles enforced from one table, invitations,
changing roles and removing members, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any
from urllib.parse import unquote

from sqlalchemy import select

from paradarum.db.tables import notifications
from paradarum.errors import DomainError
from paradarum.services.context import ClientInfo
from paradarum.services.emails import EmailJob, Kind
from paradarum.web.errors import status_of
from tests.mail import queued, text_of
from tests.support import active_zone, bearer, create_key, login, new_account, run, signup

CLIENT = ClientInfo(address="192.0.2.1")


def invitation_token(runtime: Any, email: str) -> str:
    """The token of the newest invitation mailed to ``email``, from the message the
    outbox would send (the browser test reads it from a real SMTP server)."""
    with runtime.db.reading() as conn:
        row = conn.execute(
            select(notifications)
            .where(notifications.c.recipient == email, notifications.c.kind == "invitation")
            .order_by(notifications.c.id.desc())
        ).first()
    assert row is not None, f"no invitation queued for {email}"
    job = EmailJob(
        account_id=row.account_id,
        email=email,
        kind=Kind.INVITATION,
        payload=json.loads(row.payload),
    )
    message = runtime.emails.build(job, runtime.clock())
    text = message.get_body(("plain",)).get_content()
    found = re.search(r"/invitations#token=(\S+)", text)
    assert found, text
    return unquote(found.group(1))


def invite(client: Any, token: str, email: str, role: str) -> Any:
    return client.post(
        "/api/account/invitations", json={"email": email, "role": role}, headers=bearer(token)
    )


def join(client: Any, runtime: Any, owner: str, role: str, email: str | None = None) -> dict:
    """A new person who accepted an invitation as ``role``: their session for the
    owner's account, and their member id there."""
    email = email or f"m-{role}-{uuid.uuid4().hex[:8]}@example.com"
    assert invite(client, owner, email, role).status_code == 201
    own = new_account(client, email)
    accepted = client.post(
        "/api/invitations/accept",
        json={"token": invitation_token(runtime, email)},
        headers=bearer(own),
    )
    assert accepted.status_code == 200, accepted.text
    account_id = accepted.json()["data"]["id"]
    switched = client.post("/api/auth/switch", json={"accountId": account_id}, headers=bearer(own))
    assert switched.status_code == 200, switched.text
    session = switched.json()["data"]["token"]
    members = client.get("/api/account/members", headers=bearer(session)).json()["data"]
    member_id = next(m["id"] for m in members if m["email"] == email)
    return {"session": session, "own": own, "member_id": member_id, "email": email}


def me(client: Any, token: str) -> Any:
    return client.get("/api/account", headers=bearer(token))


# -- accounts, sessions, switching --------------------------------------------------


def test_signing_up_makes_a_person_the_owner_of_their_own_account(client):
    token = new_account(client, "ada@example.com")
    account = me(client, token).json()["data"]
    assert account["role"] == "owner"
    assert account["name"] == "ada@example.com"
    assert account["email"] == "ada@example.com"
    listed = client.get("/api/accounts", headers=bearer(token)).json()["data"]
    assert listed == [{"id": account["id"], "name": "ada@example.com", "role": "owner"}]
    members = client.get("/api/account/members", headers=bearer(token)).json()["data"]
    assert [(m["email"], m["role"], m["twoFactor"]) for m in members] == [
        ("ada@example.com", "owner", False)
    ]


def test_a_person_switches_between_the_accounts_they_belong_to(client, runtime):
    owner = new_account(client, "owner@example.com")
    grace = join(client, runtime, owner, "developer", "grace@example.com")
    own_id = me(client, grace["own"]).json()["data"]["id"]
    team_id = me(client, owner).json()["data"]["id"]
    listed = client.get("/api/accounts", headers=bearer(grace["own"])).json()["data"]
    assert [(a["id"], a["role"]) for a in listed] == [(own_id, "owner"), (team_id, "developer")]
    team = me(client, grace["session"]).json()["data"]
    assert (team["id"], team["role"], team["email"]) == (team_id, "developer", grace["email"])
    # Signing in gives the person's own account.
    fresh = login(client, "grace@example.com")
    assert me(client, fresh).json()["data"]["id"] == own_id


def test_switching_to_an_account_one_does_not_belong_to_is_404(client):
    ada = new_account(client)
    other = new_account(client)
    other_id = me(client, other).json()["data"]["id"]
    response = client.post("/api/auth/switch", json={"accountId": other_id}, headers=bearer(ada))
    assert response.status_code == 404
    assert (
        client.post("/api/auth/switch", json={"accountId": "x"}, headers=bearer(ada)).status_code
        == 400
    )


def test_members_invitations_and_switching_need_a_session_not_a_key(client):
    owner = new_account(client)
    key = create_key(client, owner)["key"]
    for method, path, body in (
        ("GET", "/api/accounts", None),
        ("POST", "/api/auth/switch", {"accountId": 1}),
        ("POST", "/api/account/invitations", {"email": "x@example.com", "role": "viewer"}),
        ("GET", "/api/account/invitations", None),
        ("DELETE", "/api/account/members/1", {"keys": "keep"}),
        ("PATCH", "/api/account/members/1", {"role": "viewer"}),
        ("POST", "/api/invitations/accept", {"token": "x" * 40}),
    ):
        response = client.request(method, path, json=body, headers=bearer(key))
        assert response.status_code == 403, (method, path, response.text)
        assert "session" in response.json()["message"]


# -- roles -------------------------------------------------------------------------


def test_a_purger_purges_and_makes_purge_only_keys_and_nothing_more(client, runtime):
    owner = new_account(client)
    active_zone(client, runtime, owner, "www.example.com")
    purger = join(client, runtime, owner, "purger")["session"]
    purged = client.post(
        "/api/account/purge",
        json={"urls": ["https://www.example.com/a"]},
        headers=bearer(purger),
    )
    assert purged.status_code in (200, 201, 202), purged.text
    made = client.post(
        "/api/account/apikeys",
        json={"name": "ci", "permissions": "purge"},
        headers=bearer(purger),
    )
    assert made.status_code == 201
    assert made.json()["data"]["createdBy"]["kind"] == "member"
    full = client.post("/api/account/apikeys", json={"name": "all"}, headers=bearer(purger))
    assert full.status_code == 403
    assert "developer role or above" in full.json()["message"]
    for method, path, body in (
        ("POST", "/api/account/zones", {"hostname": "shop.example.com"}),
        ("DELETE", f"/api/account/apikeys/{made.json()['data']['id']}", None),
        ("POST", "/api/account/invitations", {"email": "z@example.com", "role": "viewer"}),
    ):
        response = client.request(method, path, json=body, headers=bearer(purger))
        assert response.status_code == 403, (path, response.text)
    # Reading is fine.
    for path in ("/api/account/apikeys", "/api/account/zones", "/api/account/members"):
        assert client.get(path, headers=bearer(purger)).status_code == 200


def test_a_viewer_reads_and_changes_nothing(client, runtime):
    owner = new_account(client)
    viewer = join(client, runtime, owner, "viewer")["session"]
    for path in ("/api/account/apikeys", "/api/account/zones", "/api/account/audit"):
        assert client.get(path, headers=bearer(viewer)).status_code == 200, path
    refused = client.post(
        "/api/account/apikeys",
        json={"name": "ci", "permissions": "purge"},
        headers=bearer(viewer),
    )
    assert refused.status_code == 403
    assert "purger role or above" in refused.json()["message"]
    purge = client.post("/api/account/purge", json={"everything": True}, headers=bearer(viewer))
    assert purge.status_code == 403


def test_a_purge_key_of_a_purger_purges_and_cannot_read_keys(client, runtime):
    owner = new_account(client)
    active_zone(client, runtime, owner, "www.example.com")
    purger = join(client, runtime, owner, "purger")["session"]
    key = client.post(
        "/api/account/apikeys",
        json={"name": "ci", "permissions": "purge"},
        headers=bearer(purger),
    ).json()["data"]["key"]
    ok = client.post(
        "/api/account/purge", json={"urls": ["https://www.example.com/"]}, headers=bearer(key)
    )
    assert ok.status_code in (200, 201, 202)
    assert client.get("/api/account/apikeys", headers=bearer(key)).status_code == 403


def test_an_admin_cannot_invite_or_make_owners_and_an_owner_can(client, runtime):
    owner = new_account(client)
    admin = join(client, runtime, owner, "admin")
    refused = invite(client, admin["session"], "boss@example.com", "owner")
    assert refused.status_code == 403
    assert "owner role" in refused.json()["message"]
    dev = join(client, runtime, owner, "developer")
    promote = client.patch(
        f"/api/account/members/{dev['member_id']}",
        json={"role": "owner"},
        headers=bearer(admin["session"]),
    )
    assert promote.status_code == 403
    assert invite(client, owner, "boss@example.com", "owner").status_code == 201


def test_an_unknown_role_is_a_400_naming_the_roles(client):
    owner = new_account(client)
    response = invite(client, owner, "x@example.com", "superuser")
    assert response.status_code == 400
    assert "owner, admin, developer, purger, viewer" in response.json()["errors"]["role"][0]


# -- invitations ---------------------------------------------------------------------


def test_inviting_an_existing_member_or_a_pending_address_is_409(client, runtime):
    owner = new_account(client, "boss@example.com")
    assert invite(client, owner, "boss@example.com", "admin").status_code == 409
    assert invite(client, owner, "new@example.com", "viewer").status_code == 201
    again = invite(client, owner, "New@Example.com ", "viewer")
    assert again.status_code == 409
    pending = client.get("/api/account/invitations", headers=bearer(owner)).json()["data"]
    assert [(i["email"], i["role"]) for i in pending] == [("new@example.com", "viewer")]


def test_inviting_answers_the_same_whether_or_not_the_address_has_a_sign_in(client, runtime):
    """An invitation must not tell a member which emails have Paradarum accounts."""
    owner = new_account(client, "boss@example.com")
    new_account(client, "known@example.com")

    def answer(email: str) -> tuple[int, dict, dict]:
        response = invite(client, owner, email, "viewer")
        data = response.json()["data"]
        shape = {name: type(value).__name__ for name, value in data.items()}
        return response.status_code, {**response.json(), "data": None}, shape

    known, unknown = answer("known@example.com"), answer("nobody@example.com")
    assert known == unknown and known[0] == 201
    pending = client.get("/api/account/invitations", headers=bearer(owner)).json()["data"]
    assert {i["email"] for i in pending} == {"known@example.com", "nobody@example.com"}
    # Both get the same mail, a link to accept (signing up first where new).
    assert invitation_token(runtime, "known@example.com")
    assert invitation_token(runtime, "nobody@example.com")


def test_an_invitation_is_single_use_and_bound_to_the_invited_address(client, runtime):
    owner = new_account(client)
    assert invite(client, owner, "grace@example.com", "developer").status_code == 201
    token = invitation_token(runtime, "grace@example.com")
    intruder = new_account(client, "mallory@example.com")
    taken = client.post("/api/invitations/accept", json={"token": token}, headers=bearer(intruder))
    assert taken.status_code == 403
    assert "grace" not in taken.text  # the message does not name the address
    grace = new_account(client, "grace@example.com")
    first = client.post("/api/invitations/accept", json={"token": token}, headers=bearer(grace))
    assert first.status_code == 200
    # Used: the person is now a member, and the invitation is no longer pending.
    second = client.post("/api/invitations/accept", json={"token": token}, headers=bearer(grace))
    assert second.status_code in (400, 409)
    assert client.get("/api/account/invitations", headers=bearer(owner)).json()["data"] == []
    members = client.get("/api/account/members", headers=bearer(owner)).json()["data"]
    assert sorted(m["role"] for m in members) == ["developer", "owner"]


def test_a_withdrawn_or_expired_or_forged_invitation_is_400(frozen_client, frozen_runtime, clock):
    client, runtime = frozen_client, frozen_runtime
    owner = new_account(client, "owner@example.com")
    made = invite(client, owner, "late@example.com", "viewer").json()["data"]
    token = invitation_token(runtime, "late@example.com")
    withdrawn = client.delete(f"/api/account/invitations/{made['id']}", headers=bearer(owner))
    assert withdrawn.status_code == 200
    late = new_account(client, "late@example.com")
    refused = client.post("/api/invitations/accept", json={"token": token}, headers=bearer(late))
    assert refused.status_code == 400
    assert (
        client.delete(f"/api/account/invitations/{made['id']}", headers=bearer(owner)).status_code
        == 400
    )
    invite(client, owner, "late@example.com", "viewer")
    token = invitation_token(runtime, "late@example.com")
    clock.advance(timedelta(days=7, seconds=1).total_seconds())
    late = login(client, "late@example.com")
    expired = client.post("/api/invitations/accept", json={"token": token}, headers=bearer(late))
    assert expired.status_code == 400
    forged = client.post(
        "/api/invitations/accept", json={"token": token[:-3] + "abc"}, headers=bearer(late)
    )
    assert forged.status_code == 400
    owner = login(client, "owner@example.com")
    assert len(client.get("/api/account/members", headers=bearer(owner)).json()["data"]) == 1


def test_another_account_s_invitation_cannot_be_withdrawn(client):
    owner = new_account(client)
    made = invite(client, owner, "x@example.com", "viewer").json()["data"]
    other = new_account(client)
    response = client.delete(f"/api/account/invitations/{made['id']}", headers=bearer(other))
    assert response.status_code == 404


def test_of_simultaneous_acceptances_of_one_invitation_exactly_one_wins(client, runtime):
    owner = new_account(client)
    assert invite(client, owner, "grace@example.com", "purger").status_code == 201
    token = invitation_token(runtime, "grace@example.com")
    sessions = [new_account(client, "grace@example.com")] + [
        login(client, "grace@example.com") for _ in range(7)
    ]
    principals = [run(runtime.authenticator.authenticate(s, CLIENT)) for s in sessions]

    async def together() -> list[Any]:
        return await asyncio.gather(
            *(runtime.members.accept(principal=p, token=token, client=CLIENT) for p in principals),
            return_exceptions=True,
        )

    results = run(together())
    wins = [r for r in results if not isinstance(r, BaseException)]
    refusals = [status_of(r) for r in results if isinstance(r, DomainError)]
    assert len(wins) == 1 and len(refusals) == 7, results
    assert set(refusals) <= {400, 409}
    members = client.get("/api/account/members", headers=bearer(owner)).json()["data"]
    assert len(members) == 2


# -- changing roles, removing members ----------------------------------------------------


def test_demoting_a_member_revokes_the_keys_the_new_role_could_not_create(client, runtime):
    owner = new_account(client)
    dev = join(client, runtime, owner, "developer")
    full = create_key(client, dev["session"], "deploy")
    purge = client.post(
        "/api/account/apikeys",
        json={"name": "ci", "permissions": "purge"},
        headers=bearer(dev["session"]),
    ).json()["data"]
    mine = create_key(client, owner, "owner's")
    changed = client.patch(
        f"/api/account/members/{dev['member_id']}",
        json={"role": "purger"},
        headers=bearer(owner),
    )
    assert changed.status_code == 200 and changed.json()["data"]["role"] == "purger"
    keys = {
        k["id"]: k for k in client.get("/api/account/apikeys", headers=bearer(owner)).json()["data"]
    }
    assert keys[full["id"]]["status"] == "revoked"
    assert keys[full["id"]]["revokedReason"] == "member"
    assert keys[purge["id"]]["status"] == "active"
    assert keys[mine["id"]]["status"] == "active"
    assert me(client, full["key"]).status_code == 401
    # The member's session acts with the new role at once.
    assert me(client, dev["session"]).json()["data"]["role"] == "purger"
    refused = client.post(
        "/api/account/apikeys", json={"name": "x"}, headers=bearer(dev["session"])
    )
    assert refused.status_code == 403
    # To viewer: the purge key goes too.
    client.patch(
        f"/api/account/members/{dev['member_id']}", json={"role": "viewer"}, headers=bearer(owner)
    )
    assert me(client, purge["key"]).status_code == 401


def test_removing_a_member_ends_their_session_at_once_and_revokes_or_keeps_keys(client, runtime):
    owner = new_account(client)
    gone = join(client, runtime, owner, "developer")
    kept = join(client, runtime, owner, "developer")
    gone_key = create_key(client, gone["session"], "gone's")
    kept_key = create_key(client, kept["session"], "kept's")
    removed = client.request(
        "DELETE",
        f"/api/account/members/{gone['member_id']}",
        json={"keys": "revoke"},
        headers=bearer(owner),
    )
    assert removed.status_code == 200
    assert me(client, gone["session"]).status_code == 401
    assert me(client, gone_key["key"]).status_code == 401
    # Their own account still works for them.
    assert me(client, gone["own"]).status_code == 200
    assert (
        client.request(
            "DELETE",
            f"/api/account/members/{kept['member_id']}",
            json={"keys": "keep"},
            headers=bearer(owner),
        ).status_code
        == 200
    )
    assert me(client, kept["session"]).status_code == 401
    assert me(client, kept_key["key"]).status_code == 200
    listed = {
        k["id"]: k for k in client.get("/api/account/apikeys", headers=bearer(owner)).json()["data"]
    }
    assert listed[kept_key["id"]]["createdBy"] == {
        "kind": "member",
        "keyPrefix": None,
        "memberId": kept["member_id"],
        "email": kept["email"],
        "policyId": None,
        "subject": None,
    }
    assert listed[gone_key["id"]]["revokedReason"] == "member"


def test_removing_a_member_requires_a_keys_choice(client, runtime):
    owner = new_account(client)
    dev = join(client, runtime, owner, "developer")
    path = f"/api/account/members/{dev['member_id']}"
    assert client.request("DELETE", path, headers=bearer(owner)).status_code == 400
    assert (
        client.request("DELETE", path, json={"keys": "maybe"}, headers=bearer(owner)).status_code
        == 400
    )
    assert me(client, dev["session"]).status_code == 200


def test_the_last_owner_cannot_be_demoted_removed_or_leave(client, runtime):
    owner = new_account(client)
    owner_id = client.get("/api/account/members", headers=bearer(owner)).json()["data"][0]["id"]
    path = f"/api/account/members/{owner_id}"
    demoted = client.patch(path, json={"role": "admin"}, headers=bearer(owner))
    assert demoted.status_code == 400
    assert "last owner" in demoted.json()["message"]
    left = client.request("DELETE", path, json={"keys": "keep"}, headers=bearer(owner))
    assert left.status_code == 400
    # With a second owner, the first may leave; their keys stay, vouched for by the other.
    second = join(client, runtime, owner, "owner")
    key = create_key(client, owner)
    assert (
        client.request("DELETE", path, json={"keys": "keep"}, headers=bearer(owner)).status_code
        == 200
    )
    assert me(client, owner).status_code == 401
    assert me(client, key["key"]).json()["data"]["email"] == second["email"]


def test_a_member_may_leave_and_an_admin_cannot_remove_an_owner(client, runtime):
    owner = new_account(client)
    owner_id = client.get("/api/account/members", headers=bearer(owner)).json()["data"][0]["id"]
    admin = join(client, runtime, owner, "admin")
    refused = client.request(
        "DELETE",
        f"/api/account/members/{owner_id}",
        json={"keys": "keep"},
        headers=bearer(admin["session"]),
    )
    assert refused.status_code == 403
    viewer = join(client, runtime, owner, "viewer")
    left = client.request(
        "DELETE",
        f"/api/account/members/{viewer['member_id']}",
        json={"keys": "revoke"},
        headers=bearer(viewer["session"]),
    )
    assert left.status_code == 200
    assert me(client, viewer["session"]).status_code == 401


def owner_email(client: Any, owner: str) -> str:
    return str(me(client, owner).json()["data"]["email"])


def test_owners_are_emailed_when_a_member_joins_leaves_or_is_removed(client, runtime):
    owner = new_account(client)
    boss = owner_email(client, owner)
    admin = join(client, runtime, owner, "admin")
    (joined,) = queued(runtime, kind="membership", to=boss)
    assert admin["email"] in str(joined["Subject"])
    assert "joined" in text_of(joined) and "admin" in text_of(joined)
    # The member who joined is not told of their own joining.
    assert not queued(runtime, kind="membership", to=admin["email"])

    # Removed by an admin: the owner hears who was removed, and by whom.
    dev = join(client, runtime, owner, "developer")
    removed = client.request(
        "DELETE",
        f"/api/account/members/{dev['member_id']}",
        json={"keys": "revoke"},
        headers=bearer(admin["session"]),
    )
    assert removed.status_code == 200
    mails = queued(runtime, kind="membership", to=boss)
    assert len(mails) == 3  # two joined, one removed
    text = text_of(mails[-1])
    assert f"{dev['email']} was removed from" in text and admin["email"] in text

    # Leaving: the owner is told too.
    viewer = join(client, runtime, owner, "viewer")
    left = client.request(
        "DELETE",
        f"/api/account/members/{viewer['member_id']}",
        json={"keys": "revoke"},
        headers=bearer(viewer["session"]),
    )
    assert left.status_code == 200
    mails = queued(runtime, kind="membership", to=boss)
    assert len(mails) == 5
    assert f"{viewer['email']} left" in text_of(mails[-1])


def test_an_owner_is_not_emailed_about_a_removal_they_made_but_other_owners_are(client, runtime):
    owner = new_account(client)
    boss = owner_email(client, owner)
    other = join(client, runtime, owner, "owner")
    dev = join(client, runtime, owner, "developer")
    before = len(queued(runtime, kind="membership", to=boss))
    removed = client.request(
        "DELETE",
        f"/api/account/members/{dev['member_id']}",
        json={"keys": "revoke"},
        headers=bearer(owner),
    )
    assert removed.status_code == 200
    assert len(queued(runtime, kind="membership", to=boss)) == before
    mails = queued(runtime, kind="membership", to=other["email"])
    assert f"{dev['email']} was removed from" in text_of(mails[-1])


def test_an_unknown_member_or_another_account_s_member_is_404(client, runtime):
    owner = new_account(client)
    other = new_account(client)
    other_id = client.get("/api/account/members", headers=bearer(other)).json()["data"][0]["id"]
    for method, body in (("PATCH", {"role": "viewer"}), ("DELETE", {"keys": "keep"})):
        response = client.request(
            method, f"/api/account/members/{other_id}", json=body, headers=bearer(owner)
        )
        assert response.status_code == 404
    assert me(client, other).json()["data"]["role"] == "owner"


def test_two_admins_removing_each_other_at_once_one_wins(client, runtime):
    owner = new_account(client)
    first = join(client, runtime, owner, "admin")
    second = join(client, runtime, owner, "admin")
    a = run(runtime.authenticator.authenticate(first["session"], CLIENT))
    b = run(runtime.authenticator.authenticate(second["session"], CLIENT))

    async def together() -> list[Any]:
        return await asyncio.gather(
            runtime.members.remove(
                principal=a, member_id=second["member_id"], keys="revoke", client=CLIENT
            ),
            runtime.members.remove(
                principal=b, member_id=first["member_id"], keys="revoke", client=CLIENT
            ),
            return_exceptions=True,
        )

    results = run(together())
    outcomes = sorted(200 if not isinstance(r, BaseException) else status_of(r) for r in results)
    assert outcomes == [200, 401], results
    members = client.get("/api/account/members", headers=bearer(owner)).json()["data"]
    assert len(members) == 2


def test_thirty_creates_by_three_members_give_exactly_ten_keys(client, runtime):
    owner = new_account(client)
    devs = [join(client, runtime, owner, "developer") for _ in range(2)]
    principals = [
        run(runtime.authenticator.authenticate(token, CLIENT))
        for token in [owner, devs[0]["session"], devs[1]["session"]]
    ]

    async def together() -> list[Any]:
        return await asyncio.gather(
            *(
                runtime.apikeys.create(principal=principals[i % 3], name=f"k{i}", client=CLIENT)
                for i in range(30)
            ),
            return_exceptions=True,
        )

    results = run(together())
    outcomes = Counter(201 if not isinstance(r, BaseException) else status_of(r) for r in results)
    assert outcomes == {201: 10, 400: 20}, results
    assert me(client, owner).json()["data"]["activeKeys"] == 10


# -- the record --------------------------------------------------------------------


def test_every_security_log_entry_names_its_actor(client, runtime):
    owner = new_account(client, "boss@example.com")
    key = create_key(client, owner)
    create_key(client, key["key"], "made by a key")
    invite(client, owner, "x@example.com", "viewer")
    events = client.get("/api/account/audit", headers=bearer(owner)).json()["data"]
    by_event = {}
    for entry in events:
        by_event.setdefault(entry["event"], []).append(entry["actor"])
    assert "boss@example.com" in by_event["key.created"]
    assert key["keyPrefix"] in by_event["key.created"]
    assert by_event["member.invited"] == ["boss@example.com"]
    assert by_event["session.login_succeeded"] == ["boss@example.com"]


def test_who_am_i_with_a_key_names_the_member_who_vouches_for_it(client, runtime):
    owner = new_account(client, "boss@example.com")
    dev = join(client, runtime, owner, "developer")
    key = create_key(client, dev["session"])
    account = me(client, key["key"]).json()["data"]
    assert (account["email"], account["role"]) == (dev["email"], "developer")
    assert account["id"] == me(client, owner).json()["data"]["id"]
    signup(client, "someone@example.com")  # unrelated sign-ups change nothing
    assert me(client, key["key"]).status_code == 200
