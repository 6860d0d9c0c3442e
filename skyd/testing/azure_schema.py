"""Azure Resource Manager's own rules for the bodies skyd PUTs, from the vendored specs in
skyd/testing/specs/ (azure-compute.json, azure-network.json: the models the SDKs generate
from azure-rest-api-specs for the api-version they send; azure-images.json).

Checked: the api-version (only the spec's), every property name (unknown members are
refused, as the Compute and Network resource providers' JSON readers do), JSON types, enum
values (case-insensitively, as ARM compares them), a location on create, and the image.
Read-only properties are ignored, as ARM ignores them. Errors come back as
(HTTP status, {"code", "message", ...}) in ARM's error shape."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from skyd.catalog.network_tier import azure_accelerated

SPECS = Path(__file__).parent / "specs"
_FILES = {"Microsoft.Compute": "azure-compute.json", "Microsoft.Network": "azure-network.json"}


@dataclass(frozen=True)
class ArmError:
    status: int
    code: str
    message: str
    extra: dict[str, Any] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, **self.extra}}


@cache
def _spec(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SPECS / name).read_text())
    return loaded


def api_version(namespace: str) -> str:
    return str(_spec(_FILES[namespace])["apiVersion"])


def _type_ok(kind: str, value: Any) -> bool:
    if kind == "any":
        return True
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, int | float) and not isinstance(value, bool)


def _unknown(namespace: str, member: str, model: str, path: str) -> ArmError:
    detail = f"Could not find member '{member}' on object of type '{model}'. Path '{path}'."
    if namespace == "Microsoft.Compute":
        return ArmError(
            400,
            "InvalidRequestContent",
            f"The request content was invalid and could not be deserialized: '{detail}'",
        )
    return ArmError(
        400,
        "InvalidRequestFormat",
        "Cannot parse the request.",
        {"details": [{"code": "InvalidJson", "message": detail}]},
    )


def _walk(namespace: str, model: str, body: Any, path: str) -> ArmError | None:
    models = _spec(_FILES[namespace])["models"]
    fields = models[model]
    if not isinstance(body, dict):
        return ArmError(
            400,
            "InvalidRequestContent",
            f"Error converting value {json.dumps(body)} to type '{model}'. Path '{path}'.",
        )
    for key, value in body.items():
        spec = fields.get(key)
        where = f"{path}.{key}" if path else key
        if spec is None:
            return _unknown(namespace, key, model, where)
        if value is None or spec.get("readOnly"):
            continue
        items = value if spec.get("repeated") else [value]
        if spec.get("repeated") and not isinstance(value, list):
            return ArmError(400, "InvalidRequestContent", f"Expected an array at '{where}'.")
        for index, item in enumerate(items):
            at = f"{where}[{index}]" if spec.get("repeated") else where
            error = _check_value(namespace, spec, item, at)
            if error is not None:
                return error
    return None


def _check_value(namespace: str, spec: dict[str, Any], item: Any, at: str) -> ArmError | None:
    if "ref" in spec:
        return _walk(namespace, spec["ref"], item, at)
    if "map" in spec:
        if not isinstance(item, dict):
            return ArmError(400, "InvalidRequestContent", f"Expected an object at '{at}'.")
        for key, value in item.items():
            error = _check_value(namespace, spec["map"], value, f"{at}.{key}")
            if error is not None:
                return error
        return None
    if not _type_ok(spec["type"], item):
        return ArmError(
            400,
            "InvalidRequestContent",
            f"Error converting value {json.dumps(item)} to type '{spec['type']}'. Path '{at}'.",
        )
    allowed = spec.get("enum")
    if allowed and str(item).lower() not in {a.lower() for a in allowed}:
        return ArmError(
            400,
            "InvalidParameter",
            f"The value '{item}' of parameter '{at}' is not valid. "
            f"Allowed values are: {', '.join(allowed)}.",
            {"target": at},
        )
    return None


def check_put(
    namespace: str, kind: str, body: Any, version: str, creating: bool
) -> ArmError | None:
    """What ARM refuses of a PUT of a `kind` resource (virtualMachines, networkInterfaces,
    publicIPAddresses, networkSecurityGroups) before accepting it."""
    spec = _spec(_FILES[namespace])
    if version != spec["apiVersion"]:
        return ArmError(
            400,
            "NoRegisteredProviderFound",
            f"No registered resource provider found for location and API version '{version}' "
            f"and type '{kind}'. The supported api-versions are '{spec['apiVersion']}'.",
        )
    error = _walk(namespace, spec["roots"][kind], body, "")
    if error is not None:
        return error
    if creating and not body.get("location"):
        return ArmError(
            400, "LocationRequired", "The location property is required for this definition."
        )
    if kind == "virtualMachines":
        return _check_image(body) or _check_os_disk(body)
    if kind == "networkSecurityGroups":
        return _check_security_rules(body)
    return None


# OS disks may be Standard HDD, Standard SSD or Premium SSD (LRS/ZRS); Ultra and Premium v2
# are data disks only. Premium needs a size with premium storage (an "s" in its features).
_OS_DISK_TYPES = (
    "Standard_LRS",
    "StandardSSD_LRS",
    "Premium_LRS",
    "StandardSSD_ZRS",
    "Premium_ZRS",
)
_PREMIUM_SIZE = re.compile(r"^Standard_[A-Z]+\d+[a-z]*s[a-z]*_", re.IGNORECASE)


def _check_os_disk(body: dict[str, Any]) -> ArmError | None:
    properties = body.get("properties", {})
    disk = properties.get("storageProfile", {}).get("osDisk", {})
    kind = disk.get("managedDisk", {}).get("storageAccountType")
    if kind is None:
        return None
    if kind not in _OS_DISK_TYPES:
        return ArmError(
            400,
            "InvalidParameter",
            f"Managed disks of type {kind} cannot be used as an OS disk.",
            {"target": "osDisk.managedDisk.storageAccountType"},
        )
    size = str(properties.get("hardwareProfile", {}).get("vmSize", ""))
    if kind.startswith("Premium") and not _PREMIUM_SIZE.match(size):
        return ArmError(
            400,
            "BadRequest",
            f"Requested operation cannot be performed because the VM size {size} does not "
            f"support the storage account type {kind} of disk. Consider updating the VM to "
            "a size that supports Premium storage.",
        )
    return None


_PORT_RANGE = re.compile(r"^(\*|(\d{1,5})(-(\d{1,5}))?)$")


def _check_security_rules(body: dict[str, Any]) -> ArmError | None:
    """Network's own rules for securityRules: priorities 100-4096, one rule per priority and
    direction, port ranges `*`, `N` or `N-M` within 0-65535."""
    seen: dict[tuple[object, object], str] = {}
    for rule in body.get("properties", {}).get("securityRules", []) or []:
        name = str(rule.get("name", ""))
        props = rule.get("properties", {})
        priority = props.get("priority")
        if not isinstance(priority, int) or not 100 <= priority <= 4096:
            return ArmError(
                400,
                "SecurityRuleInvalidPriority",
                f"Security rule {name} has invalid Priority. Value provided: {priority}. "
                "Allowed range 100-4096.",
            )
        key = (priority, props.get("direction"))
        if key in seen:
            return ArmError(
                400,
                "SecurityRuleConflict",
                f"Security rule {name} conflicts with rule {seen[key]}. Rules cannot have the "
                "same Priority and Direction.",
            )
        seen[key] = name
        ranges = [props.get("destinationPortRange"), *(props.get("destinationPortRanges") or [])]
        for value in (r for r in ranges if r is not None):
            match = _PORT_RANGE.match(str(value))
            ok = match is not None and (
                match.group(1) == "*"
                or (int(match.group(2)) <= int(match.group(4) or match.group(2)) <= 65535)
            )
            if not ok:
                return ArmError(
                    400,
                    "SecurityRuleInvalidPortRange",
                    f"Security rule has invalid Port range. Value provided: {value}. Value "
                    "should be an integer OR integer range with '-' delimiter. Valid range "
                    "0-65535.",
                )
    return None


def _check_image(body: dict[str, Any]) -> ArmError | None:
    storage = body.get("properties", {}).get("storageProfile", {})
    image = storage.get("imageReference")
    if not image or image.get("id"):
        return None
    urn = f"{image.get('publisher')}:{image.get('offer')}:{image.get('sku')}"
    known = {u.lower() for u in _spec("azure-images.json")["images"]}
    if urn.lower() not in known:
        return ArmError(
            404,
            "PlatformImageNotFound",
            f"The platform image '{urn}:{image.get('version', 'latest')}' is not available. "
            "Verify that all fields in the storage profile are correct.",
        )
    return None


_SIZE_VCPUS = re.compile(r"^(?:Standard|Basic)_[A-Za-z]+(\d+)")


def accelerated_refusal(vm_size: str, nics: list[str]) -> ArmError | None:
    """A VM whose NIC has accelerated networking on a size that cannot take it: refused with
    ARM's code for it (VMSizeIsNotPermittedToEnableAcceleratedNetworking; message wording
    approximated). Which sizes take it: skyd.catalog.network_tier (the documented rule, vCPUs
    read from the size name as Azure spells it: Standard_D4s_v5 has 4)."""
    if not nics:
        return None
    found = _SIZE_VCPUS.match(vm_size)
    if found is not None and azure_accelerated(vm_size, int(found.group(1))):
        return None
    return ArmError(
        400,
        "VMSizeIsNotPermittedToEnableAcceleratedNetworking",
        f"VM size {vm_size} is not compatible with enabling accelerated networking on "
        f"NIC(s) {', '.join(nics)}. Please disable accelerated networking or choose a VM "
        "size that supports it.",
    )
