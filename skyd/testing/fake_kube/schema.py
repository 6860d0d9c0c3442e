"""Checks request bodies as a Kubernetes API server does: the vendored OpenAPI definitions
(unknown fields, types, required fields) plus the few semantic rules skyd's objects meet.

Unknown fields are refused as with `fieldValidation=Strict` (400, "strict decoding error"),
schema and semantic problems as 422 Invalid with one cause per field, the shapes the real
server answers with.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

DEFINITIONS = Path(__file__).with_name("definitions.json")
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
_QUANTITY = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+|[KMGTPE]i|[numkMGTPE])?")


# Objects stored under a name (an Eviction or DeleteOptions is a request, not an object).
NAMED_KINDS = frozenset({"V1Job", "V1Pod", "V1ConfigMap"})


@dataclass(frozen=True, slots=True)
class Cause:
    field: str
    reason: str  # FieldValueRequired | FieldValueInvalid | FieldValueTypeInvalid | unknown
    message: str


@cache
def definitions() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DEFINITIONS.read_text())
    return data["definitions"]  # type: ignore[no-any-return]


def _type_ok(value: object, kind: str) -> bool:
    if kind == "string" or kind in ("date-time", "date"):
        return isinstance(value, str)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    return True  # "any" (IntOrString, RawExtension)


def check(value: object, schema: dict[str, Any], path: str, causes: list[Cause]) -> None:
    if value is None:
        return  # null is "unset" in Kubernetes JSON
    if "$ref" in schema:
        check_object(value, schema["$ref"], path, causes)
        return
    kind = schema.get("type", "any")
    if kind == "array":
        if not isinstance(value, list):
            causes.append(Cause(path, "FieldValueTypeInvalid", "expected an array"))
            return
        for i, item in enumerate(value):
            check(item, schema["items"], f"{path}[{i}]", causes)
    elif kind == "object":
        if not isinstance(value, dict):
            causes.append(Cause(path, "FieldValueTypeInvalid", "expected an object"))
            return
        for key, item in value.items():
            check(item, schema["additionalProperties"], f"{path}[{key}]", causes)
    elif not _type_ok(value, kind):
        causes.append(
            Cause(path, "FieldValueTypeInvalid", f"expected {kind}, got {type(value).__name__}")
        )


def check_object(value: object, name: str, path: str, causes: list[Cause]) -> None:
    definition = definitions()[name]
    if not isinstance(value, dict):
        causes.append(Cause(path, "FieldValueTypeInvalid", f"expected an object ({name})"))
        return
    props: dict[str, Any] = definition["properties"]
    prefix = f"{path}." if path else ""
    for key, item in value.items():
        if key not in props:
            causes.append(Cause(f"{prefix}{key}", "FieldValueUnknown", f'unknown field "{key}"'))
            continue
        check(item, props[key], f"{prefix}{key}", causes)
    for key in definition["required"]:
        if value.get(key) is None:
            causes.append(Cause(f"{prefix}{key}", "FieldValueRequired", "Required value"))


def check_metadata(meta: dict[str, Any], causes: list[Cause]) -> None:
    name = meta.get("name")
    if not name and not meta.get("generateName"):
        causes.append(
            Cause("metadata.name", "FieldValueRequired", "name or generateName is required")
        )
    elif name and (len(name) > 253 or not _DNS_SUBDOMAIN.fullmatch(name)):
        causes.append(
            Cause(
                "metadata.name",
                "FieldValueInvalid",
                f"Invalid value: {name!r}: a lowercase RFC 1123 subdomain must consist of "
                "lower case alphanumeric characters, '-' or '.'",
            )
        )
    for key, label in (meta.get("labels") or {}).items():
        if not isinstance(label, str) or len(label) > 63 or not _LABEL_VALUE.fullmatch(label):
            causes.append(
                Cause(
                    f"metadata.labels[{key}]",
                    "FieldValueInvalid",
                    f"Invalid value: {label!r}: a valid label must be 63 characters or less",
                )
            )


def check_pod_spec(spec: dict[str, Any], path: str, causes: list[Cause]) -> None:
    for i, container in enumerate(spec.get("containers") or []):
        where = f"{path}.containers[{i}]"
        name = container.get("name") or ""
        if name and not _DNS_LABEL.fullmatch(name):
            causes.append(Cause(f"{where}.name", "FieldValueInvalid", f"Invalid value: {name!r}"))
        if not container.get("image"):
            causes.append(Cause(f"{where}.image", "FieldValueRequired", "Required value"))
        resources = container.get("resources") or {}
        for kind in ("limits", "requests"):
            for res, qty in (resources.get(kind) or {}).items():
                if not isinstance(qty, str | int) or not _QUANTITY.fullmatch(str(qty)):
                    causes.append(
                        Cause(
                            f"{where}.resources.{kind}[{res}]",
                            "FieldValueInvalid",
                            f"Invalid value: {qty!r}: must be a quantity",
                        )
                    )


def validate(kind: str, body: object) -> tuple[int, list[Cause]]:
    """(HTTP status, causes) for a create of `kind` (a definition name like V1Job)."""
    causes: list[Cause] = []
    check_object(body, kind, "", causes)
    unknown = [c for c in causes if c.reason == "FieldValueUnknown"]
    if unknown:
        return 400, unknown
    if not isinstance(body, dict):
        return 422, causes
    # like the real server, report schema and semantic problems of the object together
    if kind in NAMED_KINDS:
        check_metadata(body.get("metadata") or {}, causes)
    spec = body.get("spec") or {}
    if kind == "V1Pod":
        check_pod_spec(spec, "spec", causes)
    if kind == "V1Job":
        template = (spec.get("template") or {}).get("spec") or {}
        check_pod_spec(template, "spec.template.spec", causes)
        if template.get("restartPolicy") not in ("Never", "OnFailure"):
            causes.append(
                Cause(
                    "spec.template.spec.restartPolicy",
                    "FieldValueNotSupported",
                    f"Unsupported value: {template.get('restartPolicy')!r}: supported values: "
                    '"OnFailure", "Never"',
                )
            )
        if spec.get("completionMode") == "Indexed" and not spec.get("completions"):
            causes.append(
                Cause(
                    "spec.completions",
                    "FieldValueRequired",
                    "Required value: when completion mode is Indexed",
                )
            )
    return (422 if causes else 200), causes
