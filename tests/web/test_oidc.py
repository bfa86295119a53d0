"""CI without stored keys: trust policies, and OpenID Connect ID tokens traded for
short-lived keys (POST /api/oidc/token), against a local issuer, on both engines."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from paradarum.egress import AddressPolicy, Rules
from paradarum.fetching import FetchFailed
from paradarum.oidc import IssuerKeys
from paradarum_client.models import rfc3339
from tests.oidc import (
    OWNER_ID,
    REPOSITORY,
    REPOSITORY_ID,
    Issuer,
    oidc_issuer,
    unsigned_token,
)
from tests.support import active_zone, bearer, create_key, new_account, peer

AUDIENCE = "https://cdn.example.test"
CONDITIONS = {"repository_id": REPOSITORY_ID, "ref": "refs/heads/main"}


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    with oidc_issuer() as server:
        yield server


@pytest.fixture
def settings_overrides(issuer: Issuer) -> dict[str, object]:
    return {
        "oidc_insecure_issuers": [issuer.url],
        # Generous: a loaded test machine must not turn a good fetch into a refusal.
        "oidc_fetch_timeout_seconds": 15.0,
        "public_url": AUDIENCE,
    }


def add_policy(client: Any, session: str, issuer: Issuer, **fields: Any) -> dict[str, Any]:
    body = {"name": "acme/site deploy", "issuer": issuer.url, "conditions": CONDITIONS, **fields}
    response = client.post("/api/account/trust-policies", json=body, headers=bearer(session))
    assert response.status_code == 201, response.text
    return response.json()["data"]


def exchange(client: Any, token: str, address: str = "192.0.2.10") -> Any:
    return client.post("/api/oidc/token", json={"token": token}, headers=peer(address))


def events(client: Any, session: str, name: str) -> list[dict[str, Any]]:
    log = client.get("/api/account/audit", headers=bearer(session)).json()["data"]
    return [entry for entry in log if entry["event"] == name]


# -- policies ---------------------------------------------------------------------------


def test_a_policy_gets_the_documented_defaults(client, issuer):
    session = new_account(client)
    policy = add_policy(client, session, issuer)
    assert policy["audience"] == AUDIENCE
    assert policy["permissions"] == "purge"
    assert policy["ttlSeconds"] == 900
    assert policy["conditions"] == CONDITIONS
    assert policy["zoneIds"] is None and policy["activeKeys"] == 0
    listed = client.get("/api/account/trust-policies", headers=bearer(session)).json()["data"]
    assert [entry["id"] for entry in listed] == [policy["id"]]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"conditions": {"repository": REPOSITORY, "ref": "refs/heads/main"}}, "conditions"),
        ({"conditions": {}}, "conditions"),
        ({"conditions": {"repository_id": ""}}, "conditions"),
        ({"conditions": {"aud": "x", "sub": "y"}}, "conditions"),
        ({"issuer": "http://issuer.example.com"}, "issuer"),
        ({"issuer": "token.actions.githubusercontent.com"}, "issuer"),
        ({"ttlSeconds": 59}, "ttlSeconds"),
        ({"ttlSeconds": 3601}, "ttlSeconds"),
        ({"permissions": "admin"}, "permissions"),
        ({"name": "  "}, "name"),
        ({"audience": ""}, "audience"),
    ],
)
def test_an_invalid_policy_is_a_400_on_its_field(client, issuer, fields, field):
    """Above all: conditions that pin no immutable identity would let any repository
    on the issuer purge."""
    session = new_account(client)
    body = {"name": "deploy", "issuer": issuer.url, "conditions": CONDITIONS, **fields}
    response = client.post("/api/account/trust-policies", json=body, headers=bearer(session))
    assert response.status_code == 400, response.text
    assert field in response.json()["errors"]


def test_a_policy_may_pin_each_immutable_identity(client, issuer):
    session = new_account(client)
    for claim in ("sub", "repository_id", "repository_owner_id", "project_id"):
        add_policy(client, session, issuer, conditions={claim: "42"})


def test_https_issuers_are_accepted_without_being_listed(client):
    session = new_account(client)
    body = {
        "name": "GitHub",
        "issuer": "https://token.actions.githubusercontent.com",
        "conditions": {"repository_owner_id": OWNER_ID},
    }
    response = client.post("/api/account/trust-policies", json=body, headers=bearer(session))
    assert response.status_code == 201, response.text


def test_trust_policies_are_managed_with_a_session_only(client, issuer):
    session = new_account(client)
    policy = add_policy(client, session, issuer)
    key = create_key(client, session)["key"]
    for method, path in (
        ("GET", "/api/account/trust-policies"),
        ("POST", "/api/account/trust-policies"),
        ("DELETE", f"/api/account/trust-policies/{policy['id']}"),
    ):
        body = {"name": "x", "issuer": issuer.url, "conditions": CONDITIONS}
        response = client.request(method, path, json=body, headers=bearer(key))
        assert response.status_code == 403, (method, response.text)
        assert "session" in response.json()["message"]


def test_another_accounts_policy_is_not_found(client, issuer):
    owner = new_account(client)
    policy = add_policy(client, owner, issuer)
    other = new_account(client)
    response = client.delete(f"/api/account/trust-policies/{policy['id']}", headers=bearer(other))
    assert response.status_code == 404
    assert client.get("/api/account/trust-policies", headers=bearer(other)).json()["data"] == []


def test_zone_ids_of_a_policy_must_be_the_accounts(client, runtime, issuer):
    session = new_account(client)
    zone = active_zone(client, runtime, session, "www.example.com")
    add_policy(client, session, issuer, zoneIds=[zone["id"]])
    body = {"name": "x", "issuer": issuer.url, "conditions": CONDITIONS, "zoneIds": [999999]}
    response = client.post("/api/account/trust-policies", json=body, headers=bearer(session))
    assert response.status_code == 400 and "zoneIds" in response.json()["errors"]


# -- the exchange -----------------------------------------------------------------------


def test_a_github_token_becomes_a_short_lived_key_that_purges_its_zone(client, runtime, issuer):
    session = new_account(client)
    zone = active_zone(client, runtime, session, "www.example.com")
    policy = add_policy(client, session, issuer, zoneIds=[zone["id"]], ttlSeconds=600)
    token = issuer.sign(issuer.github_claims(audience=AUDIENCE))
    response = exchange(client, token)
    assert response.status_code == 201, response.text
    minted = response.json()["data"]
    assert minted["policyId"] == policy["id"]
    assert minted["key"].startswith("pdm_") and minted["keyPrefix"] == minted["key"][:8]
    assert response.headers["cache-control"] == "no-store"
    key = minted["key"]
    purge = client.post(
        "/api/account/purge", json={"urls": ["https://www.example.com/"]}, headers=bearer(key)
    )
    assert purge.status_code == 202, purge.text
    # Purge-only by default: nothing else.
    assert client.get("/api/account/apikeys", headers=bearer(key)).status_code == 403

    listed = client.get("/api/account/apikeys", headers=bearer(session)).json()["data"]
    entry = next(item for item in listed if item["keyPrefix"] == minted["keyPrefix"])
    assert entry["createdBy"] == {
        "kind": "oidc",
        "keyPrefix": None,
        "memberId": None,
        "email": None,
        "policyId": policy["id"],
        "subject": f"repo:{REPOSITORY}:ref:refs/heads/main",
    }
    assert entry["expiresAt"] == minted["expiresAt"]
    assert (entry["permissions"], entry["zoneIds"]) == ("purge", [zone["id"]])
    [logged] = events(client, session, "oidc.key_minted")
    for fact in (REPOSITORY, "workflow Deploy", "ref refs/heads/main", "run 7001"):
        assert fact in logged["detail"]
    assert logged["keyPrefix"] == minted["keyPrefix"]
    policies = client.get("/api/account/trust-policies", headers=bearer(session)).json()["data"]
    assert policies[0]["activeKeys"] == 1


def test_the_key_lives_exactly_the_policys_ttl(frozen_client, clock, issuer):
    session = new_account(frozen_client, "ttl@example.com")
    add_policy(frozen_client, session, issuer, ttlSeconds=120)
    token = issuer.sign(issuer.github_claims(audience=AUDIENCE, now=clock.now.timestamp()))
    minted = exchange(frozen_client, token).json()["data"]
    assert minted["expiresAt"] == rfc3339(clock.now + timedelta(seconds=120))
    key = bearer(minted["key"])
    clock.advance(119)
    assert frozen_client.get("/api/account", headers=key).status_code == 200
    clock.advance(1)
    assert frozen_client.get("/api/account", headers=key).status_code == 401


def test_minted_keys_do_not_count_against_the_key_limit(client, issuer):
    session = new_account(client)
    for index in range(10):
        create_key(client, session, f"key {index}")
    add_policy(client, session, issuer)
    assert exchange(client, issuer.sign(issuer.github_claims(audience=AUDIENCE))).status_code == 201
    account = client.get("/api/account", headers=bearer(session)).json()["data"]
    assert account["activeKeys"] == 10
    eleventh = client.post("/api/account/apikeys", json={"name": "x"}, headers=bearer(session))
    assert eleventh.status_code == 400


def test_deleting_a_policy_revokes_every_key_it_minted(client, issuer):
    session = new_account(client)
    policy = add_policy(client, session, issuer)
    keys = [
        exchange(client, issuer.sign(issuer.github_claims(audience=AUDIENCE))).json()["data"]
        for _ in range(2)
    ]
    own = create_key(client, session)["key"]
    deleted = client.delete(f"/api/account/trust-policies/{policy['id']}", headers=bearer(session))
    assert deleted.status_code == 200, deleted.text
    for minted in keys:
        assert client.get("/api/account", headers=bearer(minted["key"])).status_code == 401
    assert client.get("/api/account", headers=bearer(own)).status_code == 200
    listed = client.get("/api/account/apikeys", headers=bearer(session)).json()["data"]
    reasons = {item["keyPrefix"]: item["revokedReason"] for item in listed}
    assert [reasons[minted["keyPrefix"]] for minted in keys] == ["policy", "policy"]
    # And the policy mints no more.
    token = issuer.sign(issuer.github_claims(audience=AUDIENCE))
    assert exchange(client, token).status_code == 401
    [logged] = events(client, session, "trust_policy.deleted")
    assert "2 key(s)" in logged["detail"]


def test_a_rotated_key_is_fetched_on_an_unknown_kid_once_a_minute_at_most(
    frozen_client, clock, issuer
):
    session = new_account(frozen_client)
    add_policy(frozen_client, session, issuer)

    def token() -> str:
        return issuer.sign(issuer.github_claims(audience=AUDIENCE, now=clock.now.timestamp()))

    assert exchange(frozen_client, token()).status_code == 201
    assert issuer.jwks_fetches == 1
    clock.advance(61)
    issuer.rotate("ES256")
    response = exchange(frozen_client, token())
    assert response.status_code == 201, response.text
    assert issuer.jwks_fetches == 2
    # kid is the sender's choice: unknown ones cannot make us fetch more than once a minute.
    forged = issuer.sign(issuer.github_claims(audience=AUDIENCE), kid="not-a-published-kid")
    for _ in range(5):
        assert exchange(frozen_client, forged).status_code == 401
    assert issuer.jwks_fetches == 2
    clock.advance(61)
    assert exchange(frozen_client, forged).status_code == 401
    assert issuer.jwks_fetches == 3


# -- every bad token: the same 401 -------------------------------------------------------


def _bad_tokens(issuer: Issuer) -> dict[str, tuple[str, str]]:
    """case -> (token, the check the security log names)."""
    good = issuer.github_claims(audience=AUDIENCE)
    key = issuer.current
    return {
        "alg none": (
            unsigned_token({"alg": "none", "typ": "JWT", "kid": key.kid}, good, None),
            "algorithm",
        ),
        "HS256 signed with the public key": (
            unsigned_token({"alg": "HS256", "typ": "JWT", "kid": key.kid}, good, key.public_pem()),
            "algorithm",
        ),
        "another issuer": (
            issuer.sign({**good, "iss": "https://token.actions.githubusercontent.com"}),
            "",
        ),
        "signed by another issuer's key": (issuer.sign(good, key=_foreign_key()), "kid"),
        "another audience": (
            issuer.sign(issuer.github_claims(audience="https://elsewhere.example")),
            "audience",
        ),
        "expired": (
            issuer.sign(issuer.github_claims(audience=AUDIENCE, exp=int(issuer.clock()) - 300)),
            "expired",
        ),
        "not yet valid": (
            issuer.sign(issuer.github_claims(audience=AUDIENCE, nbf=int(issuer.clock()) + 300)),
            "not valid yet",
        ),
        "issued in the future": (
            issuer.sign(issuer.github_claims(audience=AUDIENCE, iat=int(issuer.clock()) + 300)),
            "not valid yet",
        ),
        "unknown kid": (issuer.sign(good, kid="rotated-away"), "kid"),
        "same name, another repository_id": (
            issuer.sign(issuer.github_claims(audience=AUDIENCE, repository_id="999")),
            "",
        ),
        "another branch": (
            issuer.sign(issuer.github_claims(audience=AUDIENCE, ref="refs/heads/evil")),
            "condition",
        ),
        "no jti": (issuer.sign(issuer.github_claims(audience=AUDIENCE, jti=None)), "jti"),
        "tampered claims": (_tampered(issuer.sign(good)), "signature"),
        "oversized": (issuer.sign({**good, "padding": "x" * 9000}), ""),
        "not a JWT": ("not.a.jwt", ""),
    }


def _foreign_key() -> Any:
    from tests.oidc import new_key

    foreign = new_key()
    foreign.kid = "kid-of-another-issuer"
    return foreign


def _tampered(token: str) -> str:
    import base64

    header, claims, signature = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
    data["ref"] = "refs/heads/main"
    data["workflow"] = "Evil"
    encoded = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    return f"{header}.{encoded}.{signature}"


def test_every_forged_or_misused_token_gets_the_same_401(client, issuer):
    session = new_account(client)
    add_policy(client, session, issuer)
    reference = exchange(client, "x")
    assert reference.status_code == 401
    for case, (token, check) in _bad_tokens(issuer).items():
        response = exchange(client, token)
        assert response.status_code == 401, (case, response.text)
        assert response.json() == reference.json(), case
        assert response.headers["www-authenticate"] == reference.headers["www-authenticate"]
        if check:
            logged = events(client, session, "oidc.token_refused")
            assert any(check in entry["detail"] for entry in logged), (case, logged)
    assert len(client.get("/api/account/apikeys", headers=bearer(session)).json()["data"]) == 0


def test_an_issuer_whose_documents_nest_too_deeply_is_refused_like_one_that_is_down(client, issuer):
    session = new_account(client)
    add_policy(client, session, issuer)
    reference = exchange(client, "x")
    issuer.nested = True
    response = exchange(client, issuer.sign(issuer.github_claims(audience=AUDIENCE)))
    assert response.status_code == 401, response.text
    assert response.json() == reference.json()


def test_policies_of_two_accounts_for_one_repository_need_the_request_to_name_one(client, issuer):
    """Else an account that trusted someone's repository first would get their jobs."""
    squatter = new_account(client)
    add_policy(client, squatter, issuer)
    owner = new_account(client)
    policy = add_policy(client, owner, issuer)

    def token() -> str:
        return issuer.sign(issuer.github_claims(audience=AUDIENCE))

    assert exchange(client, token()).status_code == 401
    named = client.post(
        "/api/oidc/token",
        json={"token": token(), "policyId": policy["id"]},
        headers=peer("1.2.3.4"),
    )
    assert named.status_code == 201, named.text
    assert named.json()["data"]["policyId"] == policy["id"]
    assert client.get("/api/account/apikeys", headers=bearer(squatter)).json()["data"] == []


