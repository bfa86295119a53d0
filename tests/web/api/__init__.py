"""Mirror tests of the route modules (``src/paradarum/web/api/<m>.py`` →
``test_<m>.py``): each takes its module's own list of routes and checks what the
declarations say (the credential, the permission, the body, the query, the path's
ids, the answer's shape) against what the real app does. The checks every module
shares are here; each test module adds its module's own edge cases."""

from __future__ import annotations

import re
import types
import typing
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec
import msgspec.inspect as mi

from paradarum.services.auth import PURGE_ONLY
from paradarum.services.context import Permission
from paradarum.web import errors as web_errors
from paradarum.web.routing import Route
from paradarum_client.models import MAX_ID, PageQuery
from tests.support import bearer, create_key, login, new_account

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
DAY = re.compile(r"^\d{4}-\d\d-\d\d$")
_PARAM = re.compile(r"\{([a-z_]+)\}")


def name(route: Route) -> str:
    return f"{route.method} {route.path}"


def path_of(
    route: Route, ids: Mapping[str, int | str] | None = None, default: int | str = 1
) -> str:
    """The route's path with each ``{param}`` filled in (``default`` unless ``ids`` says)."""
    ids = ids or {}
    return _PARAM.sub(lambda found: str(ids.get(found.group(1), default)), route.path)


def call(
    client: Any,
    route: Route,
    *,
    credential: str | None = None,
    ids: Mapping[str, int | str] | None = None,
    default_id: int | str = 1,
    json: Any = None,
    content: bytes | None = None,
    query: str = "",
    headers: Mapping[str, str] | None = None,
) -> Any:
    sent = dict(headers or {})
    if credential is not None:
        sent.update(bearer(credential))
    kwargs: dict[str, Any] = {}
    if content is not None:
        kwargs["content"] = content
        sent.setdefault("Content-Type", "application/json")
    elif json is not None:
        kwargs["json"] = json
    url = path_of(route, ids, default_id) + (f"?{query}" if query else "")
    return client.request(route.method, url, headers=sent, **kwargs)


def envelope(response: Any, succeeded: bool) -> dict[str, Any]:
    body = response.json()
    assert set(body) >= {"succeeded", "message", "data"}, body
    assert body["succeeded"] is succeeded, body
    assert isinstance(body["message"], str) and body["message"], body
    return body


# -- shapes ----------------------------------------------------------------------------


