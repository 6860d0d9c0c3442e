"""A task file's `resources:` block (and its `any_of` / `ordered` alternatives) → ResourcesSpec."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from skyd.spec.fields import FieldReader, Problems, as_string_map, as_text, check_value
from skyd.spec.resources import AutostopSpec, ResourcesSpec
from skyd.spec.values import (
    DEFAULT_AUTOSTOP_MINUTES,
    describe,
    parse_accelerators,
    parse_autostop_minutes,
    parse_cloud,
    parse_countries,
    parse_cpus,
    parse_disk_size,
    parse_dollars_per_hour,
    parse_infra,
    parse_memory,
)
from skyd.spec.vocabulary import Vocabulary

LOCATION_FIELDS = ("infra", "cloud", "region", "zone")
HARDWARE_FIELDS = (
    "accelerators",
    "cpus",
    "memory",
    "instance_type",
    "use_spot",
    "disk_size",
    "disk_tier",
    "network_tier",
    "ports",
    "max_hourly_cost",
    "countries",
    "autostop",
    "image_id",
    "labels",
)
RESOURCE_FIELDS = (
    *LOCATION_FIELDS,
    *HARDWARE_FIELDS,
    "any_of",
    "ordered",
    "candidates",
    "job_recovery",
)
RESOURCE_UNSUPPORTED = {
    "accelerator_args": "not supported yet (TPU options); remove it",
    "spot_recovery": "was renamed by SkyPilot; use job_recovery",
}
CANDIDATE_UNSUPPORTED = {
    **RESOURCE_UNSUPPORTED,
    "any_of": "cannot be nested inside an alternative; list every alternative in one any_of",
    "ordered": "cannot be nested inside an alternative; list every alternative in one ordered",
    "candidates": "cannot be nested inside an alternative; list every alternative in one any_of",
    "job_recovery": "is set once per task (top level or in resources), not per alternative",
}
AUTOSTOP_FIELDS = ("idle_minutes", "down")
# SkyPilot's tiers (sky/resources_utils.py DiskTier / NetworkTier).
DISK_TIERS = ("low", "medium", "high", "ultra", "best")
NETWORK_TIERS = ("standard", "best")
DOCKER_PREFIX = "docker:"
_PORT_RANGE = re.compile(r"^\s*(\d{1,5})\s*(?:-\s*(\d{1,5})\s*)?$")
_DOCKER_IMAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@\-]*$")

# How specific an alternative's location is; an alternative that names a more
# general level replaces everything below it from the base block.
NO_LOCATION, ZONE, REGION, CLOUD = range(4)


class ResourcesParser:
    """Reads resources blocks, reporting each bad field (located) and going on with the next."""

    def __init__(self, problems: Problems, vocabulary: Vocabulary | None) -> None:
        self.problems = problems
        self.vocabulary = vocabulary

    def parse(self, value: object) -> tuple[ResourcesSpec, object]:
        """The block, and its raw `job_recovery` (read by the task parser)."""
        path = "resources"
        if value is None:
            return ResourcesSpec(), None
        if not isinstance(value, Mapping):
            raise self.problems.at(
                path, f"{describe(value)} is not a mapping; write fields such as accelerators:"
            )
        reader = FieldReader(self.problems, path, value, RESOURCE_FIELDS, RESOURCE_UNSUPPORTED)
        fields, _level = self.block(reader)
        # `candidates` is SkyPilot's older name for `any_of`.
        any_of_key = (
            "candidates" if reader.has("candidates") and not reader.has("any_of") else "any_of"
        )
        has_any_of, has_ordered = reader.has(any_of_key), reader.has("ordered")
        if reader.has("candidates") and reader.has("any_of"):
            self.problems.report(
                reader.error("candidates", "is the older name of any_of; keep only any_of")
            )
            reader.take("candidates")
        any_of, ordered = reader.take(any_of_key), reader.take("ordered")
        recovery = reader.take("job_recovery")
        reader.finish()
        if has_any_of and has_ordered:
            raise self.problems.at(
                f"{path}.ordered", "any_of and ordered cannot be used together; keep one of them"
            )
        merged_any_of = (
            self._candidates(f"{path}.{any_of_key}", any_of, fields) if has_any_of else ()
        )
        merged_ordered = self._candidates(f"{path}.ordered", ordered, fields) if has_ordered else ()
        return ResourcesSpec(**fields, any_of=merged_any_of, ordered=merged_ordered), recovery

    def _candidates(
        self, path: str, value: object, base: dict[str, Any]
    ) -> tuple[ResourcesSpec, ...]:
        if isinstance(value, list) and not value:
            raise self.problems.at(
                path, "the list is empty; give at least one alternative, or leave the field out"
            )
        if not isinstance(value, list):
            raise self.problems.at(
                path,
                f"{describe(value)} is not a list of alternatives; write a list of resources "
                "mappings (e.g. - infra: aws/us-east-1)",
            )
        merged: list[ResourcesSpec] = []
        for index, item in enumerate(value):
            item_path = f"{path}[{index}]"
            if not isinstance(item, Mapping):
                self.problems.report(
                    self.problems.at(
                        item_path,
                        f"{describe(item)} is not a resources mapping (e.g. accelerators: A100:8)",
                    )
                )
                continue
            reader = FieldReader(
                self.problems,
                item_path,
                item,
                (*LOCATION_FIELDS, *HARDWARE_FIELDS),
                CANDIDATE_UNSUPPORTED,
            )
            own, level = self.block(reader, base_cloud=base.get("cloud"))
            reader.finish()
            merged.append(ResourcesSpec(**merge_alternative(base, own, level)))
        return tuple(merged)

    def block(
        self, reader: FieldReader, base_cloud: str | None = None
    ) -> tuple[dict[str, Any], int]:
        """The location and hardware fields of one resources mapping, as ResourcesSpec
        arguments (only those written), and how specific its location is."""
        raw = {key: reader.take(key) for key in (*LOCATION_FIELDS, *HARDWARE_FIELDS)}
        fields: dict[str, Any] = {}
        level = NO_LOCATION
        with self.problems.guard():
            level = self._location(reader, raw, fields, base_cloud)
        problems = self.problems
        path = reader.path_of
        cloud = fields.get("cloud") or base_cloud
        parsers: list[tuple[str, str, Any]] = [
            ("cpus", "cpus", lambda v: check_value(problems, path("cpus"), parse_cpus, v)),
            (
                "memory",
                "memory_gib",
                lambda v: check_value(problems, path("memory"), parse_memory, v),
            ),
            ("instance_type", "instance_type", lambda v: self._instance_type(path, v, cloud)),
            ("use_spot", "use_spot", lambda v: self.boolean(path("use_spot"), v)),
            (
                "disk_size",
                "disk_size_gib",
                lambda v: check_value(problems, path("disk_size"), parse_disk_size, v),
            ),
            ("disk_tier", "disk_tier", lambda v: self._tier(path("disk_tier"), v, DISK_TIERS)),
            (
                "network_tier",
                "network_tier",
                lambda v: self._tier(path("network_tier"), v, NETWORK_TIERS),
            ),
            ("ports", "ports", lambda v: self._ports(path("ports"), v)),
            (
                "max_hourly_cost",
                "max_hourly_cost_micros",
                lambda v: check_value(
                    problems,
                    path("max_hourly_cost"),
                    parse_dollars_per_hour,
                    v,
                    problems.sources.scalar_text(path("max_hourly_cost")),
                ),
            ),
            (
                "countries",
                "countries",
                lambda v: check_value(problems, path("countries"), parse_countries, v),
            ),
            ("autostop", "autostop", lambda v: self._autostop(path("autostop"), v)),
            ("image_id", "image_id", lambda v: self._image_id(path("image_id"), v)),
            (
                "labels",
                "labels",
                lambda v: as_string_map(problems, path("labels"), v, what="label"),
            ),
            ("accelerators", "accelerators", lambda v: self._accelerators(path, v)),
        ]
        for key, target, parse in parsers:
            if (value := raw[key]) is not None:
                with self.problems.guard():
                    fields[target] = parse(value)
        return fields, level

    # -- single fields -----------------------------------------------------------------

    def boolean(self, path: str, value: object) -> bool:
        if not isinstance(value, bool):
            raise self.problems.at(path, f"{describe(value)} is not true or false")
        return value

    def integer(
        self, path: str, value: object, *, low: int, high: int | None = None, hint: str
    ) -> int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.problems.at(path, f"{describe(value)} is not a whole number ({hint})")
        if value < low or (high is not None and value > high):
            bound = f"at least {low}" if high is None else f"between {low} and {high}"
            raise self.problems.at(path, f"{value} is out of range; it must be {bound} ({hint})")
        return value

    def _accelerators(self, path: Any, value: object) -> tuple[tuple[str, int], ...]:
        where = path("accelerators")
        pairs = check_value(self.problems, where, parse_accelerators, value)
        if self.vocabulary is None:
            return pairs
        named: list[tuple[str, int]] = []
        for name, count in pairs:
            canonical, problem = self.vocabulary.accelerator(name)
            if problem is not None:
                raise self.problems.at(where, problem)
            named.append((canonical, count))
        return tuple(dict.fromkeys(named))

    def _instance_type(self, path: Any, value: object, cloud: str | None) -> str:
        text = as_text(self.problems, path("instance_type"), value, what="an instance type")
        if self.vocabulary is not None:
            problem = self.vocabulary.instance_type_problem(text, cloud)
            if problem is not None:
                raise self.problems.at(path("instance_type"), problem)
        return text

    def _tier(self, path: str, value: object, allowed: tuple[str, ...]) -> str:
        if isinstance(value, str) and value.strip().lower() in allowed:
            return value.strip().lower()
        raise self.problems.at(
            path, f"{describe(value)} is not a tier; use one of: {', '.join(allowed)}"
        )

    def _ports(self, path: str, value: object) -> tuple[str, ...]:
        """`8080`, `"10000-10010"`, or a list of those → texts such as "8080", "10000-10010"."""
        items = value if isinstance(value, list) else [value]
        if not items:
            raise self.problems.at(path, "the list is empty; give a port (e.g. 8080) or remove it")
        hint = "use a port 1-65535 or a range such as 10000-10010"
        ports: list[str] = []
        for item in items:
            text = str(item) if isinstance(item, int) and not isinstance(item, bool) else item
            match = _PORT_RANGE.match(text) if isinstance(text, str) else None
            if match is None:
                raise self.problems.at(path, f"{describe(item)} is not a port; {hint}")
            low = int(match.group(1))
            high = int(match.group(2) or low)
            if not 1 <= low <= high <= 65535:
                raise self.problems.at(path, f"{describe(item)} is out of range; {hint}")
            ports.append(str(low) if low == high else f"{low}-{high}")
        return tuple(dict.fromkeys(ports))

    def _image_id(self, path: str, value: object) -> str | dict[str, str]:
        if isinstance(value, Mapping):
            return as_string_map(self.problems, path, value, what="region")
        text = as_text(self.problems, path, value, what="an image id")
        if text.startswith(DOCKER_PREFIX):
            image = text[len(DOCKER_PREFIX) :].strip()
            if not image or not _DOCKER_IMAGE.match(image):
                raise self.problems.at(
                    path,
                    f"{text!r} does not name a container image; write docker:IMAGE[:TAG] "
                    "(e.g. docker:pytorch/pytorch:2.3.0-cuda12.1-cudnn8-runtime)",
                )
            return DOCKER_PREFIX + image
        return text

    def _autostop(self, path: str, value: object) -> AutostopSpec:
        if isinstance(value, bool):
            return AutostopSpec(enabled=value, idle_minutes=DEFAULT_AUTOSTOP_MINUTES)
        if not isinstance(value, Mapping):
            return AutostopSpec(
                idle_minutes=check_value(self.problems, path, parse_autostop_minutes, value)
            )
        reader = FieldReader(self.problems, path, value, AUTOSTOP_FIELDS)
        minutes, down = reader.take("idle_minutes"), reader.take("down")
        reader.finish()
        spec: dict[str, Any] = {}
        if minutes is not None:
            spec["idle_minutes"] = self.integer(
                f"{path}.idle_minutes", minutes, low=0, hint="minutes, e.g. 10"
            )
        if down is not None:
            spec["down"] = self.boolean(f"{path}.down", down)
        return AutostopSpec(**spec)

    def _location(
        self,
        reader: FieldReader,
        raw: dict[str, object],
        fields: dict[str, Any],
        base_cloud: str | None,
    ) -> int:
        infra = raw["infra"]
        if infra is not None:
            clashing = [key for key in ("cloud", "region", "zone") if raw[key] is not None]
            if clashing:
                raise self.problems.at(
                    reader.path_of("infra"),
                    f"infra and {'/'.join(clashing)} are both set; use only infra "
                    "(e.g. infra: aws/us-east-1) or only cloud/region/zone",
                )
            cloud, region, zone = check_value(
                self.problems, reader.path_of("infra"), parse_infra, infra
            )
            self._check_place(reader.path_of("infra"), cloud, region, zone)
            fields.update(cloud=cloud, region=region, zone=zone)
            return CLOUD
        level = NO_LOCATION
        if raw["cloud"] is not None:
            fields["cloud"] = check_value(
                self.problems, reader.path_of("cloud"), parse_cloud, raw["cloud"]
            )
            level = CLOUD
        cloud = fields.get("cloud") or base_cloud
        for key, key_level in (("region", REGION), ("zone", ZONE)):
            if raw[key] is not None:
                text = as_text(self.problems, reader.path_of(key), raw[key], what=f"a {key}")
                fields[key] = text
                level = max(level, key_level)
                if key == "region":
                    self._check_place(reader.path_of(key), cloud, text, None)
                else:
                    self._check_place(reader.path_of(key), cloud, None, text)
        return level

    def _check_place(
        self, path: str, cloud: str | None, region: str | None, zone: str | None
    ) -> None:
        if self.vocabulary is None:
            return
        problem = (region and self.vocabulary.region_problem(region, cloud)) or (
            zone and self.vocabulary.zone_problem(zone, cloud)
        )
        if problem:
            raise self.problems.at(path, problem)


def merge_alternative(base: dict[str, Any], own: dict[str, Any], level: int) -> dict[str, Any]:
    """An alternative's fields over the base block's, as SkyPilot merges them.

    Locations merge by level, so `{region: us-west-2}` keeps the base's cloud but
    `{infra: gcp}` does not inherit the base's AWS region.
    """
    location = ("cloud", "region", "zone")
    merged = {key: value for key, value in base.items() if key not in location}
    merged.update({key: value for key, value in own.items() if key not in location})
    kept = {CLOUD: (), REGION: ("cloud",), ZONE: ("cloud", "region")}.get(level, location)
    for key in location:
        value = base.get(key) if key in kept else own.get(key)
        if value is not None:
            merged[key] = value
    return merged