def test_a_replayed_token_is_refused(client, issuer):
    session = new_account(client)
    add_policy(client, session, issuer)
    token = issuer.sign(issuer.github_claims(audience=AUDIENCE))
    assert exchange(client, token).status_code == 201
    again = exchange(client, token, address="198.51.100.7")
    assert again.status_code == 401
    assert any("used before" in e["detail"] for e in events(client, session, "oidc.token_refused"))


class TestTwoIssuers:
    @pytest.fixture
    def other(self) -> Iterator[Issuer]:
        with oidc_issuer("ES256") as server:
            yield server

    @pytest.fixture
    def settings_overrides(self, issuer: Issuer, other: Issuer) -> dict[str, object]:
        return {"oidc_insecure_issuers": [issuer.url, other.url], "public_url": AUDIENCE}

    def test_the_same_jti_of_another_issuer_is_not_a_replay(self, client, issuer, other):
        session = new_account(client)
        add_policy(client, session, issuer)
        add_policy(client, session, other)
        claims = issuer.github_claims(audience=AUDIENCE, jti="shared")
        assert exchange(client, issuer.sign(claims)).status_code == 201
        second = other.sign({**claims, "iss": other.url})
        assert exchange(client, second).status_code == 201

    def test_a_token_signed_by_one_issuer_is_refused_for_another(self, client, issuer, other):
        session = new_account(client)
        add_policy(client, session, other)
        forged = issuer.sign({**issuer.github_claims(audience=AUDIENCE), "iss": other.url})
        assert exchange(client, forged).status_code == 401


