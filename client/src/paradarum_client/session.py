"""The session ``paradarum login`` keeps: one small JSON file only its owner can read.

It holds the server's URL next to the token, so that the token is only ever sent
back to the server that issued it (``--url`` elsewhere means: not signed in there).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer

FILE_NAME = "session.json"


def path() -> Path:
    """``~/.config/paradarum/session.json`` on Linux (``$XDG_CONFIG_HOME`` honoured)."""
    return Path(typer.get_app_dir("paradarum")) / FILE_NAME


def load() -> dict[str, str]:
    """The kept session (``url``, ``token``, ``expiresAt``), or ``{}`` when there is none."""
    try:
        data = json.loads(path().read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {name: value for name, value in data.items() if isinstance(value, str)}


def save(data: dict[str, str]) -> Path:
    """Write the session file readable by its owner only (0600, directory 0700).

    The file is created with its final mode and then renamed into place, so that
    the token is never readable by others, not even for a moment.
    """
    target = path()
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = target.with_name(target.name + ".tmp")
    temporary.unlink(missing_ok=True)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle)
    os.replace(temporary, target)
    os.chmod(target, 0o600)
    return target


def forget() -> None:
    path().unlink(missing_ok=True)
