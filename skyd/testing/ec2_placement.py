"""EC2 placement groups for the moto proxy (moto has none): Create / Describe / Delete, and
what RunInstances checks of `Placement.GroupName`.

The request and answer shapes are those of EC2's query protocol as botocore's service model
describes them (the client that talks to this is the real SDK, which parses the answers
with that model). The rules and error codes follow the EC2 API reference for these calls
and its list of error codes (InvalidPlacementGroup.Duplicate / .Unknown / .InUse,
InvalidParameterValue, MissingParameter); the messages are written here after those
descriptions, not copied from a live answer. Cluster placement groups refuse burstable
(T2/T3/T3a/T4g) and Mac instance types, as the user guide's placement-group rules say.
"""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

STRATEGIES = ("cluster", "spread", "partition")
# Instance families a cluster placement group cannot hold (burstable, Mac).
_NO_CLUSTER = re.compile(r"^(t2|t3|t3a|t4g|mac\d?)\.")
_XMLNS = "http://ec2.amazonaws.com/doc/2016-11-15/"


@dataclass
class PlacementGroup:
    name: str
    group_id: str
    strategy: str
    region: str
    tags: dict[str, str] = field(default_factory=dict)
    partition_count: int | None = None
    # instance ids RunInstances put in the group (their states are read from moto)
    members: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Refusal:
    status: int
    code: str
    message: str


class PlacementGroups:
    """Every region's placement groups. `alive(region, instance_id)` says whether an
    instance still counts as in its group (any state but terminated)."""

    def __init__(self, alive: Callable[[str, str], bool]) -> None:
        self._alive = alive
        self.groups: dict[tuple[str, str], PlacementGroup] = {}
        # every (group, instance) RunInstances placed, kept after both are gone (for tests)
        self.placed: list[tuple[str, str]] = []
        self._ids = itertools.count(0x10000000)

    def handles(self, action: str) -> bool:
        return action in ("CreatePlacementGroup", "DescribePlacementGroups", "DeletePlacementGroup")

    def answer(self, action: str, form: Mapping[str, str], region: str) -> tuple[int, str]:
        """(HTTP status, XML body) for one of the three placement-group actions."""
        if action == "CreatePlacementGroup":
            result = self._create(form, region)
        elif action == "DeletePlacementGroup":
            result = self._delete(form, region)
        else:
            result = self._describe(form, region)
        if isinstance(result, Refusal):
            return result.status, error_body(result.code, result.message)
        return 200, result

    def check_launch(self, form: Mapping[str, str], region: str) -> Refusal | None:
        """What RunInstances refuses of its Placement.GroupName before launching anything."""
        name = form.get("Placement.GroupName")
        if not name:
            return None
        group = self.groups.get((region, name))
        if group is None:
            return _unknown(name)
        kind = form.get("InstanceType", "")
        if group.strategy == "cluster" and _NO_CLUSTER.match(kind):
            return Refusal(
                400,
                "InvalidParameterCombination",
                f"The instance type '{kind}' is not supported in a cluster placement group.",
            )
        return None

    def launched(self, form: Mapping[str, str], region: str, instance_ids: list[str]) -> None:
        name = form.get("Placement.GroupName")
        if name and (region, name) in self.groups:
            self.groups[(region, name)].members.extend(instance_ids)
            self.placed.extend((name, i) for i in instance_ids)

    def group_of(self, region: str, instance_id: str) -> str | None:
        for (where, name), group in self.groups.items():
            if where == region and instance_id in group.members:
                return name
        return None

    # -- the actions ---------------------------------------------------------------------

    def _create(self, form: Mapping[str, str], region: str) -> str | Refusal:
        name = form.get("GroupName", "")
        strategy = form.get("Strategy", "")
        if not name:
            return Refusal(
                400, "MissingParameter", "The request must contain the parameter groupName"
            )
        if len(name) > 255 or not name.isascii():
            return Refusal(
                400,
                "InvalidParameterValue",
                f"Value ({name}) for parameter groupName is invalid. "
                "Up to 255 ASCII characters are allowed.",
            )
        if strategy not in STRATEGIES:
            return Refusal(
                400,
                "InvalidParameterValue",
                f"Value ({strategy}) for parameter strategy is invalid. "
                f"Valid values: {', '.join(STRATEGIES)}",
            )
        partitions = form.get("PartitionCount")
        if partitions is not None and strategy != "partition":
            return Refusal(
                400,
                "InvalidParameterCombination",
                "PartitionCount is valid only for the partition placement strategy.",
            )
        if (region, name) in self.groups:
            return Refusal(
                400,
                "InvalidPlacementGroup.Duplicate",
                f"The placement group '{name}' already exists.",
            )
        tags: dict[str, str] = {}
        for spec in _indexed(form, "TagSpecification"):
            kind = spec.get("ResourceType", "")
            if kind != "placement-group":
                return Refusal(
                    400,
                    "InvalidParameterValue",
                    f"'{kind}' is not a valid taggable resource type for this operation.",
                )
            for tag in _indexed(spec, "Tag"):
                tags[tag.get("Key", "")] = tag.get("Value", "")
        group = PlacementGroup(
            name=name,
            group_id=f"pg-{next(self._ids):017x}",
            strategy=strategy,
            region=region,
            tags=tags,
            partition_count=int(partitions) if partitions else None,
        )
        self.groups[(region, name)] = group
        return _response(
            "CreatePlacementGroup", f"<placementGroup>{_group_xml(group)}</placementGroup>"
        )

    def _delete(self, form: Mapping[str, str], region: str) -> str | Refusal:
        name = form.get("GroupName", "")
        if not name:
            return Refusal(
                400, "MissingParameter", "The request must contain the parameter groupName"
            )
        group = self.groups.get((region, name))
        if group is None:
            return _unknown(name)
        if any(self._alive(region, i) for i in group.members):
            return Refusal(
                400,
                "InvalidPlacementGroup.InUse",
                f"The placement group '{name}' is in use and may not be deleted.",
            )
        del self.groups[(region, name)]
        return _response("DeletePlacementGroup", "<return>true</return>")

    def _describe(self, form: Mapping[str, str], region: str) -> str | Refusal:
        names = [v for k, v in form.items() if re.fullmatch(r"GroupName\.\d+", k)]
        ids = [v for k, v in form.items() if re.fullmatch(r"GroupId\.\d+", k)]
        groups = [g for (where, _), g in sorted(self.groups.items()) if where == region]
        for name in names:
            if not any(g.name == name for g in groups):
                return _unknown(name)
        if names:
            groups = [g for g in groups if g.name in names]
        if ids:
            groups = [g for g in groups if g.group_id in ids]
        for spec in _indexed(form, "Filter"):
            values = [v for k, v in spec.items() if k.startswith("Value.")]
            groups = [g for g in groups if _filter_value(g, spec.get("Name", "")) in values]
        items = "".join(f"<item>{_group_xml(g)}</item>" for g in groups)
        return _response(
            "DescribePlacementGroups", f"<placementGroupSet>{items}</placementGroupSet>"
        )


