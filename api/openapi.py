"""The OpenAPI 3.1 document and the human docs page, generated from the route table.

Each :class:`Operation` names its handler and the pydantic models it reads and writes;
:func:`api.app.create_app` registers the handlers from the same table, so the document lists
exactly the routes served, with the models the handlers validate with.
"""

from __future__ import annotations

import html
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from api.schemas import ErrorResponse

__all__ = ["Body", "Operation", "build_openapi", "docs_html"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REF = "#/components/schemas/{model}"

_ERROR_TEXT = {
    400: "Malformed JSON, or not a JSON object (or not a WebSocket upgrade)",
    401: "Missing or wrong bearer token",
    403: "A join link's token on a route or room it may not act on",
    404: "No such room, participant or route",
    409: "Conflict",
    422: "Validation failed (types, ranges, PINs, dates)",
    503: "Not available in this process now",
}


@dataclass(frozen=True)
class Body:
    """A response body: a model, a JSON array of a model, or an HTML page."""

    model: type[BaseModel] | None = None
    array: bool = False
    html: bool = False
    description: str = ""
    #: Another media type than JSON or HTML (e.g. ``text/plain``): a string body.
    media_type: str | None = None
    #: Media types the same route may answer as well (e.g. ``text/csv``): string bodies.
    also: tuple[str, ...] = ()


@dataclass(frozen=True)
class Operation:
    method: Literal["GET", "POST", "PATCH", "DELETE"]
    path: str
    handler: Handler
    operation_id: str
    summary: str
    tag: str = "rooms"
    auth: bool = True
    #: Also open to the organiser link token of the room in the path (else: admin only).
    organiser: bool = False
    request: type[BaseModel] | None = None
    responses: dict[int, Body | None] = field(default_factory=dict)
    errors: tuple[int, ...] = ()
    query: tuple[tuple[str, bool, str], ...] = ()  # (name, required, description)
    #: JSON Schemas of query parameters that are not any string (by name).
    query_schemas: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Wraps the handler instead of the admin (or organiser) check, e.g. to let another
    #: token in as well; the route is still documented as needing a bearer token.
    guard: Callable[[Handler], Handler] | None = None


def _path_params(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{") and part.endswith("}")]


def _schemas(
    operations: Sequence[Operation],
) -> tuple[dict[str, Any], dict[tuple[type[BaseModel], JsonSchemaMode], Any]]:
    wanted: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {
        (ErrorResponse, "serialization"): None
    }
    for op in operations:
        if op.request is not None:
            wanted[(op.request, "validation")] = None
        for body in op.responses.values():
            if body is not None and body.model is not None:
                wanted[(body.model, "serialization")] = None
    refs, defs = models_json_schema(list(wanted), ref_template=REF)
    components: dict[str, Any] = defs.get("$defs", {})
    return components, dict(refs)  # type: ignore[arg-type]


def build_openapi(operations: Sequence[Operation], *, title: str, version: str) -> dict[str, Any]:
    components, refs = _schemas(operations)
    error_ref = refs[(ErrorResponse, "serialization")]
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        entry: dict[str, Any] = {
            "operationId": op.operation_id,
            "summary": op.summary,
            "tags": [op.tag],
        }
        params: list[dict[str, Any]] = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in _path_params(op.path)
        ]
        params += [
            {
                "name": name,
                "in": "query",
                "required": required,
                "description": text,
                "schema": op.query_schemas.get(name, {"type": "string"}),
            }
            for name, required, text in op.query
        ]
        if params:
            entry["parameters"] = params
        if op.request is not None:
            entry["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": refs[(op.request, "validation")]}},
            }
        responses: dict[str, Any] = {}
        for status, body in op.responses.items():
            response: dict[str, Any] = {
                "description": (body.description if body else "") or "Success"
            }
            if body is not None and body.html:
                response["content"] = {"text/html": {"schema": {"type": "string"}}}
            elif body is not None and body.media_type is not None:
                response["content"] = {body.media_type: {"schema": {"type": "string"}}}
            elif body is not None and body.model is not None:
                schema = refs[(body.model, "serialization")]
                if body.array:
                    schema = {"type": "array", "items": schema}
                response["content"] = {"application/json": {"schema": schema}}
            else:
                response["description"] = (body.description if body else "") or "No content"
            if body is not None and body.also:
                content = response.setdefault("content", {})
                content.update({media: {"schema": {"type": "string"}} for media in body.also})
            responses[str(status)] = response
        errors = set(op.errors)
        if op.auth:
            errors.update((401, 403))  # 403: a join link's token where it may not act
        if op.organiser:
            entry["description"] = (
                entry.get("description", "") + " Open to the admin token and to the organiser"
                " link token of this room (another room's link token: 403)."
            ).strip()
        if op.request is not None:
            errors.update((400, 422))
        for status in sorted(errors):
            responses[str(status)] = {
                "description": _ERROR_TEXT[status],
                "content": {"application/json": {"schema": error_ref}},
            }
            if status == 401:
                responses[str(status)]["headers"] = {
                    "WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer"}
                }
        entry["responses"] = responses
        if not op.auth:
            entry["security"] = []
        paths.setdefault(op.path, {})[op.method.lower()] = entry
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": "Rooms, numbers, PINs, join links and live participants of the "
            'conference gateway. Errors: {"error": {"code", "message"}}.',
        },
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": []}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
    }


