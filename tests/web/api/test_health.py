"""``web/api/health.py``: liveness and readiness, open to anyone."""

from __future__ import annotations

from paradarum.web.api import health
from tests.web.api import assert_answers_as_declared, call, check_open, envelope

ROUTES = health.routes.routes
BY_NAME = {route.handler.__name__: route for route in ROUTES}


def test_the_module_declares_liveness_and_readiness_without_a_credential():
    assert set(BY_NAME) == {"health", "ready"}
    assert all(route.permission is None and route.method == "GET" for route in ROUTES)


def test_every_route_is_open_and_answers_its_declared_shape(client):
    check_open(client, ROUTES)
    for route in ROUTES:
        response = call(client, route, headers={"Authorization": "Bearer not-a-token"})
        # A credential, even a bad one, is not looked at by an open route.
        assert_answers_as_declared(route, response)


def test_failing_writes_make_readiness_a_503_that_keeps_the_cause_to_itself(client, runtime):
    health_of_writes = runtime.db.write_health
    reason = "OperationalError: disk is full at /secret/path"
    health_of_writes.failed(reason)
    try:
        response = call(client, BY_NAME["ready"])
        assert response.status_code == 503
        assert int(response.headers["retry-after"]) >= 1
        body = envelope(response, False)
        assert "disk" not in response.text and "/secret/path" not in response.text
        assert body["data"] is None
        # Liveness does no I/O: the process is alive all the same.
        assert call(client, BY_NAME["health"]).status_code == 200
    finally:
        health_of_writes.succeeded()
    assert call(client, BY_NAME["ready"]).status_code == 200


def test_head_answers_like_get_without_a_body(client):
    for route in ROUTES:
        response = client.head(route.path)
        assert response.status_code == 200
        assert response.content == b""
