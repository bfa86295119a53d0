"""Security-related settings are checked when the service starts, not when first used."""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError

from paradarum.config import Settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in list(os.environ):
        if name.startswith("PARADARUM_"):
            monkeypatch.delenv(name)


def test_trusted_proxies_accept_addresses_and_networks_from_the_environment(monkeypatch):
    monkeypatch.setenv("PARADARUM_TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.7,2001:db8::/32")
    assert Settings().trusted_proxies == ["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"]


def test_a_trusted_proxy_that_is_not_an_address_is_refused():
    with pytest.raises(ValidationError, match=r"proxy\.example"):
        Settings(trusted_proxies=["proxy.example"])


def test_the_rate_limit_backend_follows_the_database_and_redis_settings():
    assert Settings().resolved_rate_limit_backend == "memory"
    assert Settings(database_url="postgresql://db/x").resolved_rate_limit_backend == "database"
    assert Settings(redis_url="redis://127.0.0.1:6379/0").resolved_rate_limit_backend == "redis"
    assert Settings(rate_limit_backend="database").resolved_rate_limit_backend == "database"
    with pytest.raises(ValidationError, match="REDIS_URL"):
        Settings(rate_limit_backend="redis")


def test_the_redis_url_is_never_printed_with_the_settings():
    settings = Settings(redis_url="redis://:hunter2-password@cache:6379/0")
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings.model_dump())


def test_trusted_proxies_may_also_be_a_json_list(monkeypatch):
    monkeypatch.setenv("PARADARUM_TRUSTED_PROXIES", '["10.0.0.1", "10.0.0.2"]')
    assert Settings().trusted_proxies == ["10.0.0.1", "10.0.0.2"]
