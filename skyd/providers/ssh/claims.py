"""Capacity held on lab machines, one small JSON file per instance so a restart keeps the counts."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class Claim:
    """One instance: a job slot (and maybe GPUs) held on one host.

    `lost` is set once the host stopped answering while the instance ran; it stays set
    (the instance reports PREEMPTED) until the core terminates it, even if the host
    comes back, so the core sees one consistent story.
    """

    instance_id: str
    host: str
    token: str
    rank: int
    instance_type: str
    spot: bool
    gpu_name: str
    gpu_count: int
    launched_at: float
    tags: Mapping[str, str] = field(default_factory=dict)
    stopped: bool = False
    lost: bool = False
    cpus: float = 0.0  # the task's `cpus:` / `memory:` held on the host (0: it asked none)
    memory_gib: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "instance_id": self.instance_id,
            "host": self.host,
            "token": self.token,
            "rank": self.rank,
            "instance_type": self.instance_type,
            "spot": self.spot,
            "gpu_name": self.gpu_name,
            "gpu_count": self.gpu_count,
            "launched_at": self.launched_at,
            "tags": dict(self.tags),
            "stopped": self.stopped,
            "lost": self.lost,
            "cpus": self.cpus,
            "memory_gib": self.memory_gib,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Claim:
        return cls(
            instance_id=str(data["instance_id"]),
            host=str(data["host"]),
            token=str(data["token"]),
            rank=int(data["rank"]),
            instance_type=str(data["instance_type"]),
            spot=bool(data["spot"]),
            gpu_name=str(data["gpu_name"]),
            gpu_count=int(data["gpu_count"]),
            launched_at=float(data["launched_at"]),
            tags={str(k): str(v) for k, v in dict(data.get("tags", {})).items()},
            stopped=bool(data.get("stopped", False)),
            lost=bool(data.get("lost", False)),
            cpus=float(data.get("cpus", 0.0)),
            memory_gib=float(data.get("memory_gib", 0.0)),
        )


_UNSAFE = re.compile(r"[^a-z0-9-]+")


def instance_id_for(host: str, token: str, rank: int) -> str:
    """Readable and unique: the host, the token as far as it is file-name safe, a hash of it."""
    safe = _UNSAFE.sub("-", token.lower()).strip("-")[:40] or "t"
    digest = hashlib.sha256(token.encode()).hexdigest()[:8]
    return f"ssh-{host}-{safe}-{digest}-{rank}"


class ClaimStore:
    """The claims directory, read once and then kept in memory (one daemon owns it).

    Writes go to disk first (temp file + fsync + rename), then to memory, so what a
    restarted daemon reads back is exactly what was acknowledged.
    """

    def __init__(self, directory: Path) -> None:
        self._dir = directory
        self._dir.mkdir(parents=True, exist_ok=True)
        self._claims: dict[str, Claim] = {}
        for path in sorted(self._dir.glob("ssh-*.json")):
            with contextlib.suppress(FileNotFoundError):
                claim = Claim.from_json(json.loads(path.read_text()))
                self._claims[claim.instance_id] = claim

    def _path(self, instance_id: str) -> Path:
        return self._dir / f"{instance_id}.json"

    def get(self, instance_id: str) -> Claim | None:
        return self._claims.get(instance_id)

    def all(self) -> Iterator[Claim]:
        return iter(list(self._claims.values()))

    def with_token(self, token: str) -> list[Claim]:
        return sorted((c for c in self._claims.values() if c.token == token), key=lambda c: c.rank)

    def put(self, claim: Claim) -> None:
        path = self._path(claim.instance_id)
        tmp = path.with_suffix(".json.tmp")
        with open(tmp, "w") as fh:
            json.dump(claim.to_json(), fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        self._claims[claim.instance_id] = claim

    def update(self, claim: Claim, **changes: Any) -> Claim:
        updated = replace(claim, **changes)
        self.put(updated)
        return updated

    def remove(self, instance_id: str) -> None:
        if self._claims.pop(instance_id, None) is not None:
            self._path(instance_id).unlink(missing_ok=True)


class PendingKills:
    """Instances released while their host did not answer: their remote process groups are
    killed when the host answers again, so a machine that comes back runs nothing unpaid-for."""

    def __init__(self, directory: Path) -> None:
        self._dir = directory
        self._dir.mkdir(parents=True, exist_ok=True)

    def add(self, host: str, instance_id: str) -> None:
        path = self._dir / f"{instance_id}.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps({"host": host, "instance_id": instance_id}))
        os.replace(tmp, path)

    def for_host(self, host: str) -> list[str]:
        found = []
        for path in sorted(self._dir.glob("ssh-*.json")):
            with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
                data = json.loads(path.read_text())
                if data.get("host") == host:
                    found.append(str(data["instance_id"]))
        return found

    def hosts(self) -> set[str]:
        hosts = set()
        for path in self._dir.glob("ssh-*.json"):
            with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
                hosts.add(str(json.loads(path.read_text()).get("host")))
        return hosts

    def done(self, instance_id: str) -> None:
        (self._dir / f"{instance_id}.json").unlink(missing_ok=True)
