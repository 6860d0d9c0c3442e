"""What keeps a cluster busy besides its jobs: open sessions and GPU load, behind small Protocols.

The autostop service asks these per instance. The local implementations look at this host;
cloud and ssh instances need a probe that asks the instance itself (over SSH), which the
runner's owner can add behind the same Protocols.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from pathlib import Path
from typing import Protocol

from skyd.providers.base import TAG_CLUSTER
from skyd.store.records import InstanceRecord

# Set in the environment of every interactive session opened into a cluster (and of its jobs),
# so that the session's processes can be recognised without knowing how they were started.
SESSION_ENV = "SKYD_CLUSTER"


class ActivityProbe(Protocol):
    async def active_sessions(self, instance: InstanceRecord) -> int:
        """How many interactive sessions (e.g. SSH logins) are open on the instance now."""
        ...


class GpuProbe(Protocol):
    async def utilization(self, instance: InstanceRecord) -> float | None:
        """The busiest GPU's utilization in percent, or None when it cannot be measured."""
        ...


class NoSessions:
    """For instances whose sessions cannot be seen: only jobs (and GPUs) count."""

    async def active_sessions(self, instance: InstanceRecord) -> int:
        return 0


class NoGpuReading:
    async def utilization(self, instance: InstanceRecord) -> float | None:
        return None


class LocalSessionProbe:
    """Counts live processes on this host whose environment says they belong to the cluster.

    Reads `/proc/<pid>/environ`; processes of other users are only visible when the daemon
    runs as root (which it does on a server), otherwise they are not counted.
    """

    def __init__(self, proc_root: Path = Path("/proc")) -> None:
        self._proc = proc_root

    async def active_sessions(self, instance: InstanceRecord) -> int:
        cluster = instance.tags.get(TAG_CLUSTER)
        if not cluster:
            return 0
        return await asyncio.to_thread(self._count, f"{SESSION_ENV}={cluster}".encode())

    def _count(self, marker: bytes) -> int:
        found = 0
        own = os.getpid()
        try:
            entries = list(self._proc.iterdir())
        except OSError:
            return 0
        for entry in entries:
            if not entry.name.isdigit() or int(entry.name) == own:
                continue
            try:
                environ = (entry / "environ").read_bytes()
            except OSError:  # gone meanwhile, or another user's process
                continue
            if marker in environ.split(b"\0"):
                found += 1
        return found


class NvidiaSmiProbe:
    """GPU utilization on this host from `nvidia-smi`; None without a driver or GPUs."""

    def __init__(self, timeout_seconds: float = 10.0) -> None:
        self._timeout = timeout_seconds

    async def utilization(self, instance: InstanceRecord) -> float | None:
        binary = shutil.which("nvidia-smi")
        if binary is None:
            return None
        try:
            proc = await asyncio.create_subprocess_exec(
                binary,
                "--query-gpu=utilization.gpu",
                "--format=csv,noheader,nounits",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
            )
        except OSError:
            return None
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), self._timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            return None
        return parse_utilization(out.decode(errors="replace"))


def parse_utilization(text: str) -> float | None:
    """The highest of nvidia-smi's per-GPU percentages; None when there are none."""
    values: list[float] = []
    for line in text.splitlines():
        with contextlib.suppress(ValueError):
            values.append(float(line.strip()))
    return max(values) if values else None
