"""What ``paradarum serve`` and the operator commands check before they start.

A mistake in the configuration or the environment is reported as **one line** that
names the setting (``PARADARUM_...``), says what was wrong and what is accepted —
never a traceback — and ends the command with status 2 (a configuration error) or
1 (the environment: a database that does not answer, a full disk).
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import stat
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from paradarum.config import DATABASE_FILE_NAME, SECRET_FILE_NAME, Settings

logger = logging.getLogger("paradarum")
# Files of the data directory that hold secrets or hashes: readable by the owner only.
PRIVATE_FILES = (
    DATABASE_FILE_NAME,
    f"{DATABASE_FILE_NAME}-wal",
    f"{DATABASE_FILE_NAME}-shm",
    SECRET_FILE_NAME,
)


class StartupError(Exception):
    """Why the command cannot start, in one line; ``code`` is the exit status."""

    def __init__(self, message: str, *, code: int = 2) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def variable(field: str) -> str:
    return f"PARADARUM_{field.upper()}"


# Pydantic's sentences where a person needs the accepted values instead.
PLAIN_MESSAGES = {
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "int_parsing": "must be a whole number",
    "int_type": "must be a whole number",
    "float_parsing": "must be a number",
}


def describe(exc: ValidationError) -> str:
    """A settings error as one line per problem, each naming its variable."""
    lines = []
    for error in exc.errors(include_url=False, include_input=False):
        message = PLAIN_MESSAGES.get(error["type"]) or str(error["msg"]).removeprefix(
            "Value error, "
        )
        location = error.get("loc") or ()
        if location:
            lines.append(f"{variable(str(location[0]))}: {message}")
        else:
            lines.append(message)
    return "; ".join(lines)


def load_settings(overrides: Mapping[str, Any] | None = None) -> Settings:
    """Settings from the environment (and the command's flags), or a StartupError."""
    try:
        return Settings(**dict(overrides or {}))
    except ValidationError as exc:
        raise StartupError(f"Invalid configuration: {describe(exc)}") from None
    except ValueError as exc:  # a validator outside pydantic's wrapping
        raise StartupError(f"Invalid configuration: {exc}") from None


def prepare_data_dir(settings: Settings) -> None:
    """Make the data directory private before anything is written to it.

    The SQLite database holds password hashes and key hashes, the secret file signs
    sessions: every file the process creates from here on is readable by its owner
    only (umask 077), files made by an older version are brought to 0600, and a
    directory that others can read is warned about. A directory that cannot be
    written is a StartupError naming it.
    """
    os.umask(0o077)
    if not settings.is_sqlite and settings.jwt_secret is not None:
        return  # nothing of ours is written to disk
    directory = settings.data_dir
    if directory.exists() and not directory.is_dir():
        raise StartupError(
            f"{variable('data_dir')}: {directory} is a file, not a directory; give a "
            "directory (it is created if missing), such as ./data."
        )
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        probe = directory / f".paradarum-write-check-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise StartupError(
                f"The disk holding {directory} is full: free some space, then start again.",
                code=1,
            ) from None
        raise StartupError(
            f"{variable('data_dir')}: {directory} cannot be written to ({exc.strerror}); "
            "give a directory this user can write, such as ./data."
        ) from None
    for name in PRIVATE_FILES:
        path = directory / name
        if path.exists() and stat.S_IMODE(path.stat().st_mode) & 0o077:
            path.chmod(0o600)
    if stat.S_IMODE(directory.stat().st_mode) & 0o077:
        logger.warning(
            "the data directory %s can be read by other users: make it private "
            "(chmod 700 %s); its files are kept private (0600) either way",
            directory,
            directory,
        )


def base_url(host: str, port: int) -> str:
    """Where a browser reaches a server listening on ``host``: ``http://127.0.0.1:8000``."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def check_address(host: str, port: int) -> int:
    """Refuse to start on an address something else listens on, in one line; returns
    the port to listen on (port 0: a free one, chosen here so that it can be told, and
    so that every worker listens on the same one).

    The server shares a port with another server that asks to (SO_REUSEPORT), so
    without this check a second ``paradarum serve`` would silently take half of the
    first one's connections. A bind without SO_REUSEPORT tells.

    The probe sets SO_REUSEADDR, as the server's own listener does: connections of a
    server that just died (``kill -9`` with clients connected) linger in TIME_WAIT for
    up to a minute, and a probe without it would refuse the port until they are gone,
    which under a supervisor loops into giving up. With SO_REUSEADDR the kernel still
    refuses an address that a live socket *listens* on, so a second server is refused.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
            return int(sock.getsockname()[1])
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise StartupError(
                    f"Port {port} on {host} is in use (another paradarum serve?): stop it, "
                    f"or choose another port with --port, PARADARUM_PORT or `make run PORT=...`.",
                    code=1,
                ) from None
            if exc.errno == errno.EADDRNOTAVAIL:
                raise StartupError(
                    f"{variable('host')}: {host} is not an address of this machine; "
                    "use 127.0.0.1, 0.0.0.0 or one of its addresses."
                ) from None
            if isinstance(exc, socket.gaierror) and exc.errno == socket.EAI_NONAME:
                raise StartupError(
                    f"{variable('host')}: {host} is neither an IP address nor a name this "
                    "machine knows; use 127.0.0.1, 0.0.0.0 or one of its addresses."
                ) from None
            if exc.errno == errno.EACCES:
                raise StartupError(
                    f"{variable('port')}: port {port} needs privileges; use a port above 1023."
                ) from None
            raise StartupError(f"Cannot listen on {host}:{port}: {exc.strerror}.", code=1) from None
