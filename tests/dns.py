"""A real DNS server for tests: Debian's dnsmasq, answering from the records a test gives.

dnsmasq runs in the foreground (a child of the test) on a free loopback port, UDP and
TCP, with no upstream, no /etc/hosts, no configuration file and no DHCP: it answers only
from the ``--txt-record`` and ``--host-record`` (A and AAAA) entries, NXDOMAIN for every
other name (or REFUSED, to play a broken server). Records change by restarting it on the
same port; stopping it plays a server that is down.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import pytest

from tests.support import IN_CI

# One TXT record: its name and its value, or the several strings a long value is split into.
Record = tuple[str, str | tuple[str, ...]]


def find_dnsmasq() -> str | None:
    found = shutil.which("dnsmasq")
    if found:
        return found
    return "/usr/sbin/dnsmasq" if os.access("/usr/sbin/dnsmasq", os.X_OK) else None


def require_dnsmasq() -> str:
    path = find_dnsmasq()
    if path is None:
        reason = "dnsmasq is not installed (apt-get install -y dnsmasq-base)"
        if IN_CI:
            pytest.fail(f"{reason}; it is required when CI=true")
        pytest.skip(reason)
    return path


def free_udp_and_tcp_port() -> int:
    """A loopback port free for both UDP and TCP at the time of asking."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            with socket.socket() as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free UDP and TCP port on 127.0.0.1")


def _txt_option(name: str, value: str | tuple[str, ...]) -> str:
    strings = (value,) if isinstance(value, str) else value
    for string in strings:
        # dnsmasq splits its argument on commas and keeps quotes literally.
        assert string and "," not in string and '"' not in string, string
        assert len(string.encode()) <= 255, "one TXT string holds at most 255 bytes"
    return f"--txt-record={name}," + ",".join(strings)


@dataclass
class DnsServer:
    workdir: Path
    port: int
    records: list[Record]
    nxdomain_for_unknown: bool = True
    # Names and the addresses they resolve to (A for IPv4, AAAA for IPv6).
    hosts: list[tuple[str, str]] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def address(self) -> tuple[str, int]:
        """What ``txt_values(nameserver=...)`` takes."""
        return ("127.0.0.1", self.port)

    @property
    def setting(self) -> str:
        """What ``PARADARUM_DNS_RESOLVER`` takes."""
        return f"127.0.0.1:{self.port}"

    def output(self) -> str:
        return (self.workdir / "dnsmasq.log").read_text(errors="replace")

    def start(self) -> None:
        dnsmasq = require_dnsmasq()
        self.workdir.mkdir(parents=True, exist_ok=True)
        command = [
            dnsmasq,
            "--conf-file=/dev/null",  # not Debian's /etc/dnsmasq.conf and its includes
            "--no-daemon",  # foreground, log to stderr
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
            "--listen-address=127.0.0.1",
            f"--port={self.port}",
            f"--pid-file={self.workdir / 'dnsmasq.pid'}",
            f"--dhcp-leasefile={self.workdir / 'dnsmasq.leases'}",
            # Stay the test's user (as root it would switch to one that cannot read the
            # test's private directory).
            f"--user={pwd.getpwuid(os.geteuid()).pw_name}",
            "--cache-size=0",  # every answer from the records as they are now
            "--log-queries",
        ]
        if self.nxdomain_for_unknown:
            command.append("--local=/#/")  # authoritative for everything: NXDOMAIN
        command += [_txt_option(name, value) for name, value in self.records]
        command += [f"--host-record={name},{address}" for name, address in self.hosts]
        with (self.workdir / "dnsmasq.log").open("ab") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + 20
        query = dns.message.make_query("ready.paradarum.test.", "TXT")
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"dnsmasq exited early:\n{self.output()}")
            try:
                dns.query.udp(query, "127.0.0.1", port=self.port, timeout=0.2)
                return
            except (dns.exception.DNSException, OSError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"dnsmasq did not start:\n{self.output()}")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop answering: the port is closed, as when a DNS server is down."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def set_hosts(self, hosts: Sequence[tuple[str, str]]) -> None:
        """Resolve names to these addresses from now on (dnsmasq restarts)."""
        self.stop()
        self.hosts = list(hosts)
        self.start()

    def set_records(self, records: Sequence[Record]) -> None:
        """Serve ``records`` from now on (dnsmasq restarts on the same port)."""
        self.stop()
        self.records = list(records)
        self.start()


@contextlib.contextmanager
def running_dns(
    workdir: Path,
    records: Sequence[Record] = (),
    *,
    nxdomain_for_unknown: bool = True,
    hosts: Sequence[tuple[str, str]] = (),
) -> Iterator[DnsServer]:
    """dnsmasq serving ``records`` on a free loopback port, stopped afterwards.

    ``nxdomain_for_unknown=False`` makes it answer REFUSED for names it has no record
    for, as a misconfigured or failing server does."""
    server = DnsServer(
        workdir,
        free_udp_and_tcp_port(),
        list(records),
        nxdomain_for_unknown=nxdomain_for_unknown,
        hosts=list(hosts),
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()
