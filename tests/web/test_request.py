"""One request as routes see it: the client's address (worked out once) and the one
credential."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from paradarum.errors import OneCredential
from paradarum.web.request import CLIENT, client_address, credential

PROXIES = [ipaddress.ip_network("10.0.0.0/8")]
KEY = "pdm_" + "A" * 28


def scope(peer: str, forwarded: list[str] | None = None) -> dict[str, Any]:
    headers = [(b"x-forwarded-for", value.encode()) for value in forwarded or []]
    return {"type": "http", "client": (peer, 5000), "headers": headers}


def test_without_trusted_proxies_the_address_is_the_socket_peer():
    assert client_address(scope("203.0.113.9", ["198.51.100.1"]), []) == "203.0.113.9"


def test_a_forged_forwarded_header_from_an_untrusted_peer_changes_nothing():
    assert client_address(scope("203.0.113.9", ["198.51.100.1"]), PROXIES) == "203.0.113.9"


def test_behind_trusted_proxies_the_right_most_untrusted_hop_is_the_client():
    forwarded = ["198.51.100.1, 203.0.113.7", "10.1.1.1"]
    assert client_address(scope("10.0.0.2", forwarded), PROXIES) == "203.0.113.7"


def test_a_hop_that_is_not_an_address_means_the_peer():
    assert client_address(scope("10.0.0.2", ["garbage"]), PROXIES) == "10.0.0.2"


def test_the_address_is_worked_out_once_per_request():
    request = scope("10.0.0.2", ["203.0.113.7"])
    assert client_address(request, PROXIES) == "203.0.113.7"
    assert request[CLIENT] == "203.0.113.7"
    request["headers"] = [(b"x-forwarded-for", b"198.51.100.99")]
    # The route and the access log both ask; the answer is the one worked out first.
    assert client_address(request, PROXIES) == "203.0.113.7"


def test_no_socket_peer_is_no_address():
    assert client_address({"type": "http", "headers": []}, PROXIES) is None


def test_the_credential_comes_from_bearer_or_x_api_key():
    assert credential([f"Bearer {KEY}"], []) == KEY
    assert credential([], [KEY]) == KEY
    assert credential([], []) is None


@pytest.mark.parametrize("authorization", ["Basic abc", "Bearer", "Bearer a b"])
def test_an_unreadable_credential_counts_as_none(authorization):
    assert credential([authorization], []) is None


def test_two_credentials_are_refused_rather_than_one_chosen():
    with pytest.raises(OneCredential):
        credential([f"Bearer {KEY}"], [KEY])
    with pytest.raises(OneCredential):
        credential([f"Bearer {KEY}", "Bearer other"], [])
