"""Compute Engine's own rules for an instances.insert body, from the vendored specs in
skyd/testing/specs/: field names, JSON types and enums (gce-compute-v1.json), machine and
accelerator types per zone (gce-zones.json, from the shipped catalog), images
(gce-images.json). Errors come back as (HTTP status, reason, message, field) in GCE's words."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

SPECS = Path(__file__).parent / "specs"
_NAME = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")


@dataclass(frozen=True)
class GceError:
    status: int
    reason: str
    message: str
    field: str = ""
    grpc_status: str = ""  # the JSON-mapping errors carry INVALID_ARGUMENT


@cache
def _spec(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SPECS / name).read_text())
    return loaded


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def _type_ok(kind: str, value: Any) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":  # int64s travel as JSON strings
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, str) and value.lstrip("-").isdigit()
        )
    return isinstance(value, int | float) and not isinstance(value, bool)


def _walk(message: str, body: Any, path: str) -> GceError | None:
    """Field names, JSON types and enum values, as the API's JSON decoder checks them."""
    fields = _spec("gce-compute-v1.json")["messages"][message]
    if not isinstance(body, dict):
        return _payload(
            f"Invalid value at '{path}' (type.googleapis.com/google.cloud.compute.v1."
            f"{message}), {json.dumps(body)}",
            path,
        )
    for key, value in body.items():
        spec = fields.get(key)
        if spec is None:
            return _payload(
                f"Invalid JSON payload received. Unknown name \"{key}\" at '{path}': "
                "Cannot find field.",
                path,
            )
        where = f"{path}.{_snake(key)}"
        items = value if spec.get("repeated") else [value]
        if spec.get("repeated") and not isinstance(value, list):
            return _payload(f"Invalid value at '{where}', expected a list", where)
        for index, item in enumerate(items):
            at = f"{where}[{index}]" if spec.get("repeated") else where
            if "ref" in spec:
                error = _walk(spec["ref"], item, at)
                if error is not None:
                    return error
            elif "map" in spec:
                if not isinstance(item, dict) or not all(
                    _type_ok(spec["map"], v) for v in item.values()
                ):
                    return _payload(f"Invalid value at '{at}', expected a map", at)
            elif not _type_ok(spec["type"], item):
                return _payload(f"Invalid value at '{at}' ({spec['type']}), {json.dumps(item)}", at)
            elif "enum" in spec and item not in spec["enum"]:
                enum = f"{message}.{key[:1].upper()}{key[1:]}"
                return _payload(
                    f"Invalid value at '{at}' (type.googleapis.com/google.cloud.compute.v1."
                    f"{enum}), {json.dumps(item)}",
                    at,
                )
    return None


def _payload(message: str, field: str) -> GceError:
    return GceError(400, "invalid", message, field, "INVALID_ARGUMENT")


def _invalid(field: str, value: str, why: str) -> GceError:
    return GceError(400, "invalid", f"Invalid value for field '{field}': '{value}'. {why}", field)


def _tail(link: str) -> str:
    return link.rstrip("/").rsplit("/", 1)[-1]


def check_zone(zone: str) -> GceError | None:
    if zone not in _spec("gce-zones.json"):
        return _invalid("zone", zone, "Unknown zone.")
    return None


def check_image(source: str) -> GceError | None:
    """`projects/P/global/images/family/F` or `.../images/NAME`, in any URL form."""
    path = source[source.find("projects/") :] if "projects/" in source else source
    parts = path.split("/")
    projects = _spec("gce-images.json")["projects"]
    known = False
    if len(parts) == 5 and parts[2:4] == ["global", "images"]:
        known = parts[4] in projects.get(parts[1], {}).get("images", [])
    elif len(parts) == 6 and parts[2:5] == ["global", "images", "family"]:
        known = parts[5] in projects.get(parts[1], {}).get("families", [])
    if not known:
        return GceError(404, "notFound", f"The resource '{path}' was not found")
    return None


def check_insert(body: dict[str, Any], zone: str) -> GceError | None:
    """Everything instances.insert refuses before creating anything."""
    error = check_zone(zone) or _walk("Instance", body, "resource")
    if error is not None:
        return error
    name = str(body.get("name", ""))
    if not _NAME.fullmatch(name):
        return _invalid(
            "resource.name", name, "Must be a match of regex '[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?'"
        )
    offered = _spec("gce-zones.json")[zone]
    machine_link = str(body.get("machineType", ""))
    machine = _tail(machine_link)
    if machine not in offered["machineTypes"]:
        return _invalid(
            "resource.machineType",
            machine_link,
            f"Machine type with name '{machine}' does not exist in zone '{zone}'.",
        )
    accelerators = body.get("guestAccelerators", [])
    for index, accelerator in enumerate(accelerators):
        kind_link = str(accelerator.get("acceleratorType", ""))
        kind = _tail(kind_link)
        field = f"resource.guestAccelerators[{index}].acceleratorType"
        if kind not in offered["acceleratorTypes"]:
            return _invalid(
                field, kind_link, f"Accelerator type '{kind}' does not exist in zone '{zone}'."
            )
        count = int(accelerator.get("acceleratorCount", 0))
        if not 0 < count <= offered["acceleratorTypes"][kind]:
            return _invalid(
                f"resource.guestAccelerators[{index}].acceleratorCount",
                str(count),
                f"Count must be between 1 and {offered['acceleratorTypes'][kind]} for '{kind}'.",
            )
    if accelerators and not machine.startswith("n1-"):
        return _invalid(
            "resource.guestAccelerators",
            machine,
            f"Machine type '{machine}' does not support attached accelerators; "
            "use an N1 machine type.",
        )
    scheduling = body.get("scheduling", {})
    if accelerators and scheduling.get("onHostMaintenance", "MIGRATE") != "TERMINATE":
        return GceError(
            400,
            "badRequest",
            "Instances with guest accelerators do not support live migration.",
            "resource.scheduling.onHostMaintenance",
        )
    for index, disk in enumerate(body.get("disks", [])):
        source = disk.get("initializeParams", {}).get("sourceImage")
        if disk.get("boot") and not source and not disk.get("source"):
            return _invalid(
                f"resource.disks[{index}]",
                "",
                "Boot disk must have a source image or a source disk.",
            )
        if source:
            error = check_image(str(source))
            if error is not None:
                return error
    return None
