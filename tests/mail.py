"""A real SMTP server for tests: aiosmtpd on a free loopback port that keeps every
message it accepts, parsed, for the test to read.

Variants: STARTTLS or TLS from the first byte (with a self-signed certificate
made for the test, whose file the mailer is told to trust), AUTH (with a
password made for the test), and recipients it refuses with a reply of the
test's choosing. Plus a port where nothing listens and one that never answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import re
import secrets
import socket
import ssl
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from sqlalchemy import select

from paradarum.db.tables import notifications
from paradarum.services.emails import EmailJob, Kind
from tests.support import free_port

Tls = Literal["none", "starttls", "implicit"]


@dataclass(frozen=True)
class Received:
    """One message as the server got it."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    raw: bytes  # as it came over the wire
    over_tls: bool
    signed_in_as: str | None


@dataclass(frozen=True)
class Certificate:
    """A self-signed certificate for 127.0.0.1 and localhost, and its key."""

    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


def self_signed_certificate(directory: Path) -> Certificate:
    """Made fresh for each server, valid for a day, in ``directory``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Paradarum test SMTP")])
    now = datetime.now(UTC)
    public = key.public_key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_file = directory / "smtp-cert.pem"
    key_file = directory / "smtp-key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Certificate(cert_file, key_file)


@dataclass
class SmtpServer:
    """A running test server. ``received`` fills as messages arrive."""

    host: str
    port: int
    tls: Tls
    ca_file: Path | None
    user: str | None
    password: str | None
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # With ``hold``: messages that reached DATA, and how many of them may be accepted.
    arrived: int = 0
    released: int = 0

    def release(self, count: int = 1) -> None:
        """Let ``count`` more held messages be accepted, in the order they arrived."""
        with self.lock:
            self.released += count

    def url(self, *, user: str | None = None, password: str | None = None) -> str:
        """The ``PARADARUM_SMTP_URL`` for this server; its own credentials unless
        others are given."""
        user = user if user is not None else self.user
        password = password if password is not None else self.password
        scheme = "smtps" if self.tls == "implicit" else "smtp"
        credentials = f"{quote(user, safe='')}:{quote(password, safe='')}@" if user else ""
        query = "?starttls=true" if self.tls == "starttls" else ""
        return f"{scheme}://{credentials}{self.host}:{self.port}{query}"

    def messages(self) -> list[Received]:
        with self.lock:
            return list(self.received)

    def links(self, email: str, *, subject: str, page: str) -> list[str]:
        """The links to the panel's ``page`` (``/verify-email``) with a token, in the
        plain text of the messages to ``email`` whose subject holds ``subject``,
        oldest first."""
        found: list[str] = []
        for received in self.messages():
            if email in received.rcpt_tos and subject in str(received.message["Subject"]):
                text = received.message.get_body(("plain",)).get_content()
                found += re.findall(r"https?://[^/\s]+" + re.escape(page) + r"#token=\S+", text)
        return found


class _Handler:
    def __init__(self, server: SmtpServer, refuse: Mapping[str, str], hold: bool) -> None:
        self.server = server
        self.refuse = refuse
        self.hold = hold

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.hold:  # a relay that answers when the test says so
            with self.server.lock:
                self.server.arrived += 1
                number = self.server.arrived
            while True:
                with self.server.lock:
                    if self.server.released >= number:
                        break
                await asyncio.sleep(0.01)
        content = envelope.original_content or envelope.content
        assert isinstance(content, bytes)
        message = BytesParser(policy=policy.default).parsebytes(content)
        assert isinstance(message, EmailMessage)
        transport = server.transport
        over_tls = transport is not None and transport.get_extra_info("ssl_object") is not None
        auth = getattr(session, "auth_data", None)
        signed_in_as = auth.login.decode() if isinstance(auth, LoginPassword) else None
        with self.server.lock:
            self.server.received.append(
                Received(
                    mail_from=str(envelope.mail_from),
                    rcpt_tos=list(envelope.rcpt_tos),
                    message=message,
                    raw=content,
                    over_tls=over_tls,
                    signed_in_as=signed_in_as,
                )
            )
        return "250 2.0.0 OK: queued"


@contextlib.contextmanager
def smtp_server(
    *,
    tls: Tls = "none",
    directory: Path | None = None,
    auth: bool = False,
    refuse: Mapping[str, str] | None = None,
    hold: bool = False,
) -> Iterator[SmtpServer]:
    """Run a server on 127.0.0.1 for the ``with`` block.

    ``directory`` holds the certificate (needed with ``tls``); ``auth`` demands
    a sign-in, over TLS only, with a user and password made here; ``refuse``
    maps recipient addresses to the reply they get (``"550 5.1.1 ..."``); with
    ``hold`` each message waits at DATA until the test lets it through
    (:meth:`SmtpServer.release`): a relay as slow as the test needs.
    """
    certificate = None
    if tls != "none":
        if directory is None:
            raise ValueError("a TLS server needs a directory for its certificate")
        certificate = self_signed_certificate(directory)
    user = password = None
    if auth:
        user = "mailer@paradarum.test"
        # Characters that must be percent-encoded in the URL, to prove decoding.
        password = secrets.token_urlsafe(18) + "@:/%"
    server = SmtpServer(
        host="127.0.0.1",
        port=free_port(),
        tls=tls,
        ca_file=certificate.cert_file if certificate else None,
        user=user,
        password=password,
    )

    def authenticator(
        _server: SMTP, _session: Session, _envelope: Envelope, _mechanism: str, data: Any
    ) -> AuthResult:
        good = (
            isinstance(data, LoginPassword)
            and data.login == (user or "").encode()
            and secrets.compare_digest(data.password, (password or "").encode())
        )
        # handled=False: aiosmtpd answers a failure with 535 itself.
        return AuthResult(success=good, handled=False, auth_data=data if good else None)

    options: dict[str, Any] = {
        "hostname": server.host,
        "port": server.port,
        # Named here so that aiosmtpd does not look up this machine's name.
        "server_hostname": "smtp.paradarum.test",
        "ready_timeout": 10.0,
    }
    if certificate is not None and tls == "implicit":
        options["ssl_context"] = certificate.server_context()
    elif certificate is not None:
        options["tls_context"] = certificate.server_context()
        options["require_starttls"] = True
    if auth:
        options.update(authenticator=authenticator, auth_required=True, auth_require_tls=True)
    controller = Controller(_Handler(server, refuse or {}, hold), **options)
    controller.start()
    try:
        yield server
    finally:
        controller.stop()


def unused_port() -> int:
    """A loopback port where nothing listens: connecting is refused at once."""
    return free_port()


@contextlib.contextmanager
def silent_server() -> Iterator[int]:
    """A port that accepts connections (the kernel completes them) and then never
    says a word: the relay that hangs."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield int(listener.getsockname()[1])


def queued(runtime: Any, *, kind: str, to: str) -> list[EmailMessage]:
    """The messages of ``kind`` queued for ``to``, built as the outbox would send
    them (no mail server needed; the SMTP tests check the sending itself)."""
    with runtime.db.reading() as conn:
        rows = conn.execute(
            select(notifications)
            .where(notifications.c.recipient == to, notifications.c.kind == kind)
            .order_by(notifications.c.id)
        ).all()
    return [
        runtime.emails.build(
            EmailJob(
                account_id=row.account_id,
                email=to,
                kind=Kind(kind),
                payload=json.loads(row.payload),
            ),
            runtime.clock(),
        )
        for row in rows
    ]


def text_of(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())
