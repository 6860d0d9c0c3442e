"""Slots on this host as instances; held slots are files, so they survive a daemon restart."""

from __future__ import annotations

import fcntl
import json
import math
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from skyd.clock import Clock
from skyd.errors import CapacityError, ProviderError
from skyd.model import Instance, InstanceState, LaunchRequest, Offer

LOCAL_CLOUD = "local"


def detect_gpus() -> tuple[str, int]:
    """(accelerator name, count) of NVIDIA GPUs visible here; ("", 0) when none or no driver."""
    if shutil.which("nvidia-smi") is None:
        return "", 0
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return "", 0
    names = [line.strip() for line in out.splitlines() if line.strip()]
    if not names:
        return "", 0
    # "NVIDIA A100-SXM4-80GB" → "A100"; good enough to match catalog names for a lab box
    model = names[0].removeprefix("NVIDIA ").split()[0].split("-")[0].upper()
    return model, len(names)


def total_memory_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / (1024 * 1024), 1)
    except OSError:
        pass
    return 0.0


def node_instance_id(client_token: str, rank: int, nodes: int) -> str:
    """A slot's id: `local-TOKEN` for a one-node job (as before gangs), `local-TOKEN-RANK`."""
    return f"local-{client_token}" if nodes == 1 else f"local-{client_token}-{rank}"


