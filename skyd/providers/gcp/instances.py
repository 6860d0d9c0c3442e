"""Reading GCE instance records: skyd's ZONE/NAME ids, states, timestamps, preemptions."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from skyd.model import Instance, InstanceState
from skyd.providers.gcp.errors import CLOUD, region_of

GCE_STATES = {
    "PROVISIONING": InstanceState.PENDING,
    "STAGING": InstanceState.PENDING,
    "RUNNING": InstanceState.RUNNING,
    "REPAIRING": InstanceState.RUNNING,
    "STOPPING": InstanceState.STOPPING,
    "SUSPENDING": InstanceState.STOPPING,
    "SUSPENDED": InstanceState.STOPPED,
    "TERMINATED": InstanceState.STOPPED,  # GCE's TERMINATED means stopped, not deleted
}
PREEMPTED_OPERATION = "compute.instances.preempted"


def instance_key(zone: str, name: str) -> str:
    """skyd's id of a GCE instance: zone and name, which GCE makes unique per project."""
    return f"{zone}/{name}"


def split_instance_key(key: str) -> tuple[str, str]:
    zone, sep, name = key.partition("/")
    if not sep or not zone or not name:
        raise ValueError(f"not a gcp instance id: {key!r}; expected 'ZONE/NAME' from launch()")
    return zone, name


def tail(link: str) -> str:
    return link.rsplit("/", 1)[-1]


def timestamp(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def state_of(raw: Any) -> InstanceState:
    return GCE_STATES.get(str(raw.status), InstanceState.PENDING)


def with_state(inst: Instance, state: InstanceState) -> Instance:
    return replace(inst, state=state)


def to_instance(raw: Any, provider: str, ssh_user: str) -> Instance:
    """The Instance a raw GCE record describes."""
    zone = tail(raw.zone)
    nic = raw.network_interfaces[0] if raw.network_interfaces else None
    public_ip = None
    if nic is not None and nic.access_configs:
        public_ip = nic.access_configs[0].nat_i_p or None
    return Instance(
        instance_id=instance_key(zone, raw.name),
        provider=provider,
        cloud=CLOUD,
        region=region_of(zone),
        zone=zone,
        instance_type=tail(raw.machine_type),
        spot=raw.scheduling.provisioning_model == "SPOT",
        state=state_of(raw),
        tags=dict(raw.labels),
        public_ip=public_ip,
        private_ip=(nic.network_i_p or None) if nic is not None else None,
        launched_at=timestamp(raw.creation_timestamp),
        ssh_user=ssh_user,  # the user of the ssh-keys metadata skyd writes
    )


def preemption_suspects(
    states: Mapping[str, InstanceState], raws: Mapping[str, Any]
) -> dict[str, list[str]]:
    """Per zone, the instances that may have been preempted: spot VMs stopped, or any gone."""
    suspects: dict[str, list[str]] = defaultdict(list)
    for key, state in states.items():
        raw = raws.get(key)
        spot = raw is not None and raw.scheduling.provisioning_model == "SPOT"
        if (raw is None and state == InstanceState.TERMINATED) or (
            spot and state == InstanceState.STOPPED
        ):
            suspects[split_instance_key(key)[0]].append(key)
    return suspects


def mark_preempted(
    states: dict[str, InstanceState],
    keys: Iterable[str],
    raws: Mapping[str, Any],
    preemptions: Iterable[Any],
) -> None:
    """Mark PREEMPTED each of `keys` that a preemption operation hit since it last started."""
    preemptions = list(preemptions)
    for key in keys:
        name = split_instance_key(key)[1]
        raw = raws.get(key)
        started = timestamp(raw.last_start_timestamp) if raw is not None else None
        for op in preemptions:
            if tail(op.target_link) != name:
                continue
            when = timestamp(op.insert_time)
            if started is None or when is None or when >= started:
                states[key] = InstanceState.PREEMPTED
