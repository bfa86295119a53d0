"""From what services return to the API's shapes (``paradarum_client.models``): the
one place where a service's result becomes what the API answers, one function per
shape. Routes call these; nothing else builds a shape from a service's result."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any

from paradarum.services.accounts import Account, AccountSummary, Session
from paradarum.services.apikeys import CreatedKey, KeyInfo, KeyStatus
from paradarum.services.audit import AuditEvent
from paradarum.services.jobs import JobState
from paradarum.services.members import Invitation, Member, MemberAccount
from paradarum.services.purges import PurgeDetail, PurgeScope
from paradarum.services.trust import MintedKey, TrustPolicy
from paradarum.services.twofactor import (
    NewPasskey,
    PasskeyInfo,
    PasskeyOptions,
    SignInChallenge,
    Status,
    TotpEnrolment,
)
from paradarum.services.usage import DayUsage
from paradarum.services.webhooks import Delivery, Endpoint, NewSecret
from paradarum.services.zones import ZoneInfo
from paradarum_client import models


def _name(value: StrEnum | None) -> Any:
    """A state's name as the shapes spell it (``Literal["active", ...]``)."""
    return None if value is None else str(value)


def readiness(jobs: Mapping[str, Mapping[JobState, int]] | None) -> models.Readiness:
    counts = (
        None
        if jobs is None
        else {kind: {str(state): n for state, n in states.items()} for kind, states in jobs.items()}
    )
    return models.Readiness(status="ok", jobs=counts)


def new_account(account: Account) -> models.NewAccount:
    return models.NewAccount(id=account.id, email=account.email, created_at=account.created_at)


def account(summary: AccountSummary) -> models.Account:
    return models.Account(
        id=summary.account.id,
        email=summary.account.email,
        created_at=summary.account.created_at,
        active_keys=summary.active_keys,
        key_limit=summary.key_limit,
        email_verified=summary.email_verified,
        name=summary.name,
        role=_name(summary.role),
        require_two_factor=summary.require_two_factor,
    )


def session(signed_in: Session) -> models.Session:
    return models.Session(
        token=signed_in.token,
        token_type="Bearer",  # noqa: S106 - the scheme's name, not a secret
        expires_at=signed_in.claims.expires_at,
    )


def sign_in(signed_in: Session | SignInChallenge) -> models.Session | models.SignInChallenge:
    """What a right password answers: the session, or the second step's challenge."""
    if isinstance(signed_in, Session):
        return session(signed_in)
    return models.SignInChallenge(
        two_factor_required=True,
        challenge=signed_in.challenge,
        methods=[str(method) for method in signed_in.methods],  # type: ignore[misc]
        expires_at=signed_in.expires_at,
    )


def totp_enrolment(enrolment: TotpEnrolment) -> models.TotpEnrolment:
    return models.TotpEnrolment(
        secret=enrolment.secret, otpauth_uri=enrolment.otpauth_uri, qr_code=enrolment.qr_code
    )


def passkey(info: PasskeyInfo) -> models.Passkey:
    return models.Passkey(
        id=info.id, name=info.name, created_at=info.created_at, last_used_at=info.last_used_at
    )


def new_passkey(added: NewPasskey) -> models.NewPasskey:
    info = added.passkey
    return models.NewPasskey(
        id=info.id,
        name=info.name,
        created_at=info.created_at,
        last_used_at=info.last_used_at,
        recovery_codes=added.recovery_codes,
    )


def two_factor_status(status: Status, *, required: bool) -> models.TwoFactorStatus:
    return models.TwoFactorStatus(
        totp=status.totp,
        passkeys=[passkey(info) for info in status.passkeys],
        recovery_codes_left=status.recovery_codes_left,
        required=required,
    )


def passkey_options(options: PasskeyOptions) -> models.PasskeyOptions:
    return models.PasskeyOptions(challenge=options.challenge, public_key=options.public_key)


def _key_fields(info: KeyInfo, now: datetime) -> dict[str, Any]:
    status = info.status(now)
    settings = info.settings
    return {
        "id": info.id,
        "name": info.name,
        "key_prefix": info.key_prefix,
        "created_at": info.created_at,
        "last_used_at": info.last_used_at,
        "last_used_from": info.last_used_address,
        "last_used_user_agent": info.last_used_user_agent,
        "is_revoked": status is KeyStatus.REVOKED,
        "revoked_at": info.revoked_at,
        "status": _name(status),
        "expires_at": settings.expires_at,
        "revoked_reason": _name(info.revoked_reason),
        "revoked_detail": info.revoked_detail,
        "permissions": _name(settings.permission),
        "allowed_cidrs": list(settings.allowed_cidrs) if settings.allowed_cidrs else None,
        "zone_ids": list(settings.zone_ids) if settings.zone_ids else None,
        "created_by": models.CreatedBy(
            kind=_name(info.created_by_kind),
            key_prefix=info.created_by_key_prefix,
            member_id=info.created_by_member_id,
            email=info.created_by_email,
            policy_id=info.trust_policy_id,
            subject=info.created_by_subject,
        ),
        "replaces": info.replaces_id,
    }


