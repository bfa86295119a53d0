"""A real ``paradarum serve`` process (SQLite) with a recording cache node, per module."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cache import RecordingNode, recording_node
from tests.dns import DnsServer, running_dns
from tests.support import ServerProcess, start_server


@dataclass
class ApiServer:
    server: ServerProcess
    node: RecordingNode
    # The server's SQLite data: operator commands (``zones add ... --verified``) work on it.
    data_dir: Path

    @property
    def url(self) -> str:
        return self.server.base_url

    def stop(self) -> None:
        self.server.stop()


def serve(tmp: object, node: RecordingNode, *, port: int | None = None, **env: str) -> ApiServer:
    directory = tmp.mktemp("server")  # type: ignore[attr-defined]
    data_dir = directory / "data"
    server = start_server(
        {
            "PARADARUM_DATA_DIR": str(data_dir),
            "PARADARUM_CACHE_NODES": node.base_url,
            "PARADARUM_ACCESS_LOG": "false",
            "PARADARUM_KEY_LIMIT": "3",
            # Few enough that a test reaches the limit, and gets a 429, quickly: from
            # one address for one email (the per-email guard only slows new addresses).
            "PARADARUM_LOGIN_FAILURES_PER_EMAIL_AND_ADDRESS": "3",
            "PARADARUM_LOGIN_FAILURES_PER_EMAIL": "3",
            **env,
        },
        log_path=directory / "server.log",
        port=port,
    )
    return ApiServer(server, node, data_dir)


@pytest.fixture(scope="module")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    with recording_node() as node:
        server = serve(tmp_path_factory, node)
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """One purge per account every 2 seconds."""
    with recording_node() as node:
        server = serve(
            tmp_path_factory,
            node,
            PARADARUM_PURGES_PER_ACCOUNT="1",
            PARADARUM_PURGE_WINDOW_SECONDS="2",
        )
        try:
            yield server
        finally:
            server.stop()


# Windows are aligned to the epoch: one of 10**10 seconds began in 1970 and ends in 2286.
NEVER_LIFTS = str(10**10)


@pytest.fixture(scope="module")
def limited_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """One purge per account in a window that cannot end during a test: a second
    purge is ``429`` every time it is tried, however long the test takes."""
    with recording_node() as node:
        server = serve(
            tmp_path_factory,
            node,
            PARADARUM_PURGES_PER_ACCOUNT="1",
            PARADARUM_PURGE_WINDOW_SECONDS=NEVER_LIFTS,
        )
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="module")
def nodeless_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """No cache node configured: every purge is done at once, and reaches no cache."""
    with recording_node() as node:
        server = serve(tmp_path_factory, node, PARADARUM_CACHE_NODES="")
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="module")
def stalled_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """Purges are queued and never delivered: they stay unfinished."""
    with recording_node() as node:
        server = serve(tmp_path_factory, node, PARADARUM_PURGE_DELIVERY_ENABLED="false")
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="module")
def dns_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DnsServer]:
    """A real DNS server (dnsmasq) with no records until a test gives it some."""
    with running_dns(tmp_path_factory.mktemp("dns")) as server:
        yield server


@pytest.fixture(scope="module")
def zone_server(
    tmp_path_factory: pytest.TempPathFactory, dns_server: DnsServer
) -> Iterator[ApiServer]:
    """Verifies zones against ``dns_server``."""
    with recording_node() as node:
        server = serve(
            tmp_path_factory,
            node,
            PARADARUM_DNS_RESOLVER=dns_server.setting,
            PARADARUM_DNS_TIMEOUT_SECONDS="3",
        )
        try:
            yield server
        finally:
            server.stop()
