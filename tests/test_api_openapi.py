"""The OpenAPI document (valid, complete, from the handlers' own models), the docs page, and
schemathesis run against the live server: no server error, no response outside the schema."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from aiohttp.test_utils import TestClient
from conftest import ADMIN_TOKEN, fresh_database_url, serve_in_thread
from schemathesis.specs.openapi.checks import positive_data_acceptance

from api.app import OPENAPI, create_app, operations
from api.schemas import RoomCreate, RoomUpdate
from config import Settings

Client = TestClient[Any, Any]

CONTRACT_ROUTES = {
    ("post", "/api/rooms"),
    ("get", "/api/rooms"),
    ("get", "/api/rooms/{id}"),
    ("patch", "/api/rooms/{id}"),
    ("delete", "/api/rooms/{id}"),
    ("get", "/api/rooms/{id}/participants"),
    ("post", "/api/rooms/{id}/participants/{pid}/mute"),
    ("post", "/api/rooms/{id}/participants/{pid}/admit"),
    ("delete", "/api/rooms/{id}/participants/{pid}"),
    ("get", "/api/health"),
    ("get", "/api/openapi.json"),
}


async def fetch_doc(client: Client) -> dict[str, Any]:
    response = await client.get("/api/openapi.json")
    assert response.status == 200
    doc: dict[str, Any] = await response.json()
    return doc


async def test_document_is_valid_openapi(client: Client) -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    doc = await fetch_doc(client)
    validator.validate(doc)
    assert doc["openapi"].startswith("3.")


async def test_document_lists_every_route(client: Client) -> None:
    doc = await fetch_doc(client)
    documented = {(m, p) for p, methods in doc["paths"].items() for m in methods}
    assert CONTRACT_ROUTES <= documented
    served = {
        (route.method.lower(), route.resource.canonical)
        for route in client.app.router.routes()
        if route.method != "HEAD" and route.resource is not None
    }
    assert documented == served


async def test_document_describes_auth_bodies_and_errors(client: Client) -> None:
    doc = await fetch_doc(client)
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
    }
    assert doc["security"] == [{"bearerAuth": []}]
    paths = doc["paths"]
    assert paths["/api/health"]["get"]["security"] == []
    assert paths["/api/openapi.json"]["get"]["security"] == []
    create = paths["/api/rooms"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/RoomCreate"
    }
    assert set(create["responses"]) == {"201", "400", "401", "403", "422"}
    assert set(paths["/api/rooms/{id}"]["delete"]["responses"]) == {"204", "401", "403", "404"}
    refuse = paths["/api/rooms/{id}/participants/{pid}/refuse"]["post"]
    assert set(refuse["responses"]) == {"204", "401", "403", "404", "409"}
    assert "organiser link token" in refuse["description"]
    error = paths["/api/rooms/{id}"]["get"]["responses"]["404"]["content"]["application/json"]
    assert error["schema"] == {"$ref": "#/components/schemas/ErrorResponse"}
    params = paths["/api/rooms/{id}/participants/{pid}/mute"]["post"]["parameters"]
    assert [(p["name"], p["in"], p["required"]) for p in params] == [
        ("id", "path", True),
        ("pid", "path", True),
    ]
    schemas = doc["components"]["schemas"]
    assert {
        "RoomCreate",
        "RoomUpdate",
        "RoomOut",
        "ParticipantOut",
        "MuteRequest",
        "ErrorResponse",
    } <= set(schemas)


async def test_document_is_generated_from_the_handler_models(client: Client) -> None:
    doc = await fetch_doc(client)
    schemas = doc["components"]["schemas"]
    create = RoomCreate.model_json_schema(ref_template="#/components/schemas/{model}")
    assert schemas["RoomCreate"]["properties"] == create["properties"]
    assert schemas["RoomCreate"]["required"] == ["name"]
    assert schemas["RoomCreate"]["additionalProperties"] is False
    update = RoomUpdate.model_json_schema(ref_template="#/components/schemas/{model}")
    assert schemas["RoomUpdate"]["properties"] == update["properties"]
    assert "required" not in schemas["RoomUpdate"]
    assert "default" not in schemas["RoomUpdate"]["properties"]["name"]
    pin = schemas["RoomCreate"]["properties"]["pin"]
    assert {"type": "string", "pattern": "^[0-9]{4,10}$", "description": "4 to 10 digits"} in pin[
        "anyOf"
    ]
    ops = operations()
    assert len({op.operation_id for op in ops}) == len(ops)


async def test_docs_page_is_self_contained(client: Client) -> None:
    response = await client.get("/api/docs")
    assert response.status == 200 and response.content_type == "text/html"
    page = await response.text()
    for _method, path in CONTRACT_ROUTES:
        assert path in page
    assert "RoomCreate" in page and "ErrorResponse" in page
    assert "http://" not in page.replace('href="/api/openapi.json"', "")
    assert "<script" not in page


# -- schemathesis ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = fresh_database_url(Path(tmp_path_factory.mktemp("schemathesis")))
    settings = Settings(
        database_url=url,
        admin_token=ADMIN_TOKEN,
        dialin_numbers=("+33186950000",),
        sip_domain="gw.example.org",
    )
    with serve_in_thread(create_app(settings)) as base_url:
        yield base_url


# Built from the same document the app serves (checked just below), so the test cases exist at
# collection time; requests go to the live server's URL.
SERVED_DOC: dict[str, Any] = create_app(Settings())[OPENAPI]
schema = schemathesis.openapi.from_dict(
    SERVED_DOC,
    config=schemathesis.Config.from_dict(
        {"generation": {"max-examples": 60, "deterministic": True}}
    ),
)


async def test_schemathesis_tests_the_served_document(client: Client) -> None:
    assert await fetch_doc(client) == SERVED_DOC


#: Rules across fields that JSON Schema cannot say (host_pin != pin, ends_at > starts_at, ...):
#: schema-valid data may break them, and is then refused with 422 and one of these codes.
CROSS_FIELD_RULES = {
    "host_pin_equals_pin",
    "starts_at_required",
    "ends_before_start",
    "schedule_on_permanent_room",
    "datetime_out_of_range",
    "invalid_cursor",  # a paging cursor must be one the API handed out
}


def positive_data_accepted(
    ctx: Any, response: schemathesis.Response, case: schemathesis.Case
) -> bool | None:
    """schemathesis' positive-data check, except for refusals under a cross-field rule."""
    if response.status_code == 422:
        code = response.json()["error"]["code"]
        if code in CROSS_FIELD_RULES:
            return None
    if response.status_code == 400 and response.json()["error"]["code"] == "websocket_required":
        return None  # a WebSocket route: OpenAPI cannot describe the upgrade schemathesis lacks
    return positive_data_acceptance(ctx, response, case)


@pytest.mark.db
@schema.parametrize()
def test_api_conforms_to_its_schema(case: schemathesis.Case, server_url: str) -> None:
    case.call_and_validate(
        base_url=server_url,
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        excluded_checks=[positive_data_acceptance],
        additional_checks=[positive_data_accepted],
    )