class TestIssuerTrouble:
    @pytest.fixture
    def settings_overrides(self, issuer: Issuer) -> dict[str, object]:
        return {
            "oidc_insecure_issuers": [issuer.url],
            "oidc_fetch_timeout_seconds": 1.0,
            "public_url": AUDIENCE,
        }

    @pytest.mark.parametrize("failure", ["down", "slow", "oversized"])
    def test_an_unreachable_slow_or_oversized_jwks_fails_closed(self, client, issuer, failure):
        """Bounded by PARADARUM_OIDC_FETCH_TIMEOUT_SECONDS (1 s here) and the size cap."""
        session = new_account(client)
        add_policy(client, session, issuer)
        if failure == "down":
            issuer.status = 503
        elif failure == "slow":
            issuer.stall = True
        else:
            issuer.padding = 200 * 1024
        response = exchange(client, issuer.sign(issuer.github_claims(audience=AUDIENCE)))
        assert response.status_code == 401, response.text
        logged = events(client, session, "oidc.token_refused")
        assert any("could not be fetched" in entry["detail"] for entry in logged)
        assert client.get("/api/account/apikeys", headers=bearer(session)).json()["data"] == []


def test_a_token_for_no_policy_is_refused_without_fetching_anything(client, issuer):
    token = issuer.sign(issuer.github_claims(audience=AUDIENCE))
    assert exchange(client, token).status_code == 401
    assert issuer.jwks_fetches == 0


