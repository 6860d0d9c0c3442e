"""Typed settings of the ssh provider: the lab machines of the pool, validated when built.

In the daemon's config file (parsed by SshProviderConfig.from_mapping):

    [ssh]
    probe_timeout_s = 5
    down_after_failures = 2

    [[ssh.hosts]]
    name = "gpu-box-1"
    host = "gpu-box-1.lab.example.org"
    user = "skyd"
    key_path = "/var/lib/skyd/.ssh/id_ed25519"
    known_hosts = "/var/lib/skyd/.ssh/known_hosts"
    cpus = 64
    memory_gib = 512
    gpus = { A100 = 4 }
    max_jobs = 4
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skyd.providers.settings import reject_duplicates, reject_unknown

# Host names become zones, instance-id parts and file names: keep them plain.
_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_GPU = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


@dataclass(frozen=True, slots=True)
class SshHost:
    """One lab machine: how to reach it and what it offers to skyd's jobs.

    `known_hosts` None uses the daemon user's ~/.ssh/known_hosts; host keys are always
    checked. `remote_root` is relative to the remote user's home unless absolute.
    """

    name: str
    host: str
    user: str
    key_path: Path
    port: int = 22
    known_hosts: Path | None = None
    cpus: float = 1.0
    memory_gib: float = 1.0
    gpus: Mapping[str, int] = field(default_factory=dict)
    max_jobs: int = 1
    hourly_price_micros: int = 0
    remote_root: str = ".skyd"
    python: str = "python3"

    def __post_init__(self) -> None:
        where = f"ssh.hosts[{self.name!r}]"
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise ValueError(
                f"{where}.name must be lowercase letters, digits and '-' (at most 63), "
                "starting with a letter or digit, e.g. 'gpu-box-1'"
            )
        if not self.host:
            raise ValueError(f"{where}.host is required: the machine's address or DNS name")
        if not self.user:
            raise ValueError(f"{where}.user is required: the account skyd logs in as")
        if not 0 < self.port < 65536:
            raise ValueError(f"{where}.port must be 1..65535, got {self.port!r}")
        if self.cpus <= 0 or self.memory_gib <= 0:
            raise ValueError(
                f"{where}.cpus and .memory_gib must be > 0, got {self.cpus!r} and "
                f"{self.memory_gib!r}"
            )
        if self.max_jobs < 1:
            raise ValueError(
                f"{where}.max_jobs must be >= 1 concurrent jobs, got {self.max_jobs!r}"
            )
        if self.hourly_price_micros < 0:
            raise ValueError(
                f"{where}.hourly_price_micros must be >= 0, got {self.hourly_price_micros!r}"
            )
        for gpu, count in self.gpus.items():
            if not _GPU.fullmatch(gpu):
                raise ValueError(f"{where}.gpus: {gpu!r} is not a GPU name; write e.g. A100 = 4")
            if not isinstance(count, int) or count < 1:
                raise ValueError(f"{where}.gpus.{gpu} must be a whole count >= 1, got {count!r}")
        if not self.remote_root or any(c in self.remote_root for c in "'\"\n"):
            raise ValueError(
                f"{where}.remote_root must be a plain path without quotes, got {self.remote_root!r}"
            )

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> SshHost:
        """Build from one `[[ssh.hosts]]` table of the config file; errors name the field."""
        name = raw.get("name", "?")
        reject_unknown(raw, set(cls.__dataclass_fields__), f"ssh.hosts[{name!r}]")
        for required in ("name", "host", "user", "key_path"):
            if required not in raw:
                raise ValueError(f"ssh.hosts[{name!r}].{required} is required")
        values = dict(raw)
        values["key_path"] = Path(values["key_path"]).expanduser()
        if values.get("known_hosts") is not None:
            values["known_hosts"] = Path(values["known_hosts"]).expanduser()
        gpus = values.get("gpus", {})
        if not isinstance(gpus, Mapping):
            raise ValueError(f"ssh.hosts[{name!r}].gpus must be a table like {{ A100 = 4 }}")
        values["gpus"] = dict(gpus)
        return cls(**values)


@dataclass(frozen=True, slots=True)
class SshProviderConfig:
    """The pool: its hosts, where held capacity is recorded, and how hard to probe."""

    hosts: Sequence[SshHost]
    state_dir: Path
    probe_timeout_s: float = 5.0
    # Consecutive failed probes before a host is declared down and its jobs recovered.
    down_after_failures: int = 2
    kill_grace_s: float = 5.0

    def __post_init__(self) -> None:
        reject_duplicates([h.name for h in self.hosts], "ssh.hosts", "host")
        if self.probe_timeout_s <= 0:
            raise ValueError(
                f"ssh.probe_timeout_s must be > 0 seconds, got {self.probe_timeout_s!r}"
            )
        if self.down_after_failures < 1:
            raise ValueError(
                f"ssh.down_after_failures must be >= 1, got {self.down_after_failures!r}"
            )
        if self.kill_grace_s < 0:
            raise ValueError(f"ssh.kill_grace_s must be >= 0 seconds, got {self.kill_grace_s!r}")

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], state_dir: Path) -> SshProviderConfig:
        """Build from the config file's `[ssh]` table (hosts as `[[ssh.hosts]]`)."""
        reject_unknown(
            raw,
            {"hosts", "probe_timeout_s", "down_after_failures", "kill_grace_s", "enabled"},
            "ssh",
        )
        hosts = raw.get("hosts", [])
        if not isinstance(hosts, Sequence) or isinstance(hosts, str):
            raise ValueError("ssh.hosts must be a list of [[ssh.hosts]] tables")
        settings = {k: v for k, v in raw.items() if k not in ("hosts", "enabled")}
        return cls(
            hosts=tuple(SshHost.from_mapping(h) for h in hosts), state_dir=state_dir, **settings
        )

    def host(self, name: str) -> SshHost | None:
        return next((h for h in self.hosts if h.name == name), None)
