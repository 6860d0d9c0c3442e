"""Typed settings of the slurm provider: the lab's Slurm clusters, validated when built.

In the daemon's config file (parsed by SlurmProviderConfig.from_mapping):

    [slurm]
    command_timeout_s = 30
    squeue_cache_s = 2                 # one squeue serves every look for this long

    [[slurm.clusters]]
    name = "hpc"                       # the name in offers and `infra: slurm/hpc/<partition>`
    partitions = ["gpu", "cpu"]        # offered partitions; empty = every partition that is up
    hourly_price_micros = 0            # the lab's internal price per node-hour (default free)
    partition_prices = { gpu = 250000 }
    work_dir = ".skyd/slurm"           # on the cluster's shared filesystem; relative to $HOME
    python = "python3"
    default_time_limit_minutes = 0     # 0: the partition's own default
    # Reach the login node over SSH; without a login table the Slurm commands run on this
    # host (the daemon lives on the login node).
    [slurm.clusters.login]
    host = "login.hpc.example.org"
    user = "skyd"
    key_path = "/var/lib/skyd/.ssh/id_ed25519"
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skyd.providers.settings import reject_duplicates, reject_unknown

_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_PARTITION = re.compile(r"[A-Za-z0-9_.-]{1,64}")


@dataclass(frozen=True, slots=True)
class SlurmLogin:
    """SSH login node of a cluster (host keys are always checked)."""

    host: str
    user: str
    key_path: Path
    port: int = 22
    known_hosts: Path | None = None

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], where: str) -> SlurmLogin:
        reject_unknown(raw, {"host", "user", "key_path", "port", "known_hosts"}, where)
        for required in ("host", "user", "key_path"):
            if not raw.get(required):
                raise ValueError(f"{where}.{required} is required")
        port = raw.get("port", 22)
        if not isinstance(port, int) or not 0 < port < 65536:
            raise ValueError(f"{where}.port must be 1..65535, got {port!r}")
        known = raw.get("known_hosts")
        return cls(
            host=str(raw["host"]),
            user=str(raw["user"]),
            key_path=Path(str(raw["key_path"])).expanduser(),
            port=port,
            known_hosts=Path(str(known)).expanduser() if known else None,
        )


@dataclass(frozen=True, slots=True)
class SlurmCluster:
    """One Slurm cluster: how to reach it, which partitions skyd offers, at what price."""

    name: str
    login: SlurmLogin | None = None
    partitions: Sequence[str] = ()
    hourly_price_micros: int = 0
    partition_prices: Mapping[str, int] = field(default_factory=dict)
    work_dir: str = ".skyd/slurm"
    python: str = "python3"
    default_time_limit_minutes: int = 0

    def __post_init__(self) -> None:
        where = f"slurm.clusters[{self.name!r}]"
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise ValueError(
                f"{where}.name must be lowercase letters, digits and '-' (at most 63), e.g. 'hpc'"
            )
        for part in self.partitions:
            if not isinstance(part, str) or not _PARTITION.fullmatch(part):
                raise ValueError(f"{where}.partitions: {part!r} is not a partition name")
        prices = {"hourly_price_micros": self.hourly_price_micros, **self.partition_prices}
        for key, price in prices.items():
            if not isinstance(price, int) or price < 0:
                raise ValueError(
                    f"{where}: price {key} must be whole micro-dollars >= 0, got {price!r}"
                )
        if not self.work_dir or any(c in self.work_dir for c in "'\"\n$`"):
            raise ValueError(
                f"{where}.work_dir must be a plain path without quotes or '$', "
                f"got {self.work_dir!r}"
            )
        if self.default_time_limit_minutes < 0:
            raise ValueError(
                f"{where}.default_time_limit_minutes must be >= 0, "
                f"got {self.default_time_limit_minutes!r}"
            )

    def price_for(self, partition: str) -> int:
        return self.partition_prices.get(partition, self.hourly_price_micros)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> SlurmCluster:
        name = raw.get("name", "?")
        where = f"slurm.clusters[{name!r}]"
        reject_unknown(raw, set(cls.__dataclass_fields__), where)
        if "name" not in raw:
            raise ValueError("slurm.clusters: every cluster needs a name, e.g. name = 'hpc'")
        values = dict(raw)
        login = values.get("login")
        if login is not None:
            if not isinstance(login, Mapping):
                raise ValueError(f"{where}.login must be a table with host, user and key_path")
            values["login"] = SlurmLogin.from_mapping(login, f"{where}.login")
        partitions = values.get("partitions", ())
        if isinstance(partitions, str) or not isinstance(partitions, Sequence):
            raise ValueError(f"{where}.partitions must be a list like ['gpu', 'cpu']")
        values["partitions"] = tuple(partitions)
        prices = values.get("partition_prices", {})
        if not isinstance(prices, Mapping):
            raise ValueError(f"{where}.partition_prices must be a table like {{ gpu = 250000 }}")
        values["partition_prices"] = dict(prices)
        return cls(**values)


@dataclass(frozen=True, slots=True)
class SlurmProviderConfig:
    """Every cluster of the provider, and how long one Slurm command may take."""

    clusters: Sequence[SlurmCluster]
    command_timeout_s: float = 30.0
    # how long one squeue answer serves every look at a cluster's jobs
    squeue_cache_s: float = 2.0

    def __post_init__(self) -> None:
        reject_duplicates([c.name for c in self.clusters], "slurm.clusters", "cluster")
        if self.squeue_cache_s < 0:
            raise ValueError(f"slurm.squeue_cache_s must be >= 0, got {self.squeue_cache_s!r}")
        if self.command_timeout_s <= 0:
            raise ValueError(
                f"slurm.command_timeout_s must be > 0 seconds, got {self.command_timeout_s!r}"
            )

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> SlurmProviderConfig:
        """Build from the config file's `[slurm]` table (clusters as `[[slurm.clusters]]`)."""
        reject_unknown(raw, {"clusters", "command_timeout_s", "squeue_cache_s", "enabled"}, "slurm")
        clusters = raw.get("clusters", [])
        if isinstance(clusters, str) or not isinstance(clusters, Sequence):
            raise ValueError("slurm.clusters must be a list of [[slurm.clusters]] tables")
        for item in clusters:
            if not isinstance(item, Mapping):
                raise ValueError("slurm.clusters must be a list of [[slurm.clusters]] tables")
        numbers = {}
        for key, default in (("command_timeout_s", 30.0), ("squeue_cache_s", 2.0)):
            value = raw.get(key, default)
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise ValueError(f"slurm.{key} must be a number of seconds, got {value!r}")
            numbers[key] = float(value)
        return cls(clusters=tuple(SlurmCluster.from_mapping(c) for c in clusters), **numbers)

    def cluster(self, name: str) -> SlurmCluster | None:
        return next((c for c in self.clusters if c.name == name), None)