def assert_shape(value: Any, annotation: Any) -> None:
    """``value`` (decoded JSON) is exactly what ``annotation`` (a shape of
    ``paradarum_client.models``, a list of them, ``None``...) puts on the wire: every
    field of a shape present under its camelCase name and none other, timestamps in
    UTC with milliseconds and a ``Z``, and msgspec's own validation on top."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        # A union of untagged shapes (a session, or a sign-in's challenge): one of them.
        problems = []
        for option in typing.get_args(annotation):
            try:
                assert_shape(value, option)
                return
            except (AssertionError, msgspec.ValidationError) as exc:
                problems.append(str(exc))
        raise AssertionError(f"data matches none of {annotation}: {problems}")
    _check(value, mi.type_info(annotation), "data")
    msgspec.convert(value, annotation, strict=False)  # literals, bounds, types


def _check(value: Any, info: mi.Type, where: str) -> None:
    if isinstance(info, mi.Metadata):
        _check(value, info.type, where)
    elif isinstance(info, mi.UnionType):
        if value is None and info.includes_none:
            return
        problems = []
        for option in info.types:
            if isinstance(option, mi.NoneType):
                continue
            try:
                _check(value, option, where)
                return
            except AssertionError as exc:
                problems.append(str(exc))
        raise AssertionError(f"{where}: matches none of the union: {problems}")
    elif isinstance(info, mi.StructType):
        assert isinstance(value, dict), f"{where}: {value!r} is not an object"
        expected = {field.encode_name for field in info.fields}
        assert set(value) == expected, (
            f"{where}: fields {sorted(value)} are not {sorted(expected)} ({info.cls.__name__})"
        )
        for field in info.fields:
            _check(value[field.encode_name], field.type, f"{where}.{field.encode_name}")
    elif isinstance(info, mi.ListType):
        assert isinstance(value, list), f"{where}: {value!r} is not an array"
        for index, item in enumerate(value):
            _check(item, info.item_type, f"{where}[{index}]")
    elif isinstance(info, mi.DateTimeType):
        assert isinstance(value, str) and TIMESTAMP.match(value), f"{where}: {value!r}"
    elif isinstance(info, mi.DateType):
        assert isinstance(value, str) and DAY.match(value), f"{where}: {value!r}"
    elif isinstance(info, mi.NoneType):
        assert value is None, f"{where}: {value!r} is not null"


def assert_answers_as_declared(route: Route, response: Any) -> dict[str, Any]:
    """A success: the route's declared status (or 200 where a handler picks it) and
    ``data`` shaped as its ``-> Reply[...]`` says."""
    assert response.status_code in (route.status, 200), (name(route), response.text)
    body = envelope(response, True)
    assert_shape(body["data"], route.response)
    return body


# -- what every module's routes are checked for -----------------------------------------


def with_credential(routes: Iterable[Route]) -> list[Route]:
    return [route for route in routes if route.permission is not None]


def check_credential_required(client: Any, routes: Iterable[Route]) -> None:
    """A route that declares a permission refuses a request without a credential,
    and one with a made-up key, with the same 401 before reading anything else."""
    for route in with_credential(routes):
        for headers in ({}, {"X-API-Key": "pdm_" + "A" * 28}):
            response = call(client, route, headers=headers, content=b"{", default_id=0)
            assert response.status_code == 401, (name(route), headers, response.text)
            assert response.headers["www-authenticate"].startswith("Bearer"), name(route)
            assert envelope(response, False)["data"] is None


def check_open(client: Any, routes: Iterable[Route]) -> None:
    """A route without a permission is reached with no credential: what it answers
    is about its input (an empty body: 400), never a 401 unless the route declares
    one of its own (a signature, a token in the body)."""
    for route in routes:
        if route.permission is not None:
            continue
        response = call(client, route, content=b"" if route.body else None)
        if route.body is not None:
            assert response.status_code == 400, (name(route), response.text)
        elif 401 not in route.errors:
            assert response.status_code != 401, (name(route), response.text)
        assert response.status_code < 500, (name(route), response.text)


def check_purge_key(client: Any, routes: Iterable[Route], purge_key: str) -> None:
    """A purge-only key reaches the routes that declare ``Permission.PURGE`` (what
    happens next is about the request) and gets the 403 naming its permission on every
    other route that takes a credential."""
    for route in with_credential(routes):
        response = call(client, route, credential=purge_key, content=b"" if route.body else None)
        if route.permission is Permission.PURGE:
            assert response.status_code not in (401, 403), (name(route), response.text)
            assert response.status_code < 500, (name(route), response.text)
        else:
            assert response.status_code == 403, (name(route), response.text)
            assert envelope(response, False)["message"] == PURGE_ONLY


def check_bodies_refused(client: Any, routes: Iterable[Route], credential: str | None) -> None:
    """Every route that takes a JSON body answers the documented 400 to no body,
    to text that is not JSON, to JSON that is not an object, and to an object
    without its required fields: never a 500, and before anything is done."""
    for route in routes:
        if route.body is None:
            continue
        required = [
            field.encode_name for field in msgspec.structs.fields(route.body) if field.required
        ]
        cases: list[tuple[bytes, str, str]] = [
            (b"", "body", web_errors.BODY_REQUIRED),
            (b"{", "body", web_errors.MALFORMED_JSON),
            (b"[1, 2]", "body", web_errors.INVALID_FIELDS),
        ]
        if required:
            cases.append((b"{}", required[0], web_errors.INVALID_FIELDS))
        for content, field, message in cases:
            response = call(client, route, credential=credential, content=content)
            assert response.status_code == 400, (name(route), content, response.text)
            body = envelope(response, False)
            assert body["message"] == message, (name(route), content, body)
            assert field in body["errors"], (name(route), content, body)


def check_ids_refused(client: Any, routes: Iterable[Route], credential: str) -> None:
    """Every ``{id}`` in a route's path is a positive 64-bit integer: anything else
    is a 400 naming the parameter, whatever the body."""
    for route in routes:
        for param in route.path_params:
            for raw in ("0", "-1", "abc", str(MAX_ID + 1), "1.5"):
                response = call(client, route, credential=credential, ids={param: raw})
                assert response.status_code == 400, (name(route), raw, response.text)
                assert param in envelope(response, False)["errors"], (name(route), raw)


def check_unknown_ids(
    client: Any, routes: Iterable[Route], credential: str, bodies: Mapping[str, Any]
) -> None:
    """A route that declares a 404 answers it for an id this account does not have
    (with a valid body, so that it is the id that is refused)."""
    for route in routes:
        if 404 not in route.errors or not route.path_params:
            continue
        response = call(
            client,
            route,
            credential=credential,
            default_id=MAX_ID,
            json=bodies.get(route.handler.__name__),
        )
        assert response.status_code == 404, (name(route), response.text)
        assert envelope(response, False)["data"] is None


def check_pages_refused(
    client: Any, routes: Iterable[Route], credential: str, ids: Mapping[str, int] | None = None
) -> None:
    """A paged list (``query: PageQuery``) refuses a limit outside 1..1000, or one
    that is not a number, and a cursor it did not give, with a 400 naming the field
    (``ids``: of something that exists, for a list under it)."""
    for route in routes:
        if route.query is None or not issubclass(route.query, PageQuery):
            continue
        for query, field in (
            ("limit=0", "limit"),
            ("limit=1001", "limit"),
            ("limit=ten", "limit"),
            ("cursor=not-a-cursor", "cursor"),
        ):
            response = call(client, route, credential=credential, query=query, ids=ids)
            assert response.status_code == 400, (name(route), query, response.text)
            assert field in envelope(response, False)["errors"], (name(route), query)


def session_only(routes: Iterable[Route]) -> list[Route]:
    """The routes whose summary says they take a panel session only."""
    return [route for route in routes if "session only)" in route.summary]


def check_body_table(routes: Iterable[Route], bodies: Mapping[str, Any]) -> None:
    """The test module has a valid body for every route of its module that takes one
    (a route added later gets its checks too), and each one decodes as the route's."""
    for route in routes:
        if route.body is None:
            continue
        assert route.handler.__name__ in bodies, f"no valid body for {name(route)}"
        msgspec.json.decode(msgspec.json.encode(bodies[route.handler.__name__]), type=route.body)


