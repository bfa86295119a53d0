"""A client built with a URL or a key that cannot work says what is wrong, at once.

No server is needed: these are refused before any request (issue 15)."""

from __future__ import annotations

import importlib

import pytest

from paradarum.keys import generate
from paradarum_client import AsyncClient, Client, ConfigurationError, ParadarumError


def wrong_checksum(key: str) -> str:
    return key[:-1] + ("A" if key[-1] != "A" else "B")


@pytest.mark.parametrize(
    ("spoil", "said"),
    [
        (lambda key: key + "\n", "the key has spaces or a line break around it"),
        (lambda key: " " + key, "the key has spaces or a line break around it"),
        (lambda key: "Bearer " + key, "a Paradarum API key starts with pdm_"),
        (lambda key: key[:-3], "is 32 characters long, this one 29"),
        (lambda key: key[:-1] + "-", "only letters and digits"),
        (wrong_checksum, "checksum does not match"),
    ],
    ids=["newline", "space", "bearer", "short", "dash", "checksum"],
)
def test_an_api_key_that_is_not_a_paradarum_key_is_refused_saying_why(spoil, said):
    key = spoil(generate())
    for make in (Client, AsyncClient):
        with pytest.raises(ConfigurationError) as refused:
            make(api_key=key, base_url="http://127.0.0.1:1")
        assert said in refused.value.message
        assert key.strip() not in str(refused.value)


def test_a_key_from_the_environment_is_refused_naming_the_variable(monkeypatch):
    monkeypatch.setenv("PARADARUM_API_KEY", generate() + "\n")
    with pytest.raises(ConfigurationError, match=r"The API key \(PARADARUM_API_KEY\)"):
        Client(base_url="http://127.0.0.1:1")


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("127.0.0.1:8000", "must start with http:// or https://"),
        ("paradarum.example", "must start with http:// or https://"),
        ("ftp://paradarum.example", "must start with http:// or https://"),
        ("https://", "has no host name"),
        ("https://paradarum.example\n", "spaces or a line break"),
    ],
)
def test_a_base_url_without_http_or_https_is_refused_saying_why(url, said, monkeypatch):
    with pytest.raises(ConfigurationError) as refused:
        Client(api_key=generate(), base_url=url)
    assert said in refused.value.message
    monkeypatch.setenv("PARADARUM_URL", url)
    with pytest.raises(ConfigurationError, match=r"PARADARUM_URL"):
        AsyncClient(api_key=generate())


def test_a_session_token_with_a_line_break_is_refused():
    with pytest.raises(ConfigurationError, match="spaces or a line break"):
        Client(token="eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl\n")


def test_a_configuration_error_is_both_a_value_error_and_a_paradarum_error():
    assert issubclass(ConfigurationError, ValueError)
    assert issubclass(ConfigurationError, ParadarumError)
    with pytest.raises(ValueError, match="not both"):
        Client(api_key=generate(), token="abc")


def test_a_url_with_a_password_is_not_repeated_in_the_message():
    with pytest.raises(ConfigurationError) as refused:
        Client(base_url="ftp://user:secret@paradarum.example")
    assert "secret" not in refused.value.message


def test_the_client_has_one_import_path():
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("paradarum.client")
