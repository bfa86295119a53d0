"""Structured logs: one JSON object per line on stdout.

Secrets never reach a log line: the access log records the path without the
query string and no headers; SQLAlchemy hides bound parameters; and as a last
line of defence :func:`redact` masks anything shaped like an API key, a JWT, an
``Authorization`` header value, a SHA-256 key hash or an Argon2 password hash
before a line is written.

One entry is one line, whatever it holds: every non-ASCII character is escaped
(``\u2028``, ``\u0085`` and bidirectional controls included), so a crafted path
or name cannot split an entry or make it read differently on a terminal.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import sys
import time
from datetime import UTC, datetime
from typing import Any

# Broader on purpose than the scanner's detector (keyformat.PATTERN, valid checksum
# and full length only): a log also masks a key cut short or mistyped, and any
# URL-safe value after the prefix (a key's alphabet is base62, a typo's need not be).
_KEY = re.compile(r"pdm_[A-Za-z0-9_-]{4}[A-Za-z0-9_-]*")
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
# Up to a quote or backslash: redact() also runs over whole JSON lines, whose
# structure it must leave intact.
_BEARER = re.compile(r"(?i)(bearer\s+)[^\s\"\\]+")
# A key's SHA-256 (PostgreSQL names the duplicate value in a unique violation:
# "Key (key_hash)=(…) already exists") and a password's Argon2 hash.
_SHA256 = re.compile(r"(?<![0-9A-Fa-f])[0-9a-f]{64}(?![0-9A-Fa-f])")
_ARGON2 = re.compile(r"\$argon2(?:id|i|d)\$[A-Za-z0-9+/=,$]+")
# Whatever redact() would change starts like this: the access log's paths are
# searched once for it, and redacted only when it is there.
_SUSPECT = re.compile(r"pdm_|eyJ|\$argon2|[0-9a-f]{64}|(?i:bearer\s)")
# Printable ASCII that needs no JSON escaping.
_PLAIN = re.compile(r"[ !#-\[\]-~]*")
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's ANSI-coloured duplicate of the message
}


def redact(text: str) -> str:
    text = _KEY.sub(lambda m: m.group(0)[:8] + "…", text)
    text = _JWT.sub("[jwt]", text)
    text = _ARGON2.sub("[password hash]", text)
    text = _SHA256.sub("[hash]", text)
    return _BEARER.sub(r"\1[redacted]", text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in vars(record).items():
            if name not in _STANDARD and not name.startswith("_"):
                entry[name] = value if isinstance(value, int | float | bool | None) else str(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, ensure_ascii=True, separators=(",", ":")))


def configure(level: str = "INFO") -> None:
    """Route every logger (ours, uvicorn's, SQLAlchemy's) through one JSON handler."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    # httpx logs every request it sends at INFO, query string included (a purge's
    # URLs are the customer's): only its warnings.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # The server's own access log would print the query string: we log requests ourselves.
    logging.getLogger("granian.access").disabled = True


class AccessLogWriter:
    """Writes the access log's lines straight to the root handler's stream.

    The access log is on by default (it is a security record) and is written for
    every request, so it skips the logging framework's per-record work (a
    ``LogRecord``, filters, a generic formatter and five redaction passes over
    the whole line): the line has a fixed shape, and only its path comes from the
    caller. The result is the same JSON line :class:`JsonFormatter` would write.

    Lines written in one turn of the event loop reach the stream together, at the
    end of the turn (one system call for many requests); outside an event loop,
    each line at once.
    """

    def __init__(self) -> None:
        self._logger = logging.getLogger("paradarum.access")
        self._second = -1
        self._stamp = ""
        self._flush_queued_on: asyncio.AbstractEventLoop | None = None
        # Paths and clients as they go into the line (redacted, quoted): the same few
        # recur on every request, so each is worked out once.
        self._quoted: dict[str, str] = {}

    def _time(self, now: float) -> str:
        second = int(now)
        if second != self._second:
            self._second = second
            self._stamp = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return f"{self._stamp}.{int(now * 1000) % 1000:03d}Z"

    def write(self, *, method: str, path: str, status: int, duration: float, client: str) -> None:
        if not self._logger.isEnabledFor(logging.INFO):
            return
        handlers = logging.root.handlers
        stream = getattr(handlers[0], "stream", None) if len(handlers) == 1 else None
        if stream is None:  # some other logging setup: go through it
            self._logger.info(
                "request",
                extra={
                    "method": method,
                    "path": redact(path) if _SUSPECT.search(path) else path,
                    "status": status,
                    "duration_ms": round(duration * 1000, 2),
                    "client": client,
                },
            )
            return
        quoted = self._quoted
        path_json = quoted.get(path) or self._quote(path)
        client_json = quoted.get(client) or self._quote(client)
        line = (
            f'{{"time":"{self._time(time.time())}","level":"info","logger":"paradarum.access",'
            f'"message":"request","method":"{method}","path":{path_json},'
            f'"status":{status},"duration_ms":{duration * 1000:.2f},'
            f'"client":{client_json}}}\n'
        )
        handler = handlers[0]
        with handler.lock:  # type: ignore[union-attr]
            try:
                stream.write(line)
            except (OSError, ValueError):  # a closed or full stream: as logging does, go on
                return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            _flush(handler, stream)
            return
        if self._flush_queued_on is not loop:
            self._flush_queued_on = loop
            loop.call_soon(self._flush, handler, stream)

    def _quote(self, text: str) -> str:
        """``text`` (a path or a client) as a JSON string: redacted of anything that
        looks like a credential, and, being the caller's, escaped unless it is plain.
        Remembered when short (at most 4,096 of them)."""
        shown = redact(text) if _SUSPECT.search(text) else text
        quoted = f'"{shown}"' if _PLAIN.fullmatch(shown) else json.dumps(shown)
        if len(text) <= 256:
            if len(self._quoted) >= 4096:
                self._quoted.clear()
            self._quoted[text] = quoted
        return quoted

    def _flush(self, handler: logging.Handler, stream: Any) -> None:
        self._flush_queued_on = None
        _flush(handler, stream)


def _flush(handler: logging.Handler, stream: Any) -> None:
    with handler.lock, contextlib.suppress(OSError, ValueError):  # type: ignore[union-attr]
        stream.flush()
