"""API request and response shapes (Pydantic). Apart from the tables on purpose:
a response model lists exactly the fields a caller may see, so ``key_hash`` has no
way into a response."""

from __future__ import annotations

from datetime import datetime
from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from paradarum.clock import rfc3339
from paradarum.services.apikeys import CreatedKey, KeyInfo
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


class NewKeyIn(_Request):
    name: str = Field(
        max_length=1000,
        description="1–100 characters after trimming, no control characters.",
        examples=["WordPress purge plugin"],
    )


class PasswordChangeIn(_Request):
    currentPassword: str = Field(max_length=1024)
    newPassword: str = Field(max_length=1024)


class Envelope(BaseModel, Generic[T]):
    succeeded: bool
    message: str
    data: T


class ErrorEnvelope(BaseModel):
    succeeded: bool = False
    message: str
    data: None = None
    errors: dict[str, list[str]] | None = None


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


class HealthOut(BaseModel):
    status: str


def timestamp(moment: datetime | None) -> str | None:
    return rfc3339(moment)


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


def created_key_out(created: CreatedKey) -> dict[str, object]:
    return {
        "id": created.info.id,
        "name": created.info.name,
        "key": created.raw_key,
        "keyPrefix": created.info.key_prefix,
        "createdAt": rfc3339(created.info.created_at),
    }


_ERROR_TEXT = {
    400: "Invalid fields, malformed JSON or a rule such as the key limit",
    401: "Missing, malformed, unknown, revoked or expired credentials",
    403: "Forbidden by configuration",
    404: "No such thing for this account",
    409: "Conflict",
    413: "Body over 64 KiB",
    415: "Body that is not JSON",
    429: "Rate limited; see Retry-After (seconds)",
    503: "A dependency (the database) is unavailable; see Retry-After",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, object]]:
    """OpenAPI entries for the error envelopes a route can return."""
    return {code: {"model": ErrorEnvelope, "description": _ERROR_TEXT[code]} for code in codes}


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
