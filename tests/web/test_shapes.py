"""``web/shapes.py``: from what services return to what the API answers, through the
same encoder as every response (``web/responses.py``): camelCase names, every field
sent (null when empty), timestamps in UTC with milliseconds and a ``Z``, enums as
their names, and the few values a shape computes (a key's status, a zone's record)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from paradarum.services.accounts import Account, AccountSummary, Session
from paradarum.services.apikeys import CreatedKey, CreatorKind, KeyInfo, KeySettings, RevokeReason
from paradarum.services.audit import AuditEvent
from paradarum.services.context import CredentialKind, Permission, Principal
from paradarum.services.jobs import JobState
from paradarum.services.members import Invitation, Member, MemberAccount
from paradarum.services.purges import (
    NodeResult,
    PurgeDetail,
    PurgeInfo,
    PurgeKind,
    PurgeScope,
    PurgeStatus,
)
from paradarum.services.roles import Role
from paradarum.services.trust import MintedKey, TrustPolicy
from paradarum.services.twofactor import (
    Method,
    NewPasskey,
    PasskeyInfo,
    PasskeyOptions,
    SignInChallenge,
    Status,
    TotpEnrolment,
)
from paradarum.services.usage import DayUsage
from paradarum.services.webhooks import Delivery, DeliveryStatus, Endpoint, NewSecret
from paradarum.services.zones import ZoneInfo, ZoneStatus
from paradarum.tokens import SessionClaims
from paradarum.web import shapes
from paradarum.web.responses import envelope
from paradarum_client import models
from tests.web.api import assert_shape

NOW = datetime(2026, 11, 27, 9, 14, 3, 512_345, tzinfo=UTC)
WIRE_NOW = "2026-11-27T09:14:03.512Z"
# The same moment, as a database or a driver may hand it over.
EAST = NOW.astimezone(timezone(timedelta(hours=2)))
NAIVE = NOW.replace(tzinfo=None)


def wire(shape: Any) -> Any:
    """``shape`` as an answer's ``data`` on the wire."""
    return json.loads(envelope(shape, "ok", status=200, headers=None).body)["data"]


def on_the_wire(shape: Any, annotation: Any) -> Any:
    data = wire(shape)
    assert_shape(data, annotation)
    return data


def key_info(**changes: Any) -> KeyInfo:
    values: dict[str, Any] = {
        "id": 7,
        "name": "deploy",
        "key_prefix": "pdm_AbCd",
        "created_at": NOW,
        "last_used_at": None,
        "last_used_address": None,
        "last_used_user_agent": None,
        "revoked_at": None,
        "revoked_reason": None,
        "revoked_detail": None,
        "settings": KeySettings(),
        "created_by_kind": CreatorKind.MEMBER,
        "created_by_key_prefix": None,
        "replaces_id": None,
        "created_by_member_id": 3,
        "created_by_email": "ada@example.com",
    }
    values.update(changes)
    return KeyInfo(**values)


def endpoint(**changes: Any) -> Endpoint:
    values: dict[str, Any] = {
        "id": 4,
        "account_id": 1,
        "url": "https://hooks.example.com/in",
        "events": ("api_key.revoked", "zone.verified"),
        "enabled": True,
        "created_at": NOW,
        "updated_at": EAST,
        "disabled_at": None,
        "disabled_reason": None,
        "failing_since": None,
        "previous_secret_until": None,
    }
    values.update(changes)
    return Endpoint(**values)


@pytest.mark.parametrize("moment", [NOW, EAST, NAIVE], ids=["utc", "offset", "naive"])
def test_every_timestamp_is_utc_with_milliseconds_and_a_z(moment):
    account = Account(id=1, email="ada@example.com", created_at=moment)
    assert on_the_wire(shapes.new_account(account), models.NewAccount) == {
        "id": 1,
        "email": "ada@example.com",
        "createdAt": WIRE_NOW,
    }


def test_a_whole_second_still_has_its_milliseconds():
    account = Account(id=1, email="a@example.com", created_at=NOW.replace(microsecond=0))
    assert wire(shapes.new_account(account))["createdAt"] == "2026-11-27T09:14:03.000Z"


def test_readiness_names_job_states_and_is_null_when_the_counts_are_unknown():
    assert on_the_wire(shapes.readiness(None), models.Readiness) == {"status": "ok", "jobs": None}
    counts = {"purge": {JobState.QUEUED: 2, JobState.FAILED: 0}, "email": {}}
    assert on_the_wire(shapes.readiness(counts), models.Readiness)["jobs"] == {
        "purge": {"queued": 2, "failed": 0},
        "email": {},
    }


