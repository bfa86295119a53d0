"""The router on its own: typed handlers get validated arguments, and what a
signature cannot say is refused when the route is declared."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import orjson
import pytest
from msgspec import Meta

from paradarum.web.request import BODY, Request
from paradarum.web.responses import Reply, Response, raw_json
from paradarum.web.routing import Router, Routes
from paradarum_client.models import Body, Health, PageQuery, Shape


class ThingIn(Body):
    name: Annotated[str, Meta(max_length=10)]
    zone_ids: list[Annotated[int, Meta(ge=1)]] | None = None


class Thing(Shape):
    id: int
    name: str
    zone_ids: list[int] | None


def build_routes() -> Routes:
    routes = Routes(tag="test")

    @routes.post("/things/{id}", permission=None, status=201)
    async def put_thing(request: Request, id: int, body: ThingIn) -> Reply[Thing]:
        return Reply(Thing(id=id, name=body.name, zone_ids=body.zone_ids), "Thing")

    @routes.get("/things", permission=None)
    async def list_things(request: Request, query: PageQuery) -> Reply[list[Thing]]:
        return Reply([Thing(id=query.limit, name=query.cursor or "", zone_ids=None)], "Things")

    @routes.get("/health", permission=None)
    async def health(request: Request) -> Reply[Health]:
        return Reply(Health(status="ok"), "Fine")

    @routes.post("/raw", permission=None, raw_body={"type": "array"})
    async def raw(request: Request, body: bytes) -> Response:
        return raw_json({"length": len(body)})

    return routes


def call(
    router: Router,
    method: str,
    path: str,
    *,
    body: bytes = b"",
    query: bytes = b"",
    read_by_edge: bool = True,
) -> tuple[int, dict[str, str], Any]:
    scope: dict[str, Any] = {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": query,
        "headers": [],
        "client": ("127.0.0.1", 1234),
    }
    if read_by_edge:
        scope[BODY] = body
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if read_by_edge:
            raise AssertionError("the body was read again")
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(router(scope, receive, send))
    start, content = sent
    headers = {name.decode(): value.decode() for name, value in start["headers"]}
    payload = orjson.loads(content["body"]) if content["body"] else None
    return start["status"], headers, payload


@pytest.fixture
def router() -> Router:
    return Router(build_routes().routes, runtime=None, trusted=[])  # type: ignore[arg-type]


def test_a_handler_gets_its_path_id_and_body_validated_and_typed(router):
    status, _, payload = call(router, "POST", "/things/7", body=b'{"name": "a", "zoneIds": [3]}')
    assert status == 201
    assert payload == {
        "succeeded": True,
        "message": "Thing",
        "data": {"id": 7, "name": "a", "zoneIds": [3]},
    }


def test_the_edge_s_body_is_used_and_without_an_edge_the_body_is_read(router):
    status, _, payload = call(
        router, "POST", "/things/1", body=b'{"name": "b"}', read_by_edge=False
    )
    assert status == 201 and payload["data"]["name"] == "b"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"name": 5}', "name"),
        (b'{"name": "far too long a name"}', "name"),
        (b'{"name": "a", "zoneIds": [1, 0]}', "zoneIds.1"),
        (b"{}", "name"),
        (b"[1, 2]", "body"),
        (b"{not json", "body"),
        (b"", "body"),
        (b'{"name": "\\ud800"}', "body"),
    ],
)
def test_a_bad_body_is_a_400_naming_the_field(router, body, field):
    status, _, payload = call(router, "POST", "/things/1", body=body)
    assert status == 400
    assert payload["succeeded"] is False and payload["data"] is None
    assert list(payload["errors"]) == [field], payload


def test_a_missing_field_says_it_is_required(router):
    _, _, payload = call(router, "POST", "/things/1", body=b"{}")
    assert payload["errors"] == {"name": ["This field is required."]}


def test_unknown_fields_are_ignored(router):
    status, _, _ = call(router, "POST", "/things/1", body=b'{"name": "a", "extra": true}')
    assert status == 201


@pytest.mark.parametrize("raw", ["0", "-1", "x", "9223372036854775808", "１"])
def test_a_path_id_that_is_not_a_positive_64_bit_integer_is_a_400(router, raw):
    status, _, payload = call(router, "POST", f"/things/{raw}", body=b'{"name": "a"}')
    assert status == 400 and list(payload["errors"]) == ["id"]


def test_query_values_are_converted_and_checked(router):
    status, _, payload = call(router, "GET", "/things", query=b"limit=20&cursor=abc")
    assert status == 200 and payload["data"] == [{"id": 20, "name": "abc", "zoneIds": None}]
    status, _, payload = call(router, "GET", "/things", query=b"limit=1001")
    assert status == 400 and list(payload["errors"]) == ["limit"]
    status, _, payload = call(router, "GET", "/things", query=b"limit=ten")
    assert status == 400 and list(payload["errors"]) == ["limit"]


def test_a_raw_body_is_handed_over_as_bytes(router):
    status, _, payload = call(router, "POST", "/raw", body=b"[1, 2, 3]")
    assert status == 200 and payload == {"length": 9}


def test_head_is_served_by_get_and_a_wrong_method_is_a_405_with_allow(router):
    status, _, _ = call(router, "HEAD", "/health")
    assert status == 200
    status, headers, _ = call(router, "DELETE", "/things")
    assert status == 405 and headers["allow"] == "GET, HEAD"


def test_an_unknown_path_with_a_trailing_slash_names_the_path_without_it(router):
    status, _, payload = call(router, "GET", "/health/")
    assert status == 404 and "/health" in payload["message"]


def test_the_declaration_takes_what_the_signature_says():
    (put, listed, health, raw) = build_routes().routes
    assert put.body is ThingIn and put.path_params == ("id",) and put.response is Thing
    assert listed.query is PageQuery and listed.paged and listed.response == list[Thing]
    assert health.response is Health and not health.takes_arguments
    assert raw.raw_body_bytes and raw.body is None


def test_a_parameter_the_router_cannot_fill_is_refused_when_declared():
    routes = Routes()
    with pytest.raises(TypeError, match="cannot fill"):

        @routes.get("/things", permission=None)
        async def bad(request: Request, limit: int) -> Reply[None]:
            return Reply(None, "")


def test_a_path_parameter_the_handler_does_not_take_is_refused_when_declared():
    routes = Routes()
    with pytest.raises(TypeError, match="does not take id"):

        @routes.get("/things/{id}", permission=None)
        async def bad(request: Request) -> Reply[None]:
            return Reply(None, "")


def test_a_route_declared_twice_is_refused():
    routes = Routes()

    async def handler(request: Request) -> Reply[None]:
        return Reply(None, "")

    routes.get("/x", permission=None)(handler)
    routes.get("/x", permission=None)(handler)
    with pytest.raises(ValueError, match="declared twice"):
        Router(routes.routes, runtime=None, trusted=[])  # type: ignore[arg-type]


def test_what_the_signature_says_cannot_be_said_in_the_decorator_too():
    routes = Routes()
    with pytest.raises(TypeError, match="signature"):
        routes.post("/things", permission=None, body=ThingIn)
