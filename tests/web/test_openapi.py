"""``/openapi.json`` comes from the route declarations and msgspec's JSON Schema of
the very shapes requests are validated against and answers encoded from."""

from __future__ import annotations

import msgspec
import pytest

from paradarum.web import openapi
from paradarum.web.app import create_app
from paradarum_client.models import ApiKey, NewKey, NewKeyIn, PageQuery


@pytest.fixture
def document(runtime):
    return create_app(runtime=runtime).openapi()


def test_every_shape_is_msgspec_s_schema_of_it(document):
    _, expected = msgspec.json.schema_components(
        [NewKeyIn, NewKey, ApiKey], ref_template=openapi.REF
    )
    components = document["components"]["schemas"]
    for name in ("NewKeyIn", "NewKey", "ApiKey", "CreatedBy"):
        assert components[name] == expected[name]


def test_a_body_route_documents_its_body_and_its_answer(document):
    create = document["paths"]["/api/account/apikeys"]["post"]
    body = create["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/NewKeyIn"}
    answer = create["responses"]["201"]["content"]["application/json"]["schema"]
    assert answer["properties"]["data"] == {"$ref": "#/components/schemas/NewKey"}
    assert {"400", "401", "413", "415", "503"} <= set(create["responses"])


def test_a_paged_list_documents_every_query_field_and_the_link_header(document):
    listing = document["paths"]["/api/account/purges"]["get"]
    names = {parameter["name"] for parameter in listing["parameters"]}
    assert names == {field.encode_name for field in msgspec.structs.fields(PageQuery)}
    assert "Link" in listing["responses"]["200"]["headers"]
    data = listing["responses"]["200"]["content"]["application/json"]["schema"]
    assert data["properties"]["data"]["type"] == "array"


def test_every_list_has_the_same_page_limits(document):
    limits = {
        path: next(p["schema"] for p in op["get"]["parameters"] if p["name"] == "limit")
        for path, op in document["paths"].items()
        if "get" in op and any(p["name"] == "limit" for p in op["get"].get("parameters", []))
    }
    assert len(limits) >= 4
    assert all(schema["maximum"] == 1000 and schema["minimum"] == 1 for schema in limits.values())


def test_a_path_id_is_a_positive_64_bit_integer(document):
    (parameter,) = document["paths"]["/api/account/apikeys/{id}"]["delete"]["parameters"]
    assert parameter["in"] == "path" and parameter["required"]
    assert parameter["schema"]["minimum"] == 1 and parameter["schema"]["maximum"] == 2**63 - 1


def test_every_reference_names_a_component(document):
    text = msgspec.json.encode(document).decode()
    components = document["components"]["schemas"]
    prefix = '"$ref":"#/components/schemas/'
    names = {part.split('"', 1)[0] for part in text.split(prefix)[1:]}
    assert names and names <= set(components)


def test_the_panel_s_pages_are_not_documented(document):
    assert "/account" not in document["paths"] and "/openapi.json" not in document["paths"]