@pytest.mark.parametrize("role", [Role.OWNER, None])
def test_the_account_sends_every_field_camel_cased_and_a_missing_role_as_null(role):
    summary = AccountSummary(
        account=Account(id=5, email="ada@example.com", created_at=EAST),
        active_keys=2,
        key_limit=10,
        email_verified=False,
        name="Acme",
        role=role,
    )
    assert on_the_wire(shapes.account(summary), models.Account) == {
        "id": 5,
        "email": "ada@example.com",
        "createdAt": WIRE_NOW,
        "activeKeys": 2,
        "keyLimit": 10,
        "emailVerified": False,
        "name": "Acme",
        "role": None if role is None else "owner",
        "requireTwoFactor": False,
    }


def test_a_sign_in_is_a_bearer_session_or_a_challenge_naming_its_methods():
    claims = SessionClaims(
        account_id=1,
        token_id="t",
        issued_at=NOW,
        expires_at=EAST + timedelta(hours=12),
        session_key="k",
        person_id=2,
    )
    session = on_the_wire(shapes.sign_in(Session(token="jwt", claims=claims)), models.Session)
    assert session == {
        "token": "jwt",
        "tokenType": "Bearer",
        "expiresAt": "2026-11-27T21:14:03.512Z",
    }
    assert wire(shapes.session(Session(token="jwt", claims=claims))) == session
    challenge = SignInChallenge(
        challenge="c", methods=[Method.TOTP, Method.RECOVERY_CODE], expires_at=NAIVE
    )
    assert on_the_wire(shapes.sign_in(challenge), models.SignInChallenge) == {
        "twoFactorRequired": True,
        "challenge": "c",
        "methods": ["totp", "recoveryCode"],
        "expiresAt": WIRE_NOW,
    }


def test_second_factors_passkeys_and_their_options():
    passkey = PasskeyInfo(id=1, name="Laptop", created_at=NOW, last_used_at=None)
    assert on_the_wire(shapes.passkey(passkey), models.Passkey) == {
        "id": 1,
        "name": "Laptop",
        "createdAt": WIRE_NOW,
        "lastUsedAt": None,
    }
    first = on_the_wire(
        shapes.new_passkey(NewPasskey(passkey=passkey, recovery_codes=["a", "b"])),
        models.NewPasskey,
    )
    assert first["recoveryCodes"] == ["a", "b"]
    later = wire(shapes.new_passkey(NewPasskey(passkey=passkey, recovery_codes=None)))
    assert later["recoveryCodes"] is None
    status = Status(totp=True, passkeys=[passkey], recovery_codes_left=9)
    assert on_the_wire(shapes.two_factor_status(status, required=True), models.TwoFactorStatus) == {
        "totp": True,
        "passkeys": [wire(shapes.passkey(passkey))],
        "recoveryCodesLeft": 9,
        "required": True,
    }
    enrolment = TotpEnrolment(secret="S", otpauth_uri="otpauth://totp/x", qr_code="data:x")
    assert on_the_wire(shapes.totp_enrolment(enrolment), models.TotpEnrolment) == {
        "secret": "S",
        "otpauthUri": "otpauth://totp/x",
        "qrCode": "data:x",
    }
    # WebAuthn's own options go to the browser exactly as built: names are not recased.
    public_key = {"rpId": "example.com", "allowCredentials": [], "user_verification": "x"}
    options = wire(shapes.passkey_options(PasskeyOptions(challenge="c", public_key=public_key)))
    assert options == {"challenge": "c", "publicKey": public_key}


def test_a_key_s_status_is_worked_out_at_the_moment_given():
    expires = NOW + timedelta(days=1)
    info = key_info(settings=KeySettings(expires_at=expires))
    before = on_the_wire(shapes.api_key(info, expires - timedelta(microseconds=1)), models.ApiKey)
    assert (before["status"], before["isRevoked"]) == ("active", False)
    assert before["expiresAt"] == "2026-11-28T09:14:03.512Z"
    at = wire(shapes.api_key(info, expires))
    assert (at["status"], at["isRevoked"]) == ("expired", False)
    revoked = key_info(
        settings=KeySettings(expires_at=expires),
        revoked_at=NOW,
        revoked_reason=RevokeReason.LEAKED,
        revoked_detail="https://github.com/x",
    )
    after = wire(shapes.api_key(revoked, expires + timedelta(days=1)))
    assert (after["status"], after["isRevoked"]) == ("revoked", True)
    assert (after["revokedReason"], after["revokedDetail"]) == ("leaked", "https://github.com/x")