class Owner:
    """A fresh account's owner: a session signed in just now (step-up is met), a key
    with full access and a purge-only key, all made through the API."""

    def __init__(self, client: Any, email: str | None = None) -> None:
        self.email = email or f"owner-{uuid.uuid4().hex[:10]}@example.com"
        self.session = new_account(client, self.email)
        self.key = create_key(client, self.session, "full")["key"]
        made = client.post(
            "/api/account/apikeys",
            json={"name": "purge", "permissions": "purge"},
            headers=bearer(self.session),
        )
        assert made.status_code == 201, made.text
        self.purge_key = made.json()["data"]["key"]


def check_session_only(
    client: Any, routes: Iterable[Route], key: str, bodies: Mapping[str, Any], ids: Any = None
) -> None:
    """A route whose summary says "session only" refuses a key with full access with
    a 403 (given a valid body, so that it is the credential that is refused)."""
    checked = session_only(routes)
    assert checked, "no route says it is session only"
    for route in checked:
        response = call(
            client, route, credential=key, json=bodies.get(route.handler.__name__), ids=ids
        )
        assert response.status_code == 403, (name(route), response.text)
        assert envelope(response, False)["data"] is None


def require_a_second_factor(runtime: Any, account_id: int) -> None:
    """The account requires a second factor of every member (as ``PATCH /api/account``
    sets it once the owner has one): its members without one must enrol."""
    from sqlalchemy import update

    from paradarum.db.tables import accounts

    with runtime.db.writing() as conn:
        conn.execute(
            update(accounts).where(accounts.c.id == account_id).values(require_two_factor=True)
        )


def check_enrolment(client: Any, runtime: Any, routes: Iterable[Route], owner: Owner) -> None:
    """Where the account requires a second factor and the person has none, a session
    reaches exactly the routes declared ``enrolment=True``; every other route that
    takes a credential answers 403 ``twoFactorEnrolmentRequired``. Each route gets a
    session of its own (one of them may be signing out)."""
    account_id = client.get("/api/account", headers=bearer(owner.session)).json()["data"]["id"]
    require_a_second_factor(runtime, account_id)
    for route in with_credential(routes):
        session = login(client, owner.email)
        response = call(client, route, credential=session, content=b"" if route.body else None)
        assert response.status_code < 500, (name(route), response.text)
        refused = response.status_code == 403 and response.json()["data"] == {
            "twoFactorEnrolmentRequired": True
        }
        assert refused is not route.enrolment, (name(route), response.text)


def check_roles(
    client: Any,
    runtime: Any,
    routes: Iterable[Route],
    owner: Owner,
    least: Mapping[str, str],
    bodies: Mapping[str, Any],
) -> None:
    """Each route against a member of every role (a session of their own, joined by
    invitation): below the least role the route needs (``least``, by handler name,
    as the module's test says it) a 403 naming that role; from it up, no 403. Ids
    are of nothing (404 past the role check), so nothing is changed by them."""
    from paradarum.services.roles import ORDER, Role
    from tests.web.test_teams import join

    checked = [route for route in with_credential(routes)]
    assert {route.handler.__name__ for route in checked} == set(least), "a route without a role"
    sessions = {
        role: join(client, runtime, owner.session, str(role))["session"]
        for role in ORDER
        if role is not Role.OWNER
    }
    sessions[Role.OWNER] = owner.session
    for route in checked:
        needed = Role(least[route.handler.__name__])
        for role, session in sessions.items():
            response = call(
                client,
                route,
                credential=session,
                default_id=MAX_ID,
                json=bodies.get(route.handler.__name__),
            )
            assert response.status_code < 500, (name(route), role, response.text)
            if ORDER.index(role) < ORDER.index(needed):
                assert response.status_code == 403, (name(route), role, response.text)
                assert f"needs the {needed} role" in envelope(response, False)["message"]
            else:
                assert response.status_code != 403, (name(route), role, response.text)
