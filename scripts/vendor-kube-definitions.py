#!/usr/bin/env python3
"""Write skyd/testing/fake_kube/definitions.json: the Kubernetes object definitions the fake
API server validates against, trimmed to what skyd's Kubernetes provider sends and reads.

Source: the model classes of the kubernetes_asyncio package, which openapi-generator made
from the official Kubernetes OpenAPI document (the version is in each model's header). For
every definition reachable from ROOTS it keeps each property's JSON name and type, and
which properties are required (the generated setters refuse None for exactly those).
Usage: python scripts/vendor-kube-definitions.py  (with kubernetes_asyncio installed)
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from kubernetes_asyncio import __version__ as package_version
from kubernetes_asyncio import client
from kubernetes_asyncio.client.configuration import Configuration

ROOTS = (
    "V1Job",
    "V1Pod",
    "V1PodList",
    "V1JobList",
    "V1NodeList",
    "V1Status",
    "V1Eviction",
    "V1DeleteOptions",
    "V1ConfigMap",
    "V1ConfigMapList",
    "V1WatchEvent",
)
OUT = Path(__file__).resolve().parents[1] / "skyd" / "testing" / "fake_kube" / "definitions.json"
_LIST = re.compile(r"list\[(.+)\]")
_DICT = re.compile(r"dict\(([^,]+), (.+)\)")
_PRIMITIVE = {
    "str": "string",
    "int": "integer",
    "float": "number",
    "bool": "boolean",
    "object": "any",
    "datetime": "date-time",
    "date": "date",
}


def type_of(text: str, todo: list[str]) -> dict[str, object]:
    if text in _PRIMITIVE:
        return {"type": _PRIMITIVE[text]}
    if m := _LIST.fullmatch(text):
        return {"type": "array", "items": type_of(m.group(1), todo)}
    if m := _DICT.fullmatch(text):
        return {"type": "object", "additionalProperties": type_of(m.group(2), todo)}
    todo.append(text)
    return {"$ref": text}


def required_of(cls: type) -> list[str]:
    config = Configuration()
    config.client_side_validation = True
    required = []
    for attr in cls.openapi_types:
        probe = cls.__new__(cls)
        probe.local_vars_configuration = config
        try:
            setattr(probe, attr, None)
        except ValueError:
            required.append(cls.attribute_map[attr])
    return sorted(required)


def main() -> None:
    todo = list(ROOTS)
    definitions: dict[str, object] = {}
    while todo:
        name = todo.pop()
        if name in definitions:
            continue
        cls = getattr(client, name)
        props = {cls.attribute_map[a]: type_of(t, todo) for a, t in cls.openapi_types.items()}
        definitions[name] = {"properties": props, "required": required_of(cls)}
    model_source = Path(client.models.v1_pod.__file__).read_text()
    header = model_source.split("The version of the OpenAPI document: ")[1].split()[0]
    source = f"kubernetes_asyncio {package_version} models, generated from the Kubernetes"
    OUT.write_text(
        json.dumps(
            {
                "source": f"{source} OpenAPI document {header}",
                "roots": list(ROOTS),
                "definitions": dict(sorted(definitions.items())),
            },
            indent=1,
            sort_keys=False,
        )
        + "\n"
    )
    print(f"{len(definitions)} definitions → {OUT}")


if __name__ == "__main__":
    main()