def test_a_key_sends_every_field_and_empty_restrictions_as_null():
    data = on_the_wire(shapes.api_key(key_info(), NOW), models.ApiKey)
    assert data == {
        "id": 7,
        "name": "deploy",
        "keyPrefix": "pdm_AbCd",
        "createdAt": WIRE_NOW,
        "lastUsedAt": None,
        "lastUsedFrom": None,
        "lastUsedUserAgent": None,
        "isRevoked": False,
        "revokedAt": None,
        "status": "active",
        "expiresAt": None,
        "revokedReason": None,
        "revokedDetail": None,
        "permissions": "full",
        "allowedCidrs": None,
        "zoneIds": None,
        "createdBy": {
            "kind": "member",
            "keyPrefix": None,
            "memberId": 3,
            "email": "ada@example.com",
            "policyId": None,
            "subject": None,
        },
        "replaces": None,
    }
    empty = key_info(settings=KeySettings(allowed_cidrs=(), zone_ids=()))
    assert wire(shapes.api_key(empty, NOW))["allowedCidrs"] is None
    assert wire(shapes.api_key(empty, NOW))["zoneIds"] is None
    limited = key_info(
        settings=KeySettings(
            permission=Permission.PURGE, allowed_cidrs=("10.0.0.0/8",), zone_ids=(2, 3)
        ),
        created_by_kind=CreatorKind.OIDC,
        trust_policy_id=9,
        created_by_subject="repo:acme/site",
        created_by_member_id=None,
        created_by_email=None,
        replaces_id=6,
    )
    data = wire(shapes.api_key(limited, NOW))
    assert (data["permissions"], data["allowedCidrs"], data["zoneIds"]) == (
        "purge",
        ["10.0.0.0/8"],
        [2, 3],
    )
    assert data["createdBy"]["kind"] == "oidc" and data["createdBy"]["policyId"] == 9
    assert data["replaces"] == 6


def test_only_a_new_key_carries_the_raw_key():
    created = CreatedKey(info=key_info(), raw_key="pdm_" + "x" * 28)
    new = on_the_wire(shapes.new_key(created, NOW), models.NewKey)
    assert new["key"] == created.raw_key
    assert {k: v for k, v in new.items() if k != "key"} == wire(shapes.api_key(key_info(), NOW))


def test_usage_days_are_plain_dates():
    days = [DayUsage(day=date(2026, 11, 26), successes=3, refusals=1)]
    assert on_the_wire(shapes.usage(7, days), models.KeyUsage) == {
        "keyId": 7,
        "days": [{"day": "2026-11-26", "successes": 3, "refusals": 1}],
    }


def test_a_security_log_entry_names_its_actor():
    event = AuditEvent(
        id=1,
        event="key.created",
        occurred_at=EAST,
        actor_type="session",
        actor_id="tok",
        actor_name="ada@example.com",
        key_id=None,
        key_prefix=None,
        client_address="192.0.2.1",
        user_agent=None,
        detail=None,
    )
    data = on_the_wire(shapes.audit_event(event), models.AuditEvent)
    assert data["actor"] == "ada@example.com" and data["actorId"] == "tok"
    assert data["occurredAt"] == WIRE_NOW and data["clientAddress"] == "192.0.2.1"


def test_members_memberships_and_invitations_name_their_roles():
    assert on_the_wire(
        shapes.membership(MemberAccount(id=1, name="Acme", role=Role.ADMIN)),
        models.AccountMembership,
    ) == {"id": 1, "name": "Acme", "role": "admin"}
    member = Member(id=2, email="b@example.com", role=Role.VIEWER, joined_at=NAIVE)
    assert on_the_wire(shapes.member(member), models.Member) == {
        "id": 2,
        "email": "b@example.com",
        "role": "viewer",
        "joinedAt": WIRE_NOW,
        "twoFactor": False,
    }
    invitation = Invitation(
        id=3,
        email="c@example.com",
        role=Role.DEVELOPER,
        created_at=NOW,
        expires_at=NOW + timedelta(days=7),
        invited_by=None,
    )
    data = on_the_wire(shapes.invitation(invitation), models.Invitation)
    assert data["role"] == "developer" and data["invitedBy"] is None
    assert data["expiresAt"] == "2026-12-04T09:14:03.512Z"


def test_a_purge_shows_each_node_by_its_label_and_reason():
    detail = PurgeDetail(
        purge=PurgeInfo(
            id=1,
            kind=PurgeKind.URLS,
            targets=["https://www.example.com/"],
            status=PurgeStatus.QUEUED,
            created_at=NOW,
            completed_at=None,
        ),
        nodes=[
            NodeResult(
                label="node-1",
                status=DeliveryStatus.QUEUED,
                attempts=2,
                reason="connection refused",
                updated_at=EAST,
                next_attempt_at=NOW + timedelta(seconds=30),
            )
        ],
    )
    data = on_the_wire(shapes.purge_detail(detail), models.Purge)
    assert data["kind"] == "urls" and data["completedAt"] is None
    assert data["nodes"] == [
        {
            "node": "node-1",
            "status": "queued",
            "attempts": 2,
            "lastError": "connection refused",
            "updatedAt": WIRE_NOW,
            "nextAttemptAt": "2026-11-27T09:14:33.512Z",
        }
    ]


