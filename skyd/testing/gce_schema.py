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

from skyd.catalog.network_tier import gcp_tier1

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


def _bad_name(field: str, value: str) -> GceError | None:
    """A resource name (or network tag) GCE refuses: RFC 1035, at most 63 characters."""
    if _NAME.fullmatch(value):
        return None
    return _invalid(field, value, "Must be a match of regex '[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?'")


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
    error = _bad_name("resource.name", name)
    if error is not None:
        return error
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
    error = check_tier1(body, machine)
    if error is not None:
        return error
    for index, disk in enumerate(body.get("disks", [])):
        error = check_disk_type(disk.get("initializeParams", {}), index, zone, machine)
        if error is not None:
            return error
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


def check_tier1(body: dict[str, Any], machine: str) -> GceError | None:
    """Tier_1 networking: only N2, N2D, C2, C2D and C3 with 30+ vCPUs, and only with a gVNIC
    ("Configure per VM Tier_1 networking performance", Requirements; the series and the
    minimum are kept with their source in skyd.catalog.network_tier). Wording approximated."""
    tier = body.get("networkPerformanceConfig", {}).get("totalEgressBandwidthTier")
    if tier != "TIER_1":
        return None
    field = "resource.networkPerformanceConfig.totalEgressBandwidthTier"
    size = machine.rsplit("-", 1)[-1]
    if not (size.isdigit() and gcp_tier1(machine, int(size))):
        why = f"Tier_1 networking is not supported for machine type '{machine}'."
        return _invalid(field, tier, why)
    nics = body.get("networkInterfaces", [])
    if not nics or any(nic.get("nicType") != "GVNIC" for nic in nics):
        return _invalid(field, tier, "Tier_1 networking requires the GVNIC network interface.")
    return None


_PROTOCOLS = ("tcp", "udp", "icmp", "esp", "ah", "sctp", "ipip", "all")
_PORT = re.compile(r"(\d{1,5})(?:-(\d{1,5}))?")
NETWORKS = ("default",)  # the networks a fake project has


def check_firewall(body: dict[str, Any], project: str) -> GceError | None:
    """Everything firewalls.insert refuses: schema, name, network, rules, ports, ranges."""
    import ipaddress

    error = _walk("Firewall", body, "resource")
    if error is not None:
        return error
    name = str(body.get("name", ""))
    error = _bad_name("resource.name", name)
    if error is not None:
        return error
    network = _tail(str(body.get("network", "global/networks/default")))
    if network not in NETWORKS:
        return GceError(
            404,
            "notFound",
            f"The resource 'projects/{project}/global/networks/{network}' was not found",
        )
    allowed, denied = body.get("allowed") or [], body.get("denied") or []
    if bool(allowed) == bool(denied):
        return _invalid("resource", name, "Exactly one of allowed or denied must be specified.")
    kind = "allowed" if allowed else "denied"
    for index, rule in enumerate(allowed or denied):
        protocol = str(rule.get("IPProtocol", ""))
        if protocol not in _PROTOCOLS and not protocol.isdigit():
            return _invalid(
                f"resource.{kind}[{index}].IPProtocol",
                protocol,
                "Invalid IP protocol specification.",
            )
        for p_index, port in enumerate(rule.get("ports", [])):
            match = _PORT.fullmatch(str(port))
            ok = match is not None and int(match.group(1)) <= int(match.group(2) or match.group(1))
            ok = ok and int((match.group(2) or match.group(1)) if match else 0) <= 65535
            if not ok or protocol not in ("tcp", "udp", "sctp"):
                return _invalid(
                    f"resource.{kind}[{index}].ports[{p_index}]",
                    str(port),
                    "Invalid port specification.",
                )
    for index, cidr in enumerate(body.get("sourceRanges", [])):
        try:
            ipaddress.ip_network(str(cidr), strict=False)
        except ValueError:
            return _invalid(f"resource.sourceRanges[{index}]", str(cidr), "Invalid IPCidrRange.")
    for index, tag in enumerate(body.get("targetTags", [])):
        error = _bad_name(f"resource.targetTags[{index}]", str(tag))
        if error is not None:
            return error
    return None


# Persistent disk types every zone has (hyperdisks only on the machine series that take
# them); pd-extreme only on large N2 and the memory-optimized M series.
DISK_TYPES = ("pd-standard", "pd-balanced", "pd-ssd", "pd-extreme")
_PD_EXTREME = re.compile(r"^(n2-(standard|highmem)-(64|80|96|128)|m1-.*|m2-.*|m3-.*)$")


def check_disk_type(params: dict[str, Any], index: int, zone: str, machine: str) -> GceError | None:
    link = params.get("diskType")
    if link is None:
        return None
    field = f"resource.disks[{index}].initializeParams.diskType"
    kind = _tail(str(link))
    if kind not in DISK_TYPES or f"zones/{zone}/diskTypes/" not in str(link):
        return _invalid(field, str(link), "The referenced diskType resource cannot be found.")
    if kind == "pd-extreme" and not _PD_EXTREME.match(machine):
        return GceError(
            400,
            "badRequest",
            f"[pd-extreme] features are not compatible for creating instance with "
            f"machine type [{machine}].",
            field,
        )
    if "provisionedIops" in params and kind != "pd-extreme":
        return _invalid(
            f"resource.disks[{index}].initializeParams.provisionedIops",
            str(params["provisionedIops"]),
            f"Provisioned IOPS is not supported for disk type {kind}.",
        )
    return None


# Machine series that take a compact placement policy, as Compute Engine's documentation
# of placement policies lists them (written by hand; E2, N1, N4, T2D and others do not).
COMPACT_SERIES = frozenset({"a2", "a3", "c2", "c2d", "c3", "c3d", "g2", "h3", "n2", "n2d"})
_POLICY_KINDS = (
    "groupPlacementPolicy",
    "snapshotSchedulePolicy",
    "instanceSchedulePolicy",
    "diskConsistencyGroupPolicy",
    "workloadPolicy",
)


def check_region(region: str) -> GceError | None:
    if not any(zone.rsplit("-", 1)[0] == region for zone in _spec("gce-zones.json")):
        return _invalid("region", region, "Unknown region.")
    return None


def check_policy_insert(body: dict[str, Any], region: str) -> GceError | None:
    """Everything resourcePolicies.insert refuses before creating anything."""
    error = check_region(region) or _walk("ResourcePolicy", body, "resource")
    if error is not None:
        return error
    name = str(body.get("name", ""))
    error = _bad_name("resource.name", name)
    if error is not None:
        return error
    kinds = [k for k in _POLICY_KINDS if k in body]
    if len(kinds) != 1:
        return _invalid(
            "resource",
            ", ".join(kinds) or "none",
            "Exactly one of " + ", ".join(_POLICY_KINDS) + " must be set.",
        )
    placement = body.get("groupPlacementPolicy")
    if (
        placement is not None
        and "collocation" in placement
        and "availabilityDomainCount" in placement
    ):
        return _invalid(
            "resource.groupPlacementPolicy",
            "collocation",
            "availabilityDomainCount (spread) cannot be combined with collocation (compact).",
        )
    return None


def compact_refusal(placement: dict[str, Any], machine_link: str, at: str) -> GceError | None:
    """A compact placement policy on a machine series that cannot be packed close."""
    if placement.get("collocation") != "COLLOCATED":
        return None
    machine = _tail(machine_link)
    series = machine.split("-", 1)[0]
    if series not in COMPACT_SERIES:
        return GceError(
            400,
            "invalid",
            f"Invalid value for field '{at}'. Compact placement policies are not supported "
            f"for machine type '{machine}'.",
            at,
        )
    return None
