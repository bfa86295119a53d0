"""A distributed wrong-password flood on one email, with mail configured: the owner
still gets in from an address never seen before (through a one-time link mailed to the
account), strangers are slowed, and the flood learns nothing, even when a guess is
right. Each address is one of many, as a botnet's would be (``PeerFromHeader``).
On SQLite and PostgreSQL; the clock is frozen so that no window ends mid-test."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest

from paradarum.services.twofactor import totp_code, totp_step
from tests.mail import SmtpServer, smtp_server
from tests.support import PASSWORD, bearer, peer, signup, wait_until

pytestmark = pytest.mark.filterwarnings("ignore:Session.login_data is deprecated")

PANEL = "https://panel.paradarum.test"
EMAIL = "owner@example.com"
GUARD = 10  # failures per email per window before the account counts as under attack
FLOOD = 300


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpServer]:
    with smtp_server(directory=tmp_path / "smtp") as server:
        yield server


@pytest.fixture
def settings_overrides(smtp: SmtpServer) -> dict[str, object]:
    return {
        "smtp_url": smtp.url(),
        "public_url": PANEL,
        "email_verification": "off",
        "login_failures_per_email": GUARD,
    }


def bot(n: int) -> dict[str, str]:
    """The n-th address of the flood: every one different, each under its own limits."""
    return peer(f"10.{n // 65536}.{n // 256 % 256}.{n % 256}")


def sign_in(client, password: str, headers: dict[str, str]):
    return client.post(
        "/api/auth/login", json={"email": EMAIL, "password": password}, headers=headers
    )


def links(smtp: SmtpServer) -> list[str]:
    found = []
    for received in smtp.messages():
        if EMAIL in received.rcpt_tos and "Finish signing in" in received.message["Subject"]:
            text = received.message.get_body(("plain",)).get_content()
            match = re.search(re.escape(PANEL) + r"/confirm-sign-in#token=(\S+)", text)
            assert match, text
            found.append(unquote(match.group(1)))
    return found


def test_a_flood_from_many_addresses_neither_locks_out_the_owner_nor_lets_a_guess_in(
    frozen_client, smtp
):
    signup(frozen_client, EMAIL)
    home = peer("192.0.2.10")  # where the owner signed in before
    assert sign_in(frozen_client, PASSWORD, home).status_code == 200

    flood = [sign_in(frozen_client, f"guess number {n}", bot(n)) for n in range(FLOOD)]
    answers = Counter(response.status_code for response in flood)
    # Until the guard, a wrong password is a wrong password; from then on every stranger
    # gets one answer, slowed, whatever it sent.
    assert answers == {401: GUARD, 429: FLOOD - GUARD}
    under_attack = flood[-1]
    assert int(under_attack.headers["Retry-After"]) > 0
    assert "a link to finish signing in" in under_attack.json()["message"]

    # A guess that is right, from one more new address: the very same answer, no session.
    lucky = sign_in(frozen_client, PASSWORD, bot(FLOOD))
    assert lucky.status_code == 429
    assert lucky.json() == under_attack.json() and lucky.json()["data"] is None

    # The owner, travelling: an address never seen, the right password. The same answer
    # (the flood cannot tell it apart), and the account's mailbox gets a link.
    traveller = peer("198.51.100.77")
    assert sign_in(frozen_client, PASSWORD, traveller).json() == under_attack.json()
    wait_until(lambda: len(links(smtp)) == 2)  # the lucky guess's, and the owner's
    token = links(smtp)[-1]
    finished = frozen_client.post("/api/auth/login/link", json={"token": token}, headers=traveller)
    assert finished.status_code == 200, finished.text
    session = finished.json()["data"]["token"]
    assert frozen_client.get("/api/account", headers=bearer(session)).status_code == 200
    # Once only; and the owner's new address now signs in with the password alone,
    # while the flood goes on.
    again = frozen_client.post("/api/auth/login/link", json={"token": token}, headers=traveller)
    assert again.status_code == 400
    for n in range(FLOOD + 1, FLOOD + 21):
        assert sign_in(frozen_client, "still guessing", bot(n)).status_code == 429
    assert sign_in(frozen_client, PASSWORD, traveller).status_code == 200
    assert sign_in(frozen_client, PASSWORD, home).status_code == 200
    # Of everything the flood sent, nothing signed in.
    assert not any(r.status_code == 200 for r in flood)


def test_a_sign_in_link_dies_with_a_password_change(frozen_client, smtp):
    """Whoever sent the right password may not be the owner: the owner, seeing the mail,
    changes the password (from a known address), and the link no longer works."""
    signup(frozen_client, EMAIL)
    home = peer("192.0.2.10")
    token = sign_in(frozen_client, PASSWORD, home).json()["data"]["token"]
    for n in range(GUARD):
        sign_in(frozen_client, "wrong", bot(n))
    assert sign_in(frozen_client, PASSWORD, peer("198.51.100.8")).status_code == 429
    wait_until(lambda: len(links(smtp)) == 1)
    changed = frozen_client.post(
        "/api/account/password",
        json={"currentPassword": PASSWORD, "newPassword": "a fresh passphrase"},
        headers={**bearer(token), **home},
    )
    assert changed.status_code == 200, changed.text
    refused = frozen_client.post("/api/auth/login/link", json={"token": links(smtp)[0]})
    assert refused.status_code == 400 and "token" in refused.json()["errors"]


def test_an_owner_with_a_second_factor_gets_in_from_a_new_address_during_a_flood(
    frozen_client, clock, smtp
):
    """The link finishes the password step only: the second factor is still asked
    for, from the new address, and answering it signs the owner in while the flood
    goes on; from then on that address is a known one."""
    signup(frozen_client, EMAIL)
    home = peer("192.0.2.10")
    session = sign_in(frozen_client, PASSWORD, home).json()["data"]["token"]
    started = frozen_client.post("/api/account/two-factor/totp", headers=bearer(session))
    assert started.status_code == 201, started.text
    secret = started.json()["data"]["secret"]
    confirmed = frozen_client.post(
        "/api/account/two-factor/totp/confirm",
        json={"code": totp_code(secret, totp_step(clock.now))},
        headers=bearer(session),
    )
    assert confirmed.status_code == 200, confirmed.text
    clock.advance(30)  # the confirming code's step is spent

    for n in range(GUARD + 20):
        sign_in(frozen_client, f"guess number {n}", bot(n))
    traveller = peer("198.51.100.77")
    held = sign_in(frozen_client, PASSWORD, traveller)
    assert held.status_code == 429 and "a link to finish signing in" in held.json()["message"]
    wait_until(lambda: len(links(smtp)) == 1)

    linked = frozen_client.post(
        "/api/auth/login/link", json={"token": links(smtp)[0]}, headers=traveller
    )
    assert linked.status_code == 200, linked.text
    step = linked.json()["data"]
    assert step["twoFactorRequired"] is True and "token" not in step
    wrong = frozen_client.post(
        "/api/auth/login/two-factor",
        json={"challenge": step["challenge"], "code": "000000"},
        headers=traveller,
    )
    assert wrong.status_code == 401
    done = frozen_client.post(
        "/api/auth/login/two-factor",
        json={"challenge": step["challenge"], "code": totp_code(secret, totp_step(clock.now))},
        headers=traveller,
    )
    assert done.status_code == 200, done.text
    mine = done.json()["data"]["token"]
    assert frozen_client.get("/api/account", headers=bearer(mine)).status_code == 200

    # The flood goes on; the traveller's address now gets the second step at once.
    for n in range(GUARD + 20, GUARD + 40):
        assert sign_in(frozen_client, "still guessing", bot(n)).status_code == 429
    again = sign_in(frozen_client, PASSWORD, traveller)
    assert again.status_code == 200 and again.json()["data"]["twoFactorRequired"] is True