_CSS = """
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
code,pre{font-family:ui-monospace,monospace;font-size:.9rem}
pre{background:#f5f5f5;padding:.75rem;overflow-x:auto}
.op{border:1px solid #ddd;border-radius:6px;padding:.5rem 1rem;margin:1rem 0}
.method{font-weight:bold;display:inline-block;min-width:4.5rem}
table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:.25rem .5rem;text-align:left}
"""


def _ref_name(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    if schema.get("type") == "array" and "items" in schema:
        return f"array of {_ref_name(schema['items'])}"
    return str(schema.get("type", "object"))


def _anchor(name: str) -> str:
    return (
        f'<a href="#schema-{html.escape(name)}">{html.escape(name)}</a>'
        if name[:1].isupper()
        else html.escape(name)
    )


def docs_html(doc: dict[str, Any]) -> str:
    """A self-contained page (no scripts, no CDN) listing every route and schema of ``doc``."""
    e = html.escape
    out = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f"<title>{e(doc['info']['title'])} API</title><style>{_CSS}</style></head><body>",
        f"<h1>{e(doc['info']['title'])} API <small>{e(doc['info']['version'])}</small></h1>",
        f"<p>{e(doc['info'].get('description', ''))}</p>",
        "<p>Authentication: <code>Authorization: Bearer TOKEN</code> on every route marked 🔒. "
        'Machine-readable document: <a href="/api/openapi.json">/api/openapi.json</a>.</p>',
        "<h2>Routes</h2>",
    ]
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            locked = " 🔒" if op.get("security") != [] else ""
            out.append(
                f'<div class=op id="{e(op["operationId"])}"><p><span class=method>'
                f"{e(method.upper())}</span> <code>{e(path)}</code>{locked} — {e(op['summary'])}</p>"
            )
            if op.get("parameters"):
                out.append(
                    "<p>Parameters: "
                    + ", ".join(
                        f"<code>{e(p['name'])}</code> ({e(p['in'])}{', required' if p.get('required') else ''})"
                        for p in op["parameters"]
                    )
                    + "</p>"
                )
            if "requestBody" in op:
                schema = op["requestBody"]["content"]["application/json"]["schema"]
                out.append(f"<p>Body (JSON): {_anchor(_ref_name(schema))}</p>")
            out.append("<table><tr><th>status</th><th>meaning</th><th>body</th></tr>")
            for status, response in op["responses"].items():
                content = response.get("content", {})
                body = ""
                if "application/json" in content:
                    body = _anchor(_ref_name(content["application/json"]["schema"]))
                elif "text/html" in content:
                    body = "HTML page"
                out.append(
                    f"<tr><td>{e(status)}</td><td>{e(response['description'])}</td><td>{body}</td></tr>"
                )
            out.append("</table></div>")
    out.append("<h2>Schemas</h2>")
    for name, schema in doc["components"]["schemas"].items():
        out.append(
            f'<h3 id="schema-{e(name)}">{e(name)}</h3><pre>{e(json.dumps(schema, indent=2))}</pre>'
        )
    out.append("</body></html>")
    return "\n".join(out)
