"""Slurm's text output read into records (pure): nodes from sinfo, jobs from squeue, tags.

The commands are asked for `|`-separated fields (`-O Field:|,...`), a format Slurm has
kept stable for many releases, unlike its JSON output whose schema changes by version.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from skyd.model import InstanceState

SINFO_FIELDS = ("NodeList", "PartitionName", "CPUs", "Memory", "Gres", "StateLong", "Available")
SQUEUE_FIELDS = (
    "JobID",
    "Name",
    "State",
    "RestartCnt",
    "NumNodes",
    "Partition",
    "NodeList",
    "Reason",
    "Comment",
)


def format_option(fields: tuple[str, ...]) -> str:
    """The `-O` argument asking for `fields`, each followed by '|'."""
    return ",".join(f"{name}:|" for name in fields)


@dataclass(frozen=True, slots=True)
class SlurmNode:
    """One node as one partition sees it."""

    name: str
    partition: str
    cpus: int
    memory_mb: int
    gpus: Mapping[str, int]  # GRES gpu type ("" when untyped) → count
    state: str
    partition_up: bool

    @property
    def usable(self) -> bool:
        """Up and taking jobs: not down, drained, failing or powered off."""
        bad = ("down", "drain", "fail", "maint", "power", "reserved", "inval", "unk", "futur")
        return self.partition_up and not any(word in self.state for word in bad)


@dataclass(frozen=True, slots=True)
class SlurmJob:
    job_id: str
    name: str
    state: str
    restarts: int
    num_nodes: int
    partition: str
    nodes: str
    reason: str
    tags: Mapping[str, str]


_GRES_SOCKETS = re.compile(r"\([^)]*\)")


def parse_gres(text: str) -> dict[str, int]:
    """`gpu:a100:4(S:0-1),gpu:v100:2` → {"a100": 4, "v100": 2}; `gpu:2` → {"": 2}."""
    gpus: dict[str, int] = {}
    for item in _GRES_SOCKETS.sub("", text).split(","):
        parts = item.strip().split(":")
        if len(parts) < 2 or parts[0] != "gpu":
            continue
        count = parts[-1]
        kind = parts[1] if len(parts) >= 3 else ""
        if count.isdigit() and int(count) > 0:
            gpus[kind] = gpus.get(kind, 0) + int(count)
    return gpus


def _fields(line: str, count: int) -> list[str] | None:
    parts = line.split("|")
    if len(parts) < count:
        return None
    return [p.strip() for p in parts[:count]]


def parse_sinfo(text: str) -> list[SlurmNode]:
    """Lines of `sinfo -h -N -O <SINFO_FIELDS>`; lines that do not fit are skipped."""
    nodes = []
    for line in text.splitlines():
        parts = _fields(line, len(SINFO_FIELDS))
        if parts is None:
            continue
        name, partition, cpus, memory, gres, state, available = parts
        if not cpus.isdigit():
            continue
        nodes.append(
            SlurmNode(
                name=name,
                partition=partition.rstrip("*"),
                cpus=int(cpus),
                memory_mb=int(memory) if memory.isdigit() else 0,
                gpus=parse_gres(gres),
                state=state.lower(),
                partition_up=available.lower() == "up",
            )
        )
    return nodes


def parse_squeue(text: str) -> list[SlurmJob]:
    """Lines of `squeue -h -O <SQUEUE_FIELDS>`; the comment is last, so it may hold '|'."""
    jobs = []
    for line in text.splitlines():
        parts = line.split("|")
        if len(parts) < len(SQUEUE_FIELDS):
            continue
        head = [p.strip() for p in parts[: len(SQUEUE_FIELDS) - 1]]
        comment = "|".join(parts[len(SQUEUE_FIELDS) - 1 :]).rstrip("|").strip()
        job_id, name, state, restarts, num_nodes, partition, nodes, reason = head
        jobs.append(
            SlurmJob(
                job_id=job_id,
                name=name,
                state=state.upper(),
                restarts=int(restarts) if restarts.isdigit() else 0,
                num_nodes=int(num_nodes) if num_nodes.isdigit() else 1,
                partition=partition,
                nodes=nodes,
                reason=reason,
                tags=decode_tags(comment),
            )
        )
    return jobs


def encode_tags(tags: Mapping[str, str]) -> str:
    """skyd's tags as a job comment: `k=v,k=v` (keys and values never hold ',' or '=')."""
    for key, value in tags.items():
        if any(c in key + value for c in ",=| \n'\""):
            raise ValueError(f"tag {key}={value} cannot be written into a Slurm comment")
    return ",".join(f"{k}={v}" for k, v in sorted(tags.items()))


def decode_tags(comment: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    if comment in ("", "(null)"):
        return tags
    for item in comment.split(","):
        key, sep, value = item.partition("=")
        if sep:
            tags[key.strip()] = value.strip()
    return tags


_PENDING = {
    "PENDING",
    "CONFIGURING",
    "REQUEUED",
    "REQUEUE_HOLD",
    "REQUEUE_FED",
    "RESIZING",
    "STAGE_OUT",
    "SPECIAL_EXIT",
    "RESV_DEL_HOLD",
}
_RUNNING = {"RUNNING", "COMPLETING", "SIGNALING"}
_STOPPED = {"SUSPENDED", "STOPPED"}
_LOST = {"PREEMPTED", "NODE_FAIL", "BOOT_FAIL"}


def instance_state(job: SlurmJob) -> InstanceState:
    """A Slurm job's state as an instance's. A job Slurm preempted, lost a node of, or
    requeued (restart count > 0) is PREEMPTED: that attempt is gone, and skyd recovers it
    (possibly elsewhere) rather than let Slurm silently rerun it."""
    if job.state in _LOST or job.restarts > 0:
        return InstanceState.PREEMPTED
    if job.state in _PENDING:
        return InstanceState.PENDING
    if job.state in _RUNNING:
        return InstanceState.RUNNING
    if job.state in _STOPPED:
        return InstanceState.STOPPED
    return InstanceState.TERMINATED  # COMPLETED, CANCELLED, FAILED, TIMEOUT, OUT_OF_MEMORY, …
