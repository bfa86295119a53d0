"""Sending email over SMTP: one message per connection, bounded in time, encrypted
and authenticated when the settings say so.

Paradarum sends little mail (security notices to account owners), from a
background worker that keeps each message in an outbox until it is sent. So
:class:`Mailer` is deliberately plain: synchronous (the worker runs it in a
thread), one connection per message (nothing to keep alive or to go stale), and
one exception type, :class:`MailError`, that tells the worker whether trying
again later can help.

TLS is always verified (certificate chain and host name): a notice about a
leaked key must not go to whoever sits between us and the relay. With
``PARADARUM_SMTP_CA_FILE`` the given PEM bundle is trusted *instead of* the
system's authorities, for a private CA or a test's self-signed certificate;
verification itself cannot be turned off. Credentials are only ever sent over
TLS: a URL with a user and password but neither ``smtps://`` nor
``?starttls=true`` is refused when the settings are read.
"""

from __future__ import annotations

import contextlib
import smtplib
import socket
import ssl
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = ["MailError", "Mailer", "Security", "SmtpEndpoint", "parse_smtp_url"]

_URL_SHAPE = (
    "expected smtp://[user:password@]host:port, smtps://... for TLS, "
    "or smtp://...?starttls=true for STARTTLS"
)


class MailError(Exception):
    """Sending failed. The message is safe to log: it names the relay's host and
    port and the reason, never the password.

    ``temporary`` says whether trying the same message again later may work:
    true for anything about the connection or the relay (refused, timed out,
    TLS or login trouble, any 4xx); false only when the relay refused this
    message for good (a 5xx to its sender, recipient or content), where a retry
    would be refused again.
    """

    def __init__(self, message: str, *, temporary: bool) -> None:
        super().__init__(message)
        self.temporary = temporary


class Security(StrEnum):
    """How the connection to the relay is protected."""

    NONE = "none"  # smtp://  (only for a relay on a trusted network)
    STARTTLS = "starttls"  # smtp://...?starttls=true: upgraded before anything is sent
    TLS = "tls"  # smtps://: TLS from the first byte


@dataclass(frozen=True)
class SmtpEndpoint:
    """A parsed ``PARADARUM_SMTP_URL``. The password never appears in its repr."""

    host: str
    port: int
    security: Security
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


_DEFAULT_PORTS = {Security.NONE: 25, Security.STARTTLS: 587, Security.TLS: 465}


def parse_smtp_url(url: str) -> SmtpEndpoint:
    """Read ``smtp://[user:password@]host:port`` (``smtps://`` for TLS,
    ``?starttls=true`` for STARTTLS). User and password are percent-decoded.

    Without a port: 25, 587 with STARTTLS, 465 for ``smtps://``. Raises
    :class:`ValueError` with a one-line message that names the setting and what
    it accepts, and never repeats the URL (it may hold the password).
    """

    def problem(reason: str, *, shape: bool = True) -> ValueError:
        return ValueError(f"PARADARUM_SMTP_URL {reason}" + (f": {_URL_SHAPE}" if shape else ""))

    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise problem("has an unreadable host or port") from None
    scheme = parts.scheme.lower()
    if scheme not in ("smtp", "smtps"):
        shown = f"scheme {scheme!r}" if scheme.isalnum() and len(scheme) <= 10 else "no scheme"
        raise problem(f"has {shown}")
    if not parts.hostname:
        raise problem("has no host")
    if parts.path not in ("", "/") or parts.fragment:
        raise problem("cannot have a path or a fragment")
    options = parse_qsl(parts.query, keep_blank_values=True)
    if len(options) > 1 or any(name != "starttls" for name, _ in options):
        raise problem("accepts only one query option, starttls=true or starttls=false")
    starttls = options[0][1].lower() if options else "false"
    if starttls not in ("true", "false"):
        raise problem("accepts only starttls=true or starttls=false")
    if scheme == "smtps" and starttls == "true":
        raise problem("cannot combine smtps:// with starttls=true")
    if scheme == "smtps":
        security = Security.TLS
    else:
        security = Security.STARTTLS if starttls == "true" else Security.NONE
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    if (username is None) != (password is None):
        raise problem("needs both a user and a password, or neither")
    if username is not None and security is Security.NONE:
        raise problem(
            "sends a password only over TLS: use smtps:// or add ?starttls=true", shape=False
        )
    return SmtpEndpoint(
        host=parts.hostname,
        port=port or _DEFAULT_PORTS[security],
        security=security,
        username=username,
        password=password,
    )