class TestRateLimit:
    @pytest.fixture
    def settings_overrides(self, issuer: Issuer) -> dict[str, object]:
        return {
            "oidc_insecure_issuers": [issuer.url],
            "public_url": AUDIENCE,
            "oidc_exchanges_per_address": 3,
        }

    def test_token_exchanges_are_rate_limited_per_client_address(self, client, issuer):
        for _ in range(3):
            assert exchange(client, "x", address="203.0.113.5").status_code == 401
        limited = exchange(client, "x", address="203.0.113.5")
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        assert exchange(client, "x", address="203.0.113.6").status_code == 401


def test_refusals_fill_an_accounts_log_once_a_minute_per_check_at_most(client, issuer):
    session = new_account(client)
    add_policy(client, session, issuer)
    for _ in range(5):
        token = issuer.sign(issuer.github_claims(audience=AUDIENCE, ref="refs/heads/x"))
        assert exchange(client, token).status_code == 401
    assert len(events(client, session, "oidc.token_refused")) == 1


def test_policies_need_a_developer_and_mint_only_what_their_member_still_may(
    client, runtime, issuer
):
    """A key never holds more than a current member vouches for: a policy's keys act for
    the member who made it."""
    from tests.web.test_teams import join

    owner = new_account(client)
    purger = join(client, runtime, owner, "purger")
    body = {"name": "deploy", "issuer": issuer.url, "conditions": CONDITIONS}
    refused = client.post(
        "/api/account/trust-policies", json=body, headers=bearer(purger["session"])
    )
    assert refused.status_code == 403 and "developer" in refused.json()["message"]
    developer = join(client, runtime, owner, "developer")
    add_policy(client, developer["session"], issuer, permissions="full")
    token = issuer.sign(issuer.github_claims(audience=AUDIENCE))
    assert exchange(client, token).status_code == 201
    demoted = client.patch(
        f"/api/account/members/{developer['member_id']}",
        json={"role": "purger"},
        headers=bearer(owner),
    )
    assert demoted.status_code == 200, demoted.text
    again = exchange(client, issuer.sign(issuer.github_claims(audience=AUDIENCE)))
    assert again.status_code == 401
    logged = events(client, owner, "oidc.token_refused")
    assert any("may no longer" in entry["detail"] for entry in logged)