def _filter_value(group: PlacementGroup, name: str) -> str | None:
    if name.startswith("tag:"):
        return group.tags.get(name[4:])
    return {
        "group-name": group.name,
        "group-id": group.group_id,
        "strategy": group.strategy,
        "state": "available",
    }.get(name)


def _unknown(name: str) -> Refusal:
    return Refusal(
        400, "InvalidPlacementGroup.Unknown", f"The placement group '{name}' is unknown."
    )


def _indexed(form: Mapping[str, str], prefix: str) -> list[dict[str, str]]:
    """`Prefix.N.Rest=v` query parameters as one dict {Rest: v} per N, in N's order."""
    found: dict[int, dict[str, str]] = {}
    for key, value in form.items():
        match = re.fullmatch(rf"{prefix}\.(\d+)\.(.+)", key)
        if match:
            found.setdefault(int(match.group(1)), {})[match.group(2)] = value
    return [found[n] for n in sorted(found)]


def _group_xml(group: PlacementGroup) -> str:
    tags = "".join(
        f"<item><key>{escape(k)}</key><value>{escape(v)}</value></item>"
        for k, v in sorted(group.tags.items())
    )
    partitions = (
        f"<partitionCount>{group.partition_count}</partitionCount>" if group.partition_count else ""
    )
    return (
        f"<groupName>{escape(group.name)}</groupName><state>available</state>"
        f"<strategy>{group.strategy}</strategy>{partitions}<groupId>{group.group_id}</groupId>"
        f"<tagSet>{tags}</tagSet>"
        f"<groupArn>arn:aws:ec2:{group.region}:123456789012:placement-group/"
        f"{escape(group.name)}</groupArn>"
    )


def _response(action: str, inner: str) -> str:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<{action}Response xmlns="{_XMLNS}">'
        f"<requestId>{uuid.uuid4()}</requestId>{inner}</{action}Response>"
    )


def error_body(code: str, message: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Response><Errors><Error><Code>{code}</Code><Message>{escape(message)}</Message>"
        f"</Error></Errors><RequestID>{uuid.uuid4()}</RequestID></Response>"
    )
