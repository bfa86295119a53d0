"""What requests may carry: bodies and query strings (Pydantic, strict).

Answers are the shapes of :mod:`paradarum_client.models`; these are the other
direction, kept apart from the tables on purpose. Field rules that are the
service's (with its own messages: name length, password policy) are only
described here, so that ``/openapi.json`` says what a valid request looks like.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from paradarum.services.pagination import DEFAULT_LIMIT, MAX_ID, MAX_LIMIT

Id = Annotated[int, Field(ge=1, le=MAX_ID)]


class _Body(BaseModel):
    # strict: "wrong types" are refused, never coerced (123 is not a name).
    model_config = ConfigDict(strict=True, extra="ignore")

    @field_validator("*")
    @classmethod
    def _no_lone_surrogates(cls, value: object) -> object:
        # JSON can spell "\ud800", which no database or hasher can encode.
        if isinstance(value, str) and any("\ud800" <= ch <= "\udfff" for ch in value):
            raise ValueError("must be valid Unicode text (no lone surrogates)")
        if isinstance(value, list) and any(
            isinstance(item, str) and any("\ud800" <= ch <= "\udfff" for ch in item)
            for item in value
        ):
            raise ValueError("must be valid Unicode text (no lone surrogates)")
        return value


class CredentialsIn(_Body):
    email: str = Field(max_length=320, examples=["ada@example.com"])
    password: str = Field(max_length=1024)


class SignupIn(CredentialsIn):
    email: str = Field(
        max_length=320,
        examples=["ada@example.com"],
        description="Trimmed and lowercased; must be unique.",
        json_schema_extra={"format": "email"},
    )
    password: str = Field(
        max_length=1024,
        description=(
            "10 to 1024 characters, no NUL, not a well-known common password, "
            "not containing the email's name part."
        ),
        json_schema_extra={"minLength": 10},
    )


class EmailTokenIn(_Body):
    token: str = Field(max_length=2000, description="The token from the emailed link.")


class PasswordChangeIn(_Body):
    currentPassword: str = Field(max_length=1024)
    newPassword: str = Field(
        max_length=1024,
        description="As for sign-up.",
        json_schema_extra={"minLength": 10},
    )


class NewKeyIn(_Body):
    name: str = Field(
        max_length=1000,
        description="1–100 characters after trimming; no control or invisible characters.",
        examples=["WordPress purge plugin"],
        json_schema_extra={"minLength": 1},
    )
    expiresAt: datetime | None = Field(
        default=None,
        description="RFC 3339, in the future, at most 366 days ahead. Leave out: never.",
    )
    permissions: Literal["full", "purge"] = Field(
        default="full",
        description="`purge`: the purge endpoints and GET /api/account only.",
    )
    allowedCidrs: list[str] | None = Field(
        default=None,
        max_length=20,
        description="Up to 20 IPv4/IPv6 networks the key may be used from. Leave out: anywhere.",
        examples=[["203.0.113.0/24"]],
    )
    zoneIds: list[Id] | None = Field(
        default=None,
        max_length=100,
        description="The zones this key may purge. Leave out: every zone of the account.",
    )


class RollIn(_Body):
    gracePeriodMinutes: int = Field(
        ge=0,
        le=7 * 24 * 60,
        description="How long the old key keeps working (0: revoked at once).",
    )


class ZoneIn(_Body):
    hostname: str = Field(
        max_length=1000,
        description=(
            "A hostname (www.example.com) or a wildcard (*.example.com: every subdomain, "
            "not the apex); no scheme, port or path. Unicode names are stored in punycode."
        ),
        examples=["www.example.com"],
        json_schema_extra={"minLength": 1},
    )


class CredentialsRevokeIn(_Body):
    credentials: list[Annotated[str, Field(max_length=1000)]] = Field(
        min_length=1,
        max_length=1000,
        description="1–1000 strings found in public; every Paradarum key among them is revoked.",
    )


class PurgeIn(_Body):
    """Exactly one of the three; the service names the problem otherwise."""

    urls: list[str] | None = Field(
        default=None,
        description="1–100 absolute http(s) URLs on hosts of your active zones.",
        examples=[["https://www.example.com/blog/hello-world"]],
    )
    tags: list[str] | None = Field(
        default=None,
        description="1–100 cache tags, 1–128 visible ASCII characters, no commas.",
        examples=[["product-42"]],
    )
    everything: bool | None = Field(
        default=None, description="true to purge everything cached for your active zones."
    )


class SwitchIn(_Body):
    accountId: Id = Field(description="One of the accounts GET /api/accounts lists.")


class InvitationIn(_Body):
    email: str = Field(
        max_length=320,
        examples=["grace@example.com"],
        description="Trimmed and lowercased. Only the person who signs in with it can accept.",
        json_schema_extra={"format": "email"},
    )
    # A string here, so that an unknown role gets the service's sentence.
    role: str = Field(
        max_length=100,
        description="owner (only owners invite owners), admin, developer, purger or viewer.",
        examples=["purger"],
    )


class RoleIn(_Body):
    role: str = Field(
        max_length=100,
        description="owner, admin, developer, purger or viewer.",
        examples=["developer"],
    )


class RemoveMemberIn(_Body):
    keys: str = Field(
        max_length=100,
        description=(
            '"revoke": the member\'s active keys are revoked; "keep": they keep working, '
            "and the member who removes them vouches for them from now on."
        ),
        examples=["revoke"],
    )


class InvitationTokenIn(_Body):
    token: str = Field(max_length=2000, description="The token from the invitation link.")


# -- query strings ----------------------------------------------------------------------


class _Query(BaseModel):
    # Query values arrive as text: "20" is a fine limit.
    model_config = ConfigDict(extra="ignore")


class PageQuery(_Query):
    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    cursor: str | None = Field(default=None, max_length=200)


class KeyListQuery(PageQuery):
    status: Literal["all", "active", "revoked", "expired"] = "all"


class PurgeListQuery(PageQuery):
    limit: int = Field(default=50, ge=1, le=200)


class PurgeScopeQuery(_Query):
    hostname: str | None = Field(
        default=None,
        max_length=300,
        description="A hostname (a port is ignored): the answer says whether you may purge it.",
        examples=["www.example.com"],
    )
