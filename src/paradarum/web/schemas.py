"""API request and response shapes (Pydantic). Apart from the tables on purpose:
a response model lists exactly the fields a caller may see, so ``key_hash`` has no
way into a response."""

from __future__ import annotations

from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from paradarum.clock import rfc3339
from paradarum.services.apikeys import CreatedKey, KeyInfo
from paradarum.services.audit import AuditEvent
from paradarum.services.purges import PurgeDetail, PurgeInfo

T = TypeVar("T")


class _Request(BaseModel):
    # strict: "wrong types" are refused, never coerced (123 is not a name).
    model_config = ConfigDict(strict=True, extra="ignore")

    @field_validator("*")
    @classmethod
    def _no_lone_surrogates(cls, value: object) -> object:
        # JSON can spell "\ud800", which no database or hasher can encode.
        if isinstance(value, str) and any("\ud800" <= ch <= "\udfff" for ch in value):
            raise ValueError("must be valid Unicode text (no lone surrogates)")
        return value


class CredentialsIn(_Request):
    email: str = Field(max_length=320, examples=["ada@example.com"])
    password: str = Field(max_length=1024)


class SignupIn(CredentialsIn):
    # The rules themselves are the service's (with its own messages); these
    # annotations only say them in the document, so that clients and fuzzers
    # know what a valid sign-up looks like.
    email: str = Field(
        max_length=320,
        examples=["ada@example.com"],
        description="Trimmed and lowercased; must be unique.",
        json_schema_extra={"format": "email"},
    )
    password: str = Field(
        max_length=1024,
        description="10 to 1024 characters, no NUL.",
        json_schema_extra={"minLength": 10},
    )


class NewKeyIn(_Request):
    name: str = Field(
        max_length=1000,
        description="1–100 characters after trimming, no control characters.",
        examples=["WordPress purge plugin"],
        json_schema_extra={"minLength": 1},
    )


class PasswordChangeIn(_Request):
    currentPassword: str = Field(max_length=1024)
    newPassword: str = Field(
        max_length=1024,
        description="10 to 1024 characters, no NUL.",
        json_schema_extra={"minLength": 10},
    )


class Envelope(BaseModel, Generic[T]):
    succeeded: Literal[True]
    message: str
    data: T


class ErrorEnvelope(BaseModel):
    """Every error response. ``errors`` (field → problems) only on invalid fields."""

    model_config = ConfigDict(json_schema_mode_override="serialization")

    succeeded: Literal[False]
    message: str
    data: None
    errors: dict[str, list[str]] = Field(
        default_factory=dict, json_schema_extra={"minProperties": 1}
    )


class AccountOut(BaseModel):
    id: int
    email: str
    createdAt: str


class AccountSummaryOut(AccountOut):
    activeKeys: int
    keyLimit: int


class SessionOut(BaseModel):
    token: str
    tokenType: str
    expiresAt: str


class KeyOut(BaseModel):
    id: int
    name: str
    keyPrefix: str
    createdAt: str
    lastUsedAt: str | None
    lastUsedFrom: str | None
    lastUsedUserAgent: str | None
    isRevoked: bool
    revokedAt: str | None


class CreatedKeyOut(BaseModel):
    id: int
    name: str
    key: str
    keyPrefix: str
    createdAt: str


class AuditEventOut(BaseModel):
    id: int
    event: str = Field(
        description=(
            "account.signup, session.login_succeeded, session.login_failed, "
            "session.logout, account.password_changed, key.created, key.revoked, "
            "key.first_used (more may be added)"
        ),
        examples=["key.created"],
    )
    occurredAt: str
    actorType: Literal["session", "key", "anonymous"]
    actorId: str | None = Field(description="The session's token id (jti) or the key's prefix")
    keyId: int | None
    keyPrefix: str | None
    clientAddress: str | None
    userAgent: str | None


class HealthOut(BaseModel):
    status: str


def key_out(info: KeyInfo) -> dict[str, object]:
    return {
        "id": info.id,
        "name": info.name,
        "keyPrefix": info.key_prefix,
        "createdAt": rfc3339(info.created_at),
        "lastUsedAt": rfc3339(info.last_used_at),
        "lastUsedFrom": info.last_used_address,
        "lastUsedUserAgent": info.last_used_user_agent,
        "isRevoked": info.is_revoked,
        "revokedAt": rfc3339(info.revoked_at),
    }


def audit_event_out(event: AuditEvent) -> dict[str, object]:
    return {
        "id": event.id,
        "event": event.event,
        "occurredAt": rfc3339(event.occurred_at),
        "actorType": event.actor_type,
        "actorId": event.actor_id,
        "keyId": event.key_id,
        "keyPrefix": event.key_prefix,
        "clientAddress": event.client_address,
        "userAgent": event.user_agent,
    }


def created_key_out(created: CreatedKey) -> dict[str, object]:
    return {
        "id": created.info.id,
        "name": created.info.name,
        "key": created.raw_key,
        "keyPrefix": created.info.key_prefix,
        "createdAt": rfc3339(created.info.created_at),
    }


ERROR_TEXT = {
    400: "Invalid fields, malformed JSON or a rule such as the key limit",
    401: "Missing, malformed, unknown, revoked or expired credentials",
    403: "Forbidden by configuration",
    404: "No such thing for this account",
    409: "Conflict: the email is already taken",
    413: "Body over 64 KiB",
    415: "Body that is not JSON",
    429: "Rate limited; see Retry-After (seconds)",
    503: "A dependency (the database) is unavailable; see Retry-After",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, object]]:
    """OpenAPI entries for the error envelopes a route can return."""
    return {code: {"model": ErrorEnvelope, "description": ERROR_TEXT[code]} for code in codes}


# -- cache purge --------------------------------------------------------------


class PurgeIn(_Request):
    """Exactly one of the three; the service names the problem otherwise."""

    urls: list[str] | None = Field(
        default=None,
        description="1–100 absolute http(s) URLs.",
        examples=[["https://www.example.com/blog/hello-world"]],
    )
    tags: list[str] | None = Field(
        default=None,
        description="1–100 cache tags, 1–128 visible ASCII characters, no commas.",
        examples=[["product-42"]],
    )
    everything: bool | None = Field(default=None, description="true to purge everything.")


class PurgeOut(BaseModel):
    id: int
    kind: str
    targets: list[str]
    status: str
    createdAt: str
    completedAt: str | None = None


class PurgeNodeOut(BaseModel):
    node: str
    status: str
    attempts: int
    lastError: str | None
    updatedAt: str
    nextAttemptAt: str | None


class PurgeDetailOut(PurgeOut):
    nodes: list[PurgeNodeOut]


def purge_out(info: PurgeInfo, *, with_completed: bool = True) -> dict[str, object]:
    data: dict[str, object] = {
        "id": info.id,
        "kind": info.kind,
        "targets": info.targets,
        "status": info.status,
        "createdAt": rfc3339(info.created_at),
    }
    if with_completed:
        data["completedAt"] = rfc3339(info.completed_at)
    return data


def purge_detail_out(detail: PurgeDetail) -> dict[str, object]:
    data = purge_out(detail.purge)
    data["nodes"] = [
        {
            "node": node.node,
            "status": node.status,
            "attempts": node.attempts,
            "lastError": node.last_error,
            "updatedAt": rfc3339(node.updated_at),
            "nextAttemptAt": rfc3339(node.next_attempt_at),
        }
        for node in detail.nodes
    ]
    return data
