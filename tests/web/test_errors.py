"""Domain errors become HTTP in one place: a status per family, and its headers."""

from __future__ import annotations

import orjson
import pytest

from paradarum import errors
from paradarum.web.errors import UNAUTHORIZED_HEADERS, error_response, status_of


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (errors.ValidationFailed({"name": ["Too long."]}), 400),
        (errors.AlreadyRevoked(), 400),
        (errors.KeyLimitReached(10), 400),
        (errors.NotAuthenticated(), 401),
        (errors.SignupDisabled(), 403),
        (errors.NotYourHosts(["a.example"]), 403),
        (errors.KeyNotFound(), 404),
        (errors.EmailTaken(), 409),
        (errors.RateLimited(3), 429),
        (errors.Unavailable(), 503),
    ],
)
def test_each_family_of_domain_errors_has_its_status(error, status):
    assert status_of(error) == status
    response = error_response(error)
    assert response.status == status
    body = orjson.loads(response.body)
    assert body["succeeded"] is False and body["data"] is None and body["message"]


def test_a_401_says_how_to_authenticate():
    assert error_response(errors.NotAuthenticated()).headers == UNAUTHORIZED_HEADERS


def test_limits_and_outages_say_when_to_try_again():
    assert error_response(errors.RateLimited(0)).headers == {"Retry-After": "1"}
    assert error_response(errors.RateLimited(42)).headers == {"Retry-After": "42"}
    assert "Retry-After" in (error_response(errors.Unavailable()).headers or {})


def test_only_invalid_fields_carry_errors():
    invalid = orjson.loads(error_response(errors.ValidationFailed({"name": ["Bad."]})).body)
    assert invalid["errors"] == {"name": ["Bad."]}
    assert "errors" not in orjson.loads(error_response(errors.KeyNotFound()).body)
