"""Field rules shared by services (pure functions)."""

from __future__ import annotations

import unicodedata

from paradarum.errors import ValidationFailed

NAME_MAX = 100
PASSWORD_MIN = 10
PASSWORD_MAX = 1024
EMAIL_MAX = 320


def has_control_characters(value: str) -> bool:
    return any(unicodedata.category(ch) in ("Cc", "Cs") for ch in value)


def key_name(raw: str) -> str:
    name = raw.strip()
    problems = []
    if not name:
        problems.append("Name must not be empty.")
    elif len(name) > NAME_MAX:
        problems.append(f"Name must be at most {NAME_MAX} characters.")
    if has_control_characters(name):
        problems.append("Name must not contain control characters.")
    if problems:
        raise ValidationFailed({"name": problems}, "The key name is invalid.")
    return name


def email(raw: str) -> str:
    value = raw.strip().lower()
    local, _, domain = value.partition("@")
    if (
        not local
        or not domain
        or "@" in domain
        or len(value) > EMAIL_MAX
        or any(ch.isspace() for ch in value)
        or has_control_characters(value)
        or "." not in domain.strip(".")
    ):
        raise ValidationFailed({"email": ["Enter a valid email address."]}, "The email is invalid.")
    return value


def password(raw: str, field: str = "password") -> str:
    if len(raw) < PASSWORD_MIN or len(raw) > PASSWORD_MAX:
        raise ValidationFailed(
            {field: [f"Password must be {PASSWORD_MIN} to {PASSWORD_MAX} characters long."]},
            "The password is invalid.",
        )
    if "\x00" in raw:
        raise ValidationFailed(
            {field: ["Password must not contain NUL."]}, "The password is invalid."
        )
    return raw