@pytest.mark.parametrize(
    ("principal", "expected"),
    [
        (
            Principal(account_id=1, kind=CredentialKind.SESSION),
            {"credential": "session", "keyPrefix": None, "permissions": "full"},
        ),
        (
            Principal(
                account_id=1,
                kind=CredentialKind.KEY,
                key_prefix="pdm_AbCd",
                permission=Permission.PURGE,
                zone_ids=(4,),
                address_restricted=True,
            ),
            {"credential": "key", "keyPrefix": "pdm_AbCd", "permissions": "purge"},
        ),
    ],
)
def test_a_purge_scope_says_what_the_credential_is_and_how_it_is_limited(principal, expected):
    scope = PurgeScope(principal=principal, zones=["www.example.com"], hostname=None, covered=None)
    data = on_the_wire(shapes.purge_scope(scope), models.PurgeScope)
    restricted = principal.zone_ids is not None
    assert data == {
        **expected,
        "zoneRestricted": restricted,
        "addressRestricted": restricted,
        "zones": ["www.example.com"],
        "hostname": None,
        "covered": None,
    }


@pytest.mark.parametrize(
    ("hostname", "record"),
    [
        ("www.example.com", "_paradarum-challenge.www.example.com"),
        ("*.shop.example", "_paradarum-challenge.shop.example"),
    ],
)
def test_a_zone_says_which_txt_record_proves_it(hostname, record):
    info = ZoneInfo(
        id=1,
        hostname=hostname,
        status=ZoneStatus.PENDING,
        token="tok",
        created_at=NOW,
        verified_at=None,
    )
    assert on_the_wire(shapes.zone(info), models.Zone) == {
        "id": 1,
        "hostname": hostname,
        "status": "pending",
        "verification": {"type": "dns-txt", "name": record, "value": "tok"},
        "createdAt": WIRE_NOW,
        "verifiedAt": None,
    }


def test_a_trust_policy_and_the_key_it_mints():
    policy = TrustPolicy(
        id=1,
        account_id=2,
        name="deploy",
        issuer="https://token.actions.githubusercontent.com",
        audience="https://cdn.example.test",
        conditions={"repository_id": "42"},
        permission=Permission.PURGE,
        zone_ids=(),
        ttl_seconds=900,
        created_at=NOW,
        active_keys=3,
    )
    data = on_the_wire(shapes.trust_policy(policy), models.TrustPolicy)
    assert data["permissions"] == "purge" and data["zoneIds"] is None
    assert data["conditions"] == {"repository_id": "42"}  # claim names are not recased
    assert data["ttlSeconds"] == 900 and data["activeKeys"] == 3
    minted = MintedKey(raw_key="pdm_x", key_prefix="pdm_x", expires_at=EAST, policy_id=1)
    assert on_the_wire(shapes.oidc_key(minted), models.OidcKey) == {
        "key": "pdm_x",
        "keyPrefix": "pdm_x",
        "expiresAt": WIRE_NOW,
        "policyId": 1,
    }


def test_a_webhook_never_carries_its_secret_except_when_it_is_made_or_rolled():
    data = on_the_wire(shapes.webhook(endpoint()), models.Webhook)
    assert "secret" not in data
    assert data["events"] == ["api_key.revoked", "zone.verified"]
    assert data["updatedAt"] == WIRE_NOW and data["previousSecretExpiresAt"] is None
    rolled = endpoint(previous_secret_until=NOW + timedelta(hours=1))
    new = on_the_wire(
        shapes.new_webhook(NewSecret(endpoint=rolled, secret="whsec_x")), models.NewWebhook
    )
    assert new["secret"] == "whsec_x"
    assert new["previousSecretExpiresAt"] == "2026-11-27T10:14:03.512Z"


def test_a_delivery_keeps_its_payload_as_sent():
    payload = {"type": "api_key.revoked", "data": {"key_prefix": "pdm_AbCd"}}
    delivery = Delivery(
        id=1,
        endpoint_id=4,
        message_id="msg_1",
        event="api_key.revoked",
        payload=payload,
        status=DeliveryStatus.DELIVERED,
        attempts=1,
        next_attempt_at=None,
        last_error=None,
        response_status=204,
        created_at=NOW,
        delivered_at=EAST,
    )
    data = on_the_wire(shapes.webhook_delivery(delivery), models.WebhookDelivery)
    assert data["payload"] == payload
    assert (data["status"], data["responseStatus"], data["deliveredAt"]) == (
        "delivered",
        204,
        WIRE_NOW,
    )