class TestUnverifiedEmail:
    @pytest.fixture
    def settings_overrides(self, issuer: Issuer) -> dict[str, object]:
        return {
            "oidc_insecure_issuers": [issuer.url],
            "public_url": AUDIENCE,
            "email_verification": "on",
            "smtp_url": "smtp://127.0.0.1:9",
            "notifications_enabled": False,
        }

    def test_an_unverified_address_cannot_add_a_policy_as_it_cannot_add_a_key(self, client, issuer):
        session = new_account(client)
        body = {"name": "deploy", "issuer": issuer.url, "conditions": CONDITIONS}
        response = client.post("/api/account/trust-policies", json=body, headers=bearer(session))
        assert response.status_code == 403
        assert "Verify your email address" in response.json()["message"]


# -- where keys are fetched from ----------------------------------------------------------


class Listener:
    """A TCP port that counts the connections made to it (and closes them)."""

    def __init__(self) -> None:
        self.connections = 0

    async def __aenter__(self) -> Listener:
        async def accepted(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            writer.close()

        self.server = await asyncio.start_server(accepted, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        self.server.close()
        await self.server.wait_closed()


def fetch_keys(issuer: str, keys_url: str, allowed: list[str]) -> tuple[str, int]:
    """What fetching ``keys_url`` for ``issuer`` (not listed as insecure) fails with,
    and how many connections reached the listener meanwhile."""

    async def main() -> tuple[str, int]:
        async with Listener() as listener:
            keys = IssuerKeys(
                timeout=5.0, insecure_issuers=frozenset(), rules=Rules(AddressPolicy(allowed))
            )
            url = keys_url.format(port=listener.port)
            with pytest.raises(FetchFailed) as failure:
                await keys._get(url, issuer.format(port=listener.port), max_bytes=1024)
            return str(failure.value), listener.connections

    return asyncio.run(main())


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("https://127.0.0.1:{port}/.well-known/openid-configuration", "a loopback address"),
        ("https://169.254.169.254/latest/meta-data/", "a link-local address"),
        ("https://10.0.0.5/keys", "a private address"),
        ("https://[::ffff:127.0.0.1]:{port}/keys", "a loopback address"),
    ],
)
def test_an_issuers_documents_are_fetched_from_public_addresses_only(url, kind):
    # The issuer's discovery document, or a keys URL that document names: both are
    # chosen outside Paradarum, so neither may reach into its network.
    why, connections = fetch_keys("https://issuer.example", url, allowed=[])
    assert kind in why and "issuers' keys are fetched from public addresses only" in why
    assert connections == 0


def test_networks_the_operator_admits_are_fetched_from():
    why, connections = fetch_keys(
        "https://issuer.example", "https://127.0.0.1:{port}/keys", allowed=["127.0.0.1/32"]
    )
    assert "public addresses" not in why  # it got as far as the connection (not TLS)
    assert connections == 1


def test_an_issuer_the_operator_listed_is_fetched_from_wherever_it_is(issuer):
    async def main() -> int:
        keys = IssuerKeys(timeout=5.0, insecure_issuers=frozenset([issuer.url]))
        return len(await keys._fetch(issuer.url))

    assert asyncio.run(main()) >= 1
