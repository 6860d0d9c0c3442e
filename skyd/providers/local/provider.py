"""Slots on this host as instances; held slots are files, so they survive a daemon restart."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

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
            vcpus=float(os.cpu_count() or 1),
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

    def free_slots(self) -> int:
        return self.slots - len(self.held())

    def max_nodes(self, offer: Offer) -> int | None:
        """The most nodes one job can have here: every slot of this host."""
        return self.slots

    async def launch(self, request: LaunchRequest) -> list[Instance]:
        """Hold `num_nodes` slots, all or none: a launch that cannot get every slot gives
        back the ones it took (a retry with the same token finds the ones it holds)."""
        nodes = max(1, request.num_nodes)
        ids = [node_instance_id(request.client_token, rank, nodes) for rank in range(nodes)]
        missing = [iid for iid in ids if not self._slot_path(iid).exists()]
        if len(missing) > self.free_slots():
            raise CapacityError(
                f"{nodes} local slot(s) asked, {self.free_slots() + nodes - len(missing)} "
                f"free of {self.slots}",
                scope=LOCAL_CLOUD,
            )
        record = {"tags": request.tags, "launched_at": self._clock.now()}
        taken: list[str] = []
        for iid in missing:
            # O_EXCL: a concurrent or retried launch with the same token cannot take two slots
            try:
                fd = os.open(self._slot_path(iid), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                continue
            with os.fdopen(fd, "w") as fh:
                json.dump(record, fh)
            taken.append(iid)
        if len(self.held()) > self.slots:  # another launch raced this one for the last slots
            await self.terminate(taken)
            raise CapacityError(f"all {self.slots} local slots are busy", scope=LOCAL_CLOUD)
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