class Mailer:
    """Hands messages to one SMTP relay.

    ``timeout`` bounds a whole :meth:`send`, from connecting to the relay's last
    answer: each network wait gets only what is left of it.
    """

    def __init__(
        self,
        endpoint: SmtpEndpoint,
        *,
        timeout: float = 10.0,
        ca_file: Path | None = None,
        helo_name: str | None = None,
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.endpoint = endpoint
        self.timeout = timeout
        # Looked up once here rather than by smtplib on every connection, where a
        # slow resolver would run outside the send's deadline.
        self.helo_name = helo_name or socket.getfqdn()
        # Built once: loading CAs is slow, and a bad CA file should fail at start.
        self._tls = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)

    def __repr__(self) -> str:
        return f"Mailer({self.endpoint.security.value} {self.endpoint})"

    def send(self, message: EmailMessage) -> None:
        """Deliver ``message`` to the relay, or raise :class:`MailError`.

        Envelope sender and recipients come from the message's headers. Once
        the relay has accepted the message, a failure to say goodbye is ignored:
        raising then would have the worker send it twice.
        """
        deadline = time.monotonic() + self.timeout
        step = "connecting"
        client: _BoundedSMTP | None = None
        delivered = False
        try:
            try:
                client = self._connect(deadline)
                step = "EHLO"
                client.ehlo()
                if self.endpoint.security is Security.STARTTLS:
                    step = "STARTTLS"
                    client.starttls(context=self._tls)
                    client.ehlo()
                if self.endpoint.username is not None:
                    step = "AUTH"
                    client.login(self.endpoint.username, self.endpoint.password or "")
                step = "sending"
                refused = client.send_message(message)
                delivered = True
            except OSError as exc:  # smtplib's, ssl's and socket's errors are all OSErrors
                raise self._translate(exc, step) from exc
        finally:
            if client is not None:
                if delivered:
                    with contextlib.suppress(OSError):
                        client.quit()
                client.close()
        if refused:
            # Some recipients took it and some did not: retrying would repeat it
            # to those that did.
            raise MailError(
                f"SMTP {self.endpoint}: {len(refused)} recipient(s) refused", temporary=False
            )

    def _translate(self, exc: OSError, step: str) -> MailError:
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            replies = list(exc.recipients.values())
            temporary = any(code < 500 for code, _ in replies)
            return self._error(
                "recipient refused", replies[0] if replies else None, temporary=temporary
            )
        if isinstance(exc, smtplib.SMTPSenderRefused | smtplib.SMTPDataError):
            what = (
                "sender refused"
                if isinstance(exc, smtplib.SMTPSenderRefused)
                else "message refused"
            )
            return self._error(what, (exc.smtp_code, exc.smtp_error), temporary=exc.smtp_code < 500)
        if isinstance(exc, smtplib.SMTPNotSupportedError):
            return self._error(f"{step}: the relay does not offer it", None, temporary=True)
        if isinstance(exc, smtplib.SMTPResponseException):
            # Before the message itself (greeting, TLS, login): about the relay or
            # our settings, not this message, so a later try may go through.
            return self._error(step, (exc.smtp_code, exc.smtp_error), temporary=True)
        # smtplib reports a read that timed out as a closed connection.
        if isinstance(exc, TimeoutError) or isinstance(exc.__context__, TimeoutError):
            return self._error(
                f"{step}: timed out (limit {self.timeout:g} s)", None, temporary=True
            )
        if isinstance(exc, ssl.SSLError):
            # verify_message says why a certificate was refused ("certificate has expired").
            why = getattr(exc, "verify_message", None) or exc.reason or str(exc)
            return self._error(f"{step}: TLS failed: {why}", None, temporary=True)
        return self._error(f"{step}: {exc or type(exc).__name__}", None, temporary=True)

    def _connect(self, deadline: float) -> _BoundedSMTP:
        host, port = self.endpoint.host, self.endpoint.port
        if self.endpoint.security is Security.TLS:
            return _BoundedSMTPOverTLS(
                host,
                port,
                local_hostname=self.helo_name,
                timeout=self.timeout,
                context=self._tls,
                deadline=deadline,
            )
        return _BoundedSMTP(
            host, port, local_hostname=self.helo_name, timeout=self.timeout, deadline=deadline
        )

    def _error(
        self, reason: str, reply: tuple[int, bytes | str] | None, *, temporary: bool
    ) -> MailError:
        text = f"SMTP {self.endpoint}: {reason}"
        if reply is not None:
            code, detail = reply
            if isinstance(detail, bytes):
                detail = detail.decode("utf-8", "replace")
            detail = " ".join(str(detail).split())[:200]
            text += f": {code} {detail}".rstrip()
        password = self.endpoint.password
        if password:
            text = text.replace(password, "[password]")
        return MailError(text, temporary=temporary)


class _BoundedSMTP(smtplib.SMTP):
    """An SMTP client whose every wait gets only what is left of one deadline,
    so a relay that answers slowly, a line at a time, cannot hold a worker for
    longer than the timeout (smtplib's own timeout applies to each wait anew)."""

    def __init__(self, *args: Any, deadline: float, **kwargs: Any) -> None:
        self._deadline = deadline
        super().__init__(*args, **kwargs)

    def _remaining(self) -> float:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("deadline passed")
        return remaining

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return super()._get_socket(host, port, min(timeout, self._remaining()))  # type: ignore[misc]

    def send(self, s: Buffer | str) -> None:
        if self.sock is not None:
            self.sock.settimeout(self._remaining())
        super().send(s)

    def getreply(self) -> tuple[int, bytes]:
        if self.sock is not None:
            self.sock.settimeout(self._remaining())
        return super().getreply()


class _BoundedSMTPOverTLS(_BoundedSMTP, smtplib.SMTP_SSL):
    pass