class LocalProvider:
    name = LOCAL_CLOUD

    def __init__(
        self,
        slots_dir: Path,
        clock: Clock,
        *,
        slots: int = 0,
        gpus: int = -1,
    ) -> None:
        self._dir = slots_dir
        self._dir.mkdir(parents=True, exist_ok=True)
        self._clock = clock
        self.slots = slots or (os.cpu_count() or 1)
        gpu_name, gpu_count = detect_gpus() if gpus < 0 else ("GPU", gpus)
        self._offer = Offer(
            cloud=LOCAL_CLOUD,
            region=LOCAL_CLOUD,
            zone="",
            instance_type="localhost",
            accelerator_name=gpu_name if gpu_count else "",
            accelerator_count=gpu_count,
            # the CPUs a task may ask for here: this host's, or fewer slots if so configured
            vcpus=float(min(os.cpu_count() or 1, self.slots)),
            memory_gib=total_memory_gib(),
            price_micros=0,
            spot_price_micros=None,
        )

    def offers(self) -> Sequence[Offer]:
        return [self._offer]

    def _slot_path(self, instance_id: str) -> Path:
        return self._dir / f"{instance_id}.json"

    def held(self) -> list[str]:
        return sorted(p.stem for p in self._dir.glob("local-*.json"))

    def _records(self) -> dict[str, dict[str, Any]]:
        records: dict[str, dict[str, Any]] = {}
        for iid in self.held():
            try:
                records[iid] = json.loads(self._slot_path(iid).read_text())
            except (FileNotFoundError, json.JSONDecodeError):
                continue  # released, or still being written by a racing launch
        return records

    def _free_slot_numbers(self) -> list[int]:
        """Slot numbers no held node has. A slot file from before CPU requests holds one
        slot without a number: it takes the last free number out of the count."""
        numbered: set[int] = set()
        unnumbered = 0
        for record in self._records().values():
            if "slots" in record:
                numbered.update(int(n) for n in record["slots"])
            else:
                unnumbered += 1
        free = [n for n in range(self.slots) if n not in numbered]
        return free[: max(0, len(free) - unnumbered)]

    def free_slots(self) -> int:
        return len(self._free_slot_numbers())

    def free_memory_gib(self) -> float:
        """This host's memory less what held slots asked for (`memory:` of their tasks)."""
        held = sum(float(r.get("memory_gib") or 0.0) for r in self._records().values())
        return self._offer.memory_gib - held

    def no_room_for(self, cpus: float | None, memory_gib: float | None, nodes: int) -> str | None:
        """Why a task asking this much per node cannot start here now although it fits this
        host (None: it can, or it never fits, which placement says)."""
        slots = max(1, math.ceil(cpus)) if cpus else 1
        free = self.free_slots()
        if slots * nodes > self.slots or (memory_gib or 0.0) * nodes > self._offer.memory_gib:
            return None  # never here (a gang bigger than this host): the launch says so
        if slots * nodes > free:
            return (
                f"local has {free} of {self.slots} slots free; the task holds {slots * nodes} "
                "(one per CPU asked, per node)"
            )
        memory = (memory_gib or 0.0) * nodes
        if memory > self.free_memory_gib():
            return (
                f"local has {max(0.0, self.free_memory_gib()):.1f} GiB not held by other jobs; "
                f"the task asks {memory:g}"
            )
        return None

    def pinned_cpus(self, instance_id: str) -> list[int] | None:
        """The CPUs a slot's process is pinned to: one per slot it holds, for a task that
        asked `cpus:`; None when it asked for none (the process may use every CPU)."""
        try:
            record = json.loads(self._slot_path(instance_id).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        if record.get("cpus") is None or not record.get("slots"):
            return None
        count = os.cpu_count() or 1
        return sorted({int(s) % count for s in record["slots"]})

    def max_nodes(self, offer: Offer) -> int | None:
        """The most nodes one job can have here: every slot of this host."""
        return self.slots

    async def launch(self, request: LaunchRequest) -> list[Instance]:
        """Hold `num_nodes` nodes, all or none, each `ceil(cpus)` slots (one slot per CPU
        the task asks for; one when it asks for none) and its `memory`; a retry with the
        same token finds the ones it holds."""
        nodes = max(1, request.num_nodes)
        ids = [node_instance_id(request.client_token, rank, nodes) for rank in range(nodes)]
        per_node = max(1, math.ceil(request.cpus)) if request.cpus else 1
        memory = request.memory_gib or 0.0
        # the lock makes choosing slot numbers and writing them one step (two daemons,
        # or a racing retry, cannot take the same slots)
        with open(self._dir / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            missing = [iid for iid in ids if not self._slot_path(iid).exists()]
            free = self._free_slot_numbers()
            if per_node * len(missing) > len(free):
                raise CapacityError(
                    f"{nodes} local node(s) of {per_node} slot(s) asked, {len(free)} "
                    f"free of {self.slots}",
                    scope=LOCAL_CLOUD,
                )
            if memory * len(missing) > self.free_memory_gib():
                raise CapacityError(
                    f"{nodes} local node(s) of {memory:g} GiB asked, "
                    f"{max(0.0, self.free_memory_gib()):.1f} GiB of "
                    f"{self._offer.memory_gib:g} not held by other jobs",
                    scope=LOCAL_CLOUD,
                )
            for n, iid in enumerate(missing):
                record = {
                    "tags": request.tags,
                    "launched_at": self._clock.now(),
                    "slots": free[n * per_node : (n + 1) * per_node],
                    "cpus": request.cpus,
                    "memory_gib": request.memory_gib,
                }
                try:
                    fd = os.open(self._slot_path(iid), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                except FileExistsError:  # written by a launch that did not lock (older skyd)
                    continue
                with os.fdopen(fd, "w") as fh:
                    json.dump(record, fh)
        return [self._instance(iid) for iid in ids]

    def _instance(self, instance_id: str) -> Instance:
        data = json.loads(self._slot_path(instance_id).read_text())
        return Instance(
            instance_id=instance_id,
            provider=self.name,
            cloud=LOCAL_CLOUD,
            region=LOCAL_CLOUD,
            zone="",
            instance_type="localhost",
            spot=False,
            state=InstanceState.RUNNING,
            tags=dict(data.get("tags", {})),
            private_ip="127.0.0.1",
            launched_at=data.get("launched_at"),
        )

    async def describe(
        self, instance_ids: Sequence[str] | None = None, tags: Mapping[str, str] | None = None
    ) -> dict[str, InstanceState]:
        result: dict[str, InstanceState] = {}
        held = set(self.held())
        if instance_ids is not None:
            for iid in instance_ids:
                result[iid] = InstanceState.RUNNING if iid in held else InstanceState.TERMINATED
            return result
        for iid in held:
            inst = self._instance(iid)
            if tags is None or all(inst.tags.get(k) == v for k, v in tags.items()):
                result[iid] = InstanceState.RUNNING
        return result

    async def instances(self, tags: Mapping[str, str]) -> list[Instance]:
        found = [self._instance(iid) for iid in self.held()]
        return [i for i in found if all(i.tags.get(k) == v for k, v in tags.items())]

    async def stop(self, instance_ids: Sequence[str]) -> None:
        raise ProviderError("the local provider cannot stop a slot; terminate it", scope=None)

    async def start(self, instance_ids: Sequence[str]) -> None:
        raise ProviderError("the local provider cannot start a stopped slot", scope=None)

    async def terminate(self, instance_ids: Sequence[str]) -> None:
        for iid in instance_ids:
            self._slot_path(iid).unlink(missing_ok=True)

    async def aclose(self) -> None:
        return None
