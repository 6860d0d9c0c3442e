"""The OpenAPI 3.1 document of the v1 API, built from the same pydantic schemas the API uses."""

from __future__ import annotations

from functools import cache
from typing import Any

import skyd
from skyd.api.schemas import ErrorBody, EventView, Health, JobPage, JobView, SubmitRequest

_REF = "#/components/schemas/{model}"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(name: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(name)}}}


_ERRORS = {
    "400": _json("ErrorBody", "invalid request or task spec"),
    "403": _json("ErrorBody", "not allowed for this caller"),
    "404": _json("ErrorBody", "no such job"),
}
_JOB_ID = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "integer"}}


@cache
def openapi_document() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for model in (ErrorBody, SubmitRequest, JobView, JobPage, EventView, Health):
        schema = model.model_json_schema(ref_template=_REF)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "skyd",
            "version": skyd.__version__,
            "description": "Intercloud broker daemon. Served on a Unix socket; the caller's uid "
            "(SO_PEERCRED) is its identity.",
        },
        "paths": {
            "/v1/jobs": {
                "post": {
                    "summary": "Submit a job (task YAML or a one-line command)",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("SubmitRequest")}},
                    },
                    "responses": {
                        "201": _json("JobView", "the new job"),
                        "422": _json("ErrorBody", "no enabled provider can run it"),
                        **_ERRORS,
                    },
                },
                "get": {
                    "summary": "List jobs, newest first (keyset-paginated)",
                    "parameters": [
                        {"name": n, "in": "query", "schema": {"type": t}}
                        for n, t in (
                            ("state", "string"),
                            ("user", "string"),
                            ("all", "boolean"),
                            ("limit", "integer"),
                            ("cursor", "integer"),
                        )
                    ],
                    "responses": {"200": _json("JobPage", "a page of jobs"), **_ERRORS},
                },
            },
            "/v1/jobs/{job_id}": {
                "get": {
                    "summary": "One job with its event history",
                    "parameters": [_JOB_ID],
                    "responses": {"200": _json("JobView", "the job"), **_ERRORS},
                }
            },
            "/v1/jobs/{job_id}/cancel": {
                "post": {
                    "summary": "Cancel a job (owner or admin)",
                    "parameters": [_JOB_ID],
                    "responses": {"200": _json("JobView", "the cancelled job"), **_ERRORS},
                }
            },
            "/v1/jobs/{job_id}/logs": {
                "get": {
                    "summary": "The job's output; with follow=1 streamed until the job ends",
                    "parameters": [
                        _JOB_ID,
                        {"name": "follow", "in": "query", "schema": {"type": "boolean"}},
                        {"name": "offset", "in": "query", "schema": {"type": "integer"}},
                    ],
                    "responses": {
                        "200": {
                            "description": "log bytes",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        },
                        **_ERRORS,
                    },
                }
            },
            "/v1/events": {
                "get": {
                    "summary": "Every event after `since`, then live, as NDJSON",
                    "parameters": [{"name": "since", "in": "query", "schema": {"type": "integer"}}],
                    "responses": {
                        "200": {
                            "description": "one EventView per line",
                            "content": {"application/x-ndjson": {"schema": _ref("EventView")}},
                        }
                    },
                }
            },
            "/v1/health": {"get": {"responses": {"200": _json("Health", "daemon status")}}},
            "/v1/openapi.json": {"get": {"responses": {"200": {"description": "this document"}}}},
        },
        "components": {"schemas": schemas},
    }
