"""The leak service holds the public revocation's rule, limit included."""

from __future__ import annotations

import pytest

from paradarum.errors import RateLimited
from paradarum.services.context import ClientInfo
from tests.support import run


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"public_revocations_per_address": 2, "notifications_enabled": False}


def test_public_reports_are_limited_per_address_by_the_service(runtime):
    finder = ClientInfo(address="203.0.113.9")
    for _ in range(2):
        run(runtime.leaks.report_found(["not a key"], client=finder))
    with pytest.raises(RateLimited) as caught:
        run(runtime.leaks.report_found(["not a key"], client=finder))
    assert caught.value.retry_after >= 1
    # Another address has its own allowance.
    run(runtime.leaks.report_found(["not a key"], client=ClientInfo(address="198.51.100.7")))