def api_key(info: KeyInfo, now: datetime) -> models.ApiKey:
    return models.ApiKey(**_key_fields(info, now))


def new_key(created: CreatedKey, now: datetime) -> models.NewKey:
    return models.NewKey(**_key_fields(created.info, now), key=created.raw_key)


def usage(key_id: int, days: list[DayUsage]) -> models.KeyUsage:
    return models.KeyUsage(
        key_id=key_id,
        days=[
            models.DayUsage(day=day.day, successes=day.successes, refusals=day.refusals)
            for day in days
        ],
    )


def audit_event(event: AuditEvent) -> models.AuditEvent:
    return models.AuditEvent(
        id=event.id,
        event=event.event,
        occurred_at=event.occurred_at,
        actor_type=event.actor_type,  # type: ignore[arg-type]  # checked by the schema test
        actor_id=event.actor_id,
        key_id=event.key_id,
        key_prefix=event.key_prefix,
        client_address=event.client_address,
        user_agent=event.user_agent,
        detail=event.detail,
        actor=event.actor_name,
    )


def membership(account: MemberAccount) -> models.AccountMembership:
    return models.AccountMembership(id=account.id, name=account.name, role=_name(account.role))


def member(info: Member) -> models.Member:
    return models.Member(
        id=info.id,
        email=info.email,
        role=_name(info.role),
        joined_at=info.joined_at,
        two_factor=info.two_factor,
    )


def invitation(info: Invitation) -> models.Invitation:
    return models.Invitation(
        id=info.id,
        email=info.email,
        role=_name(info.role),
        expires_at=info.expires_at,
        created_at=info.created_at,
        invited_by=info.invited_by,
    )


def purge_detail(detail: PurgeDetail) -> models.Purge:
    info = detail.purge
    return models.Purge(
        id=info.id,
        kind=_name(info.kind),
        targets=info.targets,
        status=_name(info.status),
        created_at=info.created_at,
        completed_at=info.completed_at,
        nodes=[
            models.PurgeNode(
                node=node.label,
                status=_name(node.status),
                attempts=node.attempts,
                last_error=node.reason,
                updated_at=node.updated_at,
                next_attempt_at=node.next_attempt_at,
            )
            for node in detail.nodes
        ],
    )


def zone(info: ZoneInfo) -> models.Zone:
    return models.Zone(
        id=info.id,
        hostname=info.hostname,
        status=_name(info.status),
        verification=models.ZoneVerification(
            type="dns-txt", name=info.challenge_name, value=info.token
        ),
        created_at=info.created_at,
        verified_at=info.verified_at,
    )


def purge_scope(scope: PurgeScope) -> models.PurgeScope:
    principal = scope.principal
    return models.PurgeScope(
        credential=_name(principal.kind),
        key_prefix=principal.key_prefix,
        permissions=_name(principal.permission),
        zone_restricted=principal.zone_ids is not None,
        address_restricted=principal.address_restricted,
        zones=scope.zones,
        hostname=scope.hostname,
        covered=scope.covered,
    )


def trust_policy(policy: TrustPolicy) -> models.TrustPolicy:
    return models.TrustPolicy(
        id=policy.id,
        name=policy.name,
        issuer=policy.issuer,
        audience=policy.audience,
        conditions=policy.conditions,
        permissions=_name(policy.permission),
        zone_ids=list(policy.zone_ids) if policy.zone_ids else None,
        ttl_seconds=policy.ttl_seconds,
        created_at=policy.created_at,
        active_keys=policy.active_keys,
    )


def oidc_key(minted: MintedKey) -> models.OidcKey:
    return models.OidcKey(
        key=minted.raw_key,
        key_prefix=minted.key_prefix,
        expires_at=minted.expires_at,
        policy_id=minted.policy_id,
    )


def _webhook_fields(endpoint: Endpoint) -> dict[str, Any]:
    return {
        "id": endpoint.id,
        "url": endpoint.url,
        "events": list(endpoint.events),
        "enabled": endpoint.enabled,
        "created_at": endpoint.created_at,
        "updated_at": endpoint.updated_at,
        "disabled_at": endpoint.disabled_at,
        "disabled_reason": endpoint.disabled_reason,
        "failing_since": endpoint.failing_since,
        "previous_secret_expires_at": endpoint.previous_secret_until,
    }


def webhook(endpoint: Endpoint) -> models.Webhook:
    return models.Webhook(**_webhook_fields(endpoint))


def new_webhook(new: NewSecret) -> models.NewWebhook:
    return models.NewWebhook(**_webhook_fields(new.endpoint), secret=new.secret)


def webhook_delivery(delivery: Delivery) -> models.WebhookDelivery:
    return models.WebhookDelivery(
        id=delivery.id,
        endpoint_id=delivery.endpoint_id,
        message_id=delivery.message_id,
        event=delivery.event,
        status=_name(delivery.status),
        attempts=delivery.attempts,
        next_attempt_at=delivery.next_attempt_at,
        last_error=delivery.last_error,
        response_status=delivery.response_status,
        created_at=delivery.created_at,
        delivered_at=delivery.delivered_at,
        payload=delivery.payload,
    )
