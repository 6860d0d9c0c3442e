"""SkyPilot's command-line overrides (`--env`, `--secret`, `--gpus`, `--cloud`, …) applied to a
task file's fields before they are checked, so a bad override is reported like a bad field."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from skyd.spec.yaml_source import SourceMap

LOCATION_KEYS = ("infra", "cloud", "region", "zone")


class Overrides(BaseModel):
    """What `skyctl submit|launch|optimize` options replace in every stage of a task file.

    Values are as typed (`gpus: "A100:8"`, `memory: "32+"`); envs and secrets are already
    resolved by skyctl (`--env KEY` takes the submitter's value of KEY).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    envs: dict[str, str] = Field(default_factory=dict)
    secrets: dict[str, str] = Field(default_factory=dict)
    gpus: str | None = None
    cpus: str | None = None
    memory: str | None = None
    infra: str | None = None
    cloud: str | None = None
    region: str | None = None
    zone: str | None = None
    num_nodes: int | None = None
    use_spot: bool | None = None
    name: str | None = None
    workdir: str | None = None

    def resources(self) -> dict[str, Any]:
        """The resources fields these overrides set, under the task file's names."""
        fields: dict[str, Any] = {
            "accelerators": self.gpus,
            "cpus": self.cpus,
            "memory": self.memory,
            "use_spot": self.use_spot,
        }
        fields.update({key: getattr(self, key) for key in LOCATION_KEYS})
        return {key: value for key, value in fields.items() if value is not None}


OPTION_OF = {
    "accelerators": "--gpus",
    "cpus": "--cpus",
    "memory": "--memory",
    "use_spot": "--use-spot/--no-use-spot",
    "infra": "--infra",
    "cloud": "--cloud",
    "region": "--region",
    "zone": "--zone",
}


def apply_overrides(data: dict[str, Any], overrides: Overrides, sources: SourceMap) -> None:
    """Write the overrides into one document's fields (in place), noting in `sources` which
    option set each, so errors name `--gpus` rather than a line of the file."""
    if overrides.name is not None:
        data["name"] = overrides.name
        sources.options["name"] = "--name"
    if overrides.workdir is not None:
        data["workdir"] = overrides.workdir
        sources.options["workdir"] = "--workdir"
    if overrides.num_nodes is not None:
        data["num_nodes"] = overrides.num_nodes
        sources.options["num_nodes"] = "--num-nodes"
    for section, values, option in (
        ("envs", overrides.envs, "--env"),
        ("secrets", overrides.secrets, "--secret"),
    ):
        if not values:
            continue
        current = data.get(section)
        merged = dict(current) if isinstance(current, Mapping) else {}
        merged.update(values)
        data[section] = merged
        for key in values:
            sources.options[f"{section}.{key}"] = f"{option} {key}"
    wanted = overrides.resources()
    if not wanted:
        return
    current = data.get("resources")
    resources = dict(current) if isinstance(current, Mapping) else {}
    if any(key in wanted for key in LOCATION_KEYS):
        # a new location replaces the file's whole location, as SkyPilot's --infra does
        for key in LOCATION_KEYS:
            resources.pop(key, None)
    resources.update(wanted)
    for key in ("any_of", "ordered", "candidates"):
        alternatives = resources.get(key)
        if isinstance(alternatives, list):
            resources[key] = [_without(item, wanted) for item in alternatives]
    data["resources"] = resources
    for key in wanted:
        sources.options[f"resources.{key}"] = OPTION_OF[key]


def _without(item: object, wanted: Mapping[str, Any]) -> object:
    """An alternative minus the fields an override sets for the whole task."""
    if not isinstance(item, Mapping):
        return item
    drop = set(wanted)
    if drop & set(LOCATION_KEYS):
        drop |= set(LOCATION_KEYS)
    return {key: value for key, value in item.items() if key not in drop}
