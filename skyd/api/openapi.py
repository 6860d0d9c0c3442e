"""The OpenAPI 3.1 document of the v1 API, built from the endpoint registry (skyd/api/contract.py)
and the same pydantic models the handlers validate with."""

from __future__ import annotations

import typing
from collections.abc import Mapping
from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from skyd.api.contract import ENDPOINTS, Endpoint
from skyd.api.schemas import ErrorBody

_REF = "#/components/schemas/{model}"
_ERROR_TEXT = {
    400: "invalid request: names the field, the value and the fix; nothing was changed",
    403: "not allowed for this caller (or over budget)",
    404: "no such object",
    409: "conflicts with the current state",
    422: "no enabled provider can run it",
}


def _models_of(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_of(arg)]


Refs = Mapping[tuple[Any, JsonSchemaMode], Mapping[str, Any]]


def _ref(annotation: Any, mode: JsonSchemaMode, refs: Refs) -> dict[str, Any]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return dict(refs[(annotation, mode)])
    if typing.get_origin(annotation) is list:
        return {"type": "array", "items": _ref(typing.get_args(annotation)[0], mode, refs)}
    members = typing.get_args(annotation)
    if members:  # Model | Other
        return {"anyOf": [_ref(member, mode, refs) for member in members]}
    return {}


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A parameter's schema: absent means unset, so `X | None` is just X (no "null")."""
    schema = dict(schema)
    schema.pop("default", None) if schema.get("default") is None else None
    branches = schema.get("anyOf")
    if branches:
        kept = [b for b in branches if b.get("type") != "null"]
        if len(kept) == 1:
            del schema["anyOf"]
            schema.update(kept[0])
    return schema


def _parameters(model: type[BaseModel] | None, where: str) -> list[dict[str, Any]]:
    if model is None:
        return []
    schema = model.model_json_schema()
    required = set(schema.get("required", ()))
    params = []
    for name, prop in schema["properties"].items():
        prop = _without_null(prop)
        param: dict[str, Any] = {
            "name": name,
            "in": where,
            "required": where == "path" or name in required,
            "schema": prop,
        }
        if "description" in prop:
            param["description"] = prop["description"]
        params.append(param)
    return params


def _operation(ep: Endpoint, refs: Refs) -> dict[str, Any]:
    name = ep.path.removeprefix("/v1/").replace("/", "_").replace("{", "").replace("}", "")
    op: dict[str, Any] = {
        "summary": ep.summary,
        "operationId": f"{ep.method.lower()}_{name}",
        "tags": [ep.tag],
    }
    if ep.description:  # what a one-line summary cannot say (e.g. a default kept for old users)
        op["description"] = ep.description
    params = _parameters(ep.path_params, "path") + _parameters(ep.query, "query")
    if params:
        op["parameters"] = params
    if ep.body is not None:
        op["requestBody"] = {
            "required": bool(ep.body.model_json_schema().get("required")),
            "content": {"application/json": {"schema": _ref(ep.body, "validation", refs)}},
        }
    content: dict[str, Any] = {}
    if ep.content_type == "text/plain":
        content["text/plain"] = {"schema": {"type": "string"}}
    elif ep.response is not None:
        content[ep.content_type] = {"schema": _ref(ep.response, "serialization", refs)}
    content.update(ep.extra_content)
    ok: dict[str, Any] = {"description": ep.summary}
    if content:
        ok["content"] = content
    responses: dict[str, Any] = {str(ep.status): ok}
    for status in ep.errors:
        responses[str(status)] = {
            "description": _ERROR_TEXT.get(status, "error"),
            "content": {"application/json": {"schema": _ref(ErrorBody, "serialization", refs)}},
        }
    op["responses"] = responses
    return op


@cache
def openapi_document() -> dict[str, Any]:
    """The document for every registered endpoint (the route modules register on import)."""
    import skyd.api.app  # imports every route module: the registry is complete

    endpoints = sorted(ENDPOINTS.values(), key=lambda e: (e.path, e.method))
    wanted: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {
        (ErrorBody, "serialization"): None
    }
    for ep in endpoints:
        for model in (ep.body, *_models_of(ep.response)):
            if model is not None:
                mode: JsonSchemaMode = "validation" if model is ep.body else "serialization"
                wanted[(model, mode)] = None
    refs, defs = models_json_schema(list(wanted), ref_template=_REF)
    paths: dict[str, dict[str, Any]] = {}
    for ep in endpoints:
        paths.setdefault(ep.path, {})[ep.method.lower()] = _operation(ep, refs)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "skyd",
            "version": skyd.__version__,
            "description": "Intercloud broker daemon. Served on a Unix socket; the caller's uid "
            "(SO_PEERCRED) is its identity. Every error is an ErrorBody.",
        },
        "paths": paths,
        "components": {"schemas": defs.get("$defs", {})},
    }
