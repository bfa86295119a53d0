"""Two-factor sign-in from the command line and the client, against a real server:
``paradarum two-factor enable`` turns TOTP on, ``paradarum login`` then asks for the
code (or a recovery code); the clients answer a second step, and a refusal that needs
a recent sign-in is its own exception."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime

import httpx
import pytest

from paradarum.services.twofactor import totp_code, totp_step
from paradarum_client import (
    AsyncClient,
    Client,
    StepUpRequiredError,
    TwoFactorEnrolmentRequiredError,
    TwoFactorRequired,
)
from tests.client.harness import Cli, signed_in
from tests.support import PASSWORD

pytestmark = pytest.mark.slow


def _step(offset: int = 0) -> int:
    return totp_step(datetime.now(UTC)) + offset


def test_enable_totp_then_login_asks_for_the_code_or_a_recovery_code(api_server, tmp_path):
    url = api_server.url
    cli = Cli(url, tmp_path / "me")
    email = signed_in(cli, url)

    # The key is printed; the code is typed at the prompt.
    started = cli("two-factor", "enable", input="000000\n")
    assert started.exit_code == 1, started.output  # a wrong first code leaves TOTP off
    assert "paradarum two-factor confirm" in started.output
    assert "Authenticator app: off" in cli("two-factor", "status").output
    secret = re.search(r"Key:\s+([A-Z2-7]+)", started.output).group(1)
    enabled = cli("two-factor", "confirm", "--code", totp_code(secret, _step()))
    assert enabled.exit_code == 0, enabled.output
    codes = re.findall(r"^\s+([a-z2-9]{5}-[a-z2-9]{5})$", enabled.output, re.M)
    assert len(codes) == 10, enabled.output
    status = cli("two-factor", "status")
    assert "Authenticator app: on" in status.output
    assert "Recovery codes left: 10" in status.output

    # The confirming code's step is spent: the next step's code (the phone a step ahead).
    again = cli("login", input=f"{email}\n{PASSWORD}\n{totp_code(secret, _step() + 1)}\n")
    assert again.exit_code == 0, again.output
    assert "Code from your authenticator app" in again.output
    assert "Signed in" in again.output

    wrong = cli("login", input=f"{email}\n{PASSWORD}\n111111\n")
    assert wrong.exit_code == 1
    assert "Wrong code" in wrong.output

    recovered = cli("login", "--code", codes[0], input=f"{email}\n{PASSWORD}\n")
    assert recovered.exit_code == 0, recovered.output
    assert "Recovery codes left: 9" in cli("two-factor", "status").output
    # A recovery code works once.
    reused = cli("login", "--code", codes[0], input=f"{email}\n{PASSWORD}\n")
    assert reused.exit_code == 1


def test_the_clients_answer_the_second_step(api_server, tmp_path):
    url = api_server.url
    cli = Cli(url, tmp_path / "client")
    email = signed_in(cli, url)
    with Client(token=_kept_token(cli, tmp_path / "client"), base_url=url) as client:
        enrolment = client.two_factor.start_totp()
        assert enrolment.otpauth_uri.startswith("otpauth://totp/")
        assert enrolment.secret not in repr(enrolment)
        codes = client.two_factor.confirm_totp(totp_code(enrolment.secret, _step()))
        assert len(codes) == 10
    with Client(token="", base_url=url) as anonymous:
        with pytest.raises(TwoFactorRequired) as needed:
            anonymous.login(email, PASSWORD)
        assert set(needed.value.challenge.methods) == {"totp", "recoveryCode"}
        session = anonymous.login_two_factor(
            needed.value.challenge.challenge, recovery_code=codes[0]
        )
        assert session.token

    async def async_sign_in() -> str:
        async with AsyncClient(token="", base_url=url) as anonymous:
            signed = await anonymous.login(email, PASSWORD, recovery_code=codes[1])
        async with AsyncClient(token=signed.token, base_url=url) as client:
            status = await client.two_factor.status()
            assert status.totp and status.recovery_codes_left == 8
            fresh = await client.reauthenticate(PASSWORD, recovery_code=codes[2])
            return fresh.token

    assert asyncio.run(async_sign_in())


def _kept_token(cli: Cli, home) -> str:
    import json

    return json.loads((home / "paradarum" / "session.json").read_text())["token"]


def test_a_refusal_for_an_old_sign_in_is_step_up_required():
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/account/apikeys":
            return httpx.Response(
                403,
                json={
                    "succeeded": False,
                    "message": "Confirm it is you.",
                    "data": {"stepUpRequired": True},
                },
            )
        return httpx.Response(
            403,
            json={
                "succeeded": False,
                "message": "Enrol first.",
                "data": {"twoFactorEnrolmentRequired": True},
            },
        )

    with Client(
        token="t", base_url="http://paradarum.test", transport=httpx.MockTransport(answer)
    ) as client:
        with pytest.raises(StepUpRequiredError):
            client.keys.create("deploy")
        with pytest.raises(TwoFactorEnrolmentRequiredError):
            client.zones.list()
