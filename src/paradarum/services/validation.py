"""Field rules shared by services (pure functions)."""

from __future__ import annotations

import functools
import unicodedata

from paradarum.errors import ValidationFailed

NAME_MAX = 100
PASSWORD_MIN = 10
PASSWORD_MAX = 1024
EMAIL_MAX = 320

# Characters that change how text around them is shown, or are not shown at all:
# control characters, bidirectional overrides and isolates (U+202A–U+202E,
# U+2066–U+2069), zero-width spaces and joiners, line and paragraph separators.
# In a key name or an email they let one string pass for another (a revoke dialog
# that names the wrong key). The zero-width joiner is kept: emoji sequences such
# as 👩‍👩‍👧 are made with it.
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_ALLOWED_FORMAT = frozenset({"\u200d"})


def has_control_characters(value: str) -> bool:
    return any(unicodedata.category(ch) in ("Cc", "Cs") for ch in value)


def hidden_characters(value: str) -> list[str]:
    """The invisible or direction-changing characters in ``value``, as ``U+XXXX``."""
    return [
        f"U+{ord(ch):04X}"
        for ch in value
        if ch not in _ALLOWED_FORMAT and unicodedata.category(ch) in _HIDDEN_CATEGORIES
    ]


def _hidden_problem(value: str, what: str) -> str | None:
    found = hidden_characters(value)
    if not found:
        return None
    shown = ", ".join(dict.fromkeys(found[:5]))
    return (
        f"{what} must not contain invisible, control or text-direction characters (found {shown})."
    )


def key_name(raw: str) -> str:
    name = raw.strip()
    problems = []
    if not name:
        problems.append("Name must not be empty.")
    elif len(name) > NAME_MAX:
        problems.append(f"Name must be at most {NAME_MAX} characters.")
    hidden = _hidden_problem(name, "Name")
    if hidden:
        problems.append(hidden)
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
        or hidden_characters(value)
        or "." not in domain.strip(".")
    ):
        raise ValidationFailed({"email": ["Enter a valid email address."]}, "The email is invalid.")
    return value


@functools.cache
def _common_passwords() -> frozenset[str]:
    """zxcvbn's list of the 30,000 most common passwords (from real leaks)."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


def password(raw: str, *, email: str | None = None, field: str = "password") -> str:
    """Length, no NUL, not a well-known common password, not built from the email."""

    def refuse(problem: str) -> ValidationFailed:
        return ValidationFailed({field: [problem]}, "The password is invalid.")

    if len(raw) < PASSWORD_MIN or len(raw) > PASSWORD_MAX:
        raise refuse(f"Password must be {PASSWORD_MIN} to {PASSWORD_MAX} characters long.")
    if "\x00" in raw:
        raise refuse("Password must not contain NUL.")
    lowered = raw.lower()
    if lowered in _common_passwords():
        raise refuse(
            "This password is on a list of common passwords that attackers try first. "
            "Choose another, e.g. a few unrelated words."
        )
    if email:
        local = email.strip().lower().partition("@")[0]
        if lowered == email.strip().lower() or (len(local) >= 3 and local in lowered):
            raise refuse("Password must not contain your email address or its name part.")
    return raw
