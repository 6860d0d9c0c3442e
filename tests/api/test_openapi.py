"""The OpenAPI document covers every route the daemon serves, with its parameters and the error
shape, and is built from the models the handlers validate with."""

from __future__ import annotations

from skyd.api.openapi import openapi_document
from skyd.testing.daemon import DaemonThread
from skyd.testing.unix_http import request


def test_every_served_route_is_documented(daemon: DaemonThread) -> None:
    served_app = daemon.daemon.web_app
    assert served_app is not None
    served = {
        (route.method.lower(), route.resource.canonical)
        for route in served_app.router.routes()
        if route.method != "HEAD" and route.resource is not None
    }
    status, document, _ = request(daemon.socket_path, "GET", "/v1/openapi.json")
    assert status == 200
    documented = {(m, p) for p, ops in document["paths"].items() for m in ops}
    assert served - documented == set()
    assert documented - served == set()
    assert len(served) >= 30
    for path in ("/v1/credits", "/v1/clusters", "/v1/prices", "/v1/optimize", "/v1/costs"):
        assert path in document["paths"]


def test_parameters_bodies_and_errors_are_described() -> None:
    document = openapi_document()
    schemas = document["components"]["schemas"]
    assert {"code", "message", "field"} <= set(schemas["ErrorBody"]["properties"])
    show = document["paths"]["/v1/jobs/{job_id}"]["get"]
    (job_id,) = show["parameters"]
    assert job_id["in"] == "path" and job_id["schema"]["maximum"] == 2**63 - 1
    assert show["responses"]["404"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorBody"
    }
    add_pool = document["paths"]["/v1/credits"]["post"]
    body = add_pool["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert set(schemas[body.rsplit("/", 1)[1]]["required"]) == {
        "name",
        "cloud",
        "amount",
        "expires",
    }
    costs = document["paths"]["/v1/costs"]["get"]
    by = next(p for p in costs["parameters"] if p["name"] == "by")
    assert by["schema"]["enum"] == ["user", "project", "cloud", "pool", "job"]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert operation["responses"], (method, path)
            for ref in _refs(operation):
                assert ref.rsplit("/", 1)[1] in schemas, (method, path, ref)


def _refs(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if "$ref" in node else []
        return found + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


def test_the_cancel_documents_its_wait_default_and_the_marker_of_a_cancel_under_way() -> None:
    document = openapi_document()
    cancel = document["paths"]["/v1/jobs/{job_id}/cancel"]["post"]
    (wait,) = [p for p in cancel["parameters"] if p["name"] == "wait"]
    assert (wait["in"], wait["schema"]["type"], wait["schema"]["default"]) == (
        "query",
        "boolean",
        True,
    )
    assert "wait=0" in cancel["description"] and "cancel_requested" in cancel["description"]
    job = document["components"]["schemas"]["JobView"]["properties"]
    assert job["cancel_requested"]["type"] == "boolean"
