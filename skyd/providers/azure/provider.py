"""AzureProvider: the Provider Protocol over Azure Resource Manager (async SDK + ARM REST)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from skyd.clock import Clock, SystemClock
from skyd.errors import AuthError, ProviderError
from skyd.model import Instance, InstanceState, LaunchRequest, Offer
from skyd.providers.azure.arm import ArmConnection, as_json
from skyd.providers.azure.bodies import nsg_body, vm_body
from skyd.providers.azure.config import AzureConfig
from skyd.providers.azure.errors import CLOUD, translate_exception
from skyd.providers.azure.placement import PREFIX, ProximityGroups, group_name
from skyd.providers.azure.ports import stale_vm_names
from skyd.providers.base import launch_tags, managed_tags
from skyd.providers.tiers import wants_accelerated

# Set while skyd itself keeps a VM deallocated; a deallocated Spot VM without it was evicted.
TAG_STOPPED = "skyd-stopped"

_POWER_STATES = {
    "starting": InstanceState.PENDING,
    "running": InstanceState.RUNNING,
    "stopping": InstanceState.STOPPING,
    "deallocating": InstanceState.STOPPING,
    "stopped": InstanceState.STOPPED,
    "deallocated": InstanceState.STOPPED,
}


def instance_key(resource_group: str, name: str) -> str:
    """skyd's id of an Azure VM: resource group and VM name."""
    return f"{resource_group}/{name}"


def split_instance_key(key: str) -> tuple[str, str]:
    group, sep, name = key.partition("/")
    if not sep or not group or not name:
        raise ValueError(
            f"not an azure instance id: {key!r}; expected 'RESOURCE_GROUP/VM' from launch()"
        )
    return group, name


def vm_names(job_id: int, client_token: str, num_nodes: int) -> list[str]:
    """Stable per token: PUT on an existing name updates it, so a retry never doubles."""
    digest = hashlib.sha256(client_token.encode()).hexdigest()[:10]
    return [f"skyd-{job_id}-{digest}-{i}" for i in range(num_nodes)]


def capacity_scope(offer: Offer) -> str:
    # Azure catalogs carry no zone: a stockout blocks that size in that region only.
    return f"{CLOUD}/{offer.region}/{offer.zone}" if offer.zone else offer.key


class AzureProvider:
    """Launches Azure VMs with their own public IP and NIC, and removes all three together.

    Instance ids are `RESOURCE_GROUP/VM_NAME`. VMs go through azure-mgmt-compute's async
    client (its pollers speak the Azure-AsyncOperation protocol); NICs and public IPs go
    through the same authenticated pipeline as plain ARM REST calls, polled the same way.
    """

    name = "azure"

    def __init__(
        self,
        config: AzureConfig,
        credential: Any = None,
        clock: Clock | None = None,
        offers: Sequence[Offer] = (),
    ) -> None:
        self.config = config
        self._offers = tuple(offers)
        self.arm = ArmConnection(config, credential, clock or SystemClock())
        self.placement = ProximityGroups(config.resource_group, self.arm.compute)

    def offers(self) -> Sequence[Offer]:
        return self._offers

    async def check(self) -> str:
        """One cheap authenticated call (`skyctl check`): the resource group's VM list."""
        group = self.config.resource_group
        client = await self.arm.compute()
        try:
            async for _ in client.virtual_machines.list(group):
                break
        except Exception as exc:
            raise translate_exception(exc, None, None) from exc
        return f"virtualMachines.list in resource group {group} answered"

    # -- launch -------------------------------------------------------------------------

    def placement_note(self, request: LaunchRequest) -> str:
        if request.num_nodes < 2:
            return "no placement group: a single node needs none"
        name = group_name(request.job_id, request.client_token)
        return f"in proximity placement group {name}"

    async def launch(self, request: LaunchRequest) -> list[Instance]:
        if not self.config.ssh_public_key:
            raise AuthError(
                "azure.ssh_public_key is required to launch Linux VMs (set it in the config)",
                scope=CLOUD,
            )
        group = self.config.resource_group
        names = vm_names(request.job_id, request.client_token, request.num_nodes)
        # a gang's VMs share a proximity placement group (one datacenter, low latency)
        ppg = group_name(request.job_id, request.client_token) if len(names) > 1 else None
        if ppg is not None:
            self.placement.launching.add(ppg)
        try:
            ppg_id = await self.placement.ensure(ppg, request) if ppg else None
            outcomes = await asyncio.gather(
                *(self._launch_one(request, group, n, ppg_id) for n in names),
                return_exceptions=True,
            )
            failures = [o for o in outcomes if isinstance(o, BaseException)]
            if failures:
                # All nodes or none: remove what this call created or found for the gang.
                with contextlib.suppress(ProviderError):
                    await self.terminate([instance_key(group, n) for n in names])
                    if ppg is not None:
                        await self.placement.release(ppg)
                raise failures[0]
        finally:
            self.placement.launching.discard(ppg or "")
        return [o for o in outcomes if isinstance(o, Instance)]

    async def sweep_placement(self, tags: Mapping[str, str]) -> list[str]:
        return await self.placement.sweep(tags)

    async def _launch_one(
        self, request: LaunchRequest, group: str, name: str, ppg_id: str | None
    ) -> Instance:
        region = request.offer.region
        scope = capacity_scope(request.offer)
        existing = await self._get_vm(group, name, region)
        if existing is not None and existing["properties"].get("provisioningState") not in (
            "Failed",
            "Deleting",
        ):
            return self._instance(group, existing)
        tags = launch_tags(request)
        zones = [request.offer.zone] if request.offer.zone else []
        ip_id = None
        public_ip = None
        if self.config.public_ip:
            ip_path = self.arm.network_path(group, "publicIPAddresses", f"{name}-ip")
            ip = await self.arm.long_running(
                "PUT",
                ip_path,
                region,
                {
                    "location": region,
                    "tags": tags,
                    "sku": {"name": "Standard"},
                    "zones": zones,
                    "properties": {"publicIPAllocationMethod": "Static"},
                },
                needs=lambda got: not got.get("properties", {}).get("ipAddress"),
            )
            ip_id = ip_path
            public_ip = (ip or {}).get("properties", {}).get("ipAddress")
        nsg_path = self.arm.network_path(group, "networkSecurityGroups", f"{name}-nsg")
        await self.arm.long_running(
            "PUT",
            nsg_path,
            region,
            nsg_body(self.config, region, tags, request.ports),
            needs=lambda got: False,
        )
        ip_config: dict[str, Any] = {
            "subnet": {"id": self.config.subnet_id},
            "privateIPAllocationMethod": "Dynamic",
        }
        if ip_id:
            ip_config["publicIPAddress"] = {"id": ip_id}
        nic_path = self.arm.network_path(group, "networkInterfaces", f"{name}-nic")
        nic = await self.arm.long_running(
            "PUT",
            nic_path,
            region,
            {
                "location": region,
                "tags": tags,
                "properties": {
                    "ipConfigurations": [{"name": "ipconfig1", "properties": ip_config}],
                    "networkSecurityGroup": {"id": nsg_path},
                    # network_tier: best (skyd.providers.tiers)
                    **(
                        {"enableAcceleratedNetworking": True}
                        if wants_accelerated(request.network_tier, request.offer)
                        else {}
                    ),
                },
            },
            needs=lambda got: _private_ip(got) is None,
        )
        private_ip = _private_ip(nic or {})
        body = vm_body(self.config, request, name, nic_path, tags, zones)
        if ppg_id is not None:
            body["properties"]["proximityPlacementGroup"] = {"id": ppg_id}
        client = await self.arm.compute()
        try:
            poller = await client.virtual_machines.begin_create_or_update(group, name, body)
            vm = await poller.result()
        except ProviderError:
            raise
        except Exception as exc:
            raise translate_exception(exc, region, scope) from exc
        raw = as_json(vm)
        inst = self._instance(group, raw)
        return replace(inst, public_ip=public_ip, private_ip=private_ip)

    # -- describe -----------------------------------------------------------------------

    async def _get_vm(self, group: str, name: str, region: str | None) -> dict[str, Any] | None:
        from azure.core.exceptions import ResourceNotFoundError

        client = await self.arm.compute()
        try:
            vm = await client.virtual_machines.get(group, name, expand="instanceView")
        except ResourceNotFoundError:
            return None
        except Exception as exc:
            raise translate_exception(exc, region, None) from exc
        return as_json(vm)

    async def describe(
        self, instance_ids: Sequence[str] | None = None, tags: Mapping[str, str] | None = None
    ) -> dict[str, InstanceState]:
        if instance_ids is None:
            found = await self.instances(tags or managed_tags())
            return {inst.instance_id: inst.state for inst in found}
        raws = await asyncio.gather(
            *(self._get_vm(*split_instance_key(k), None) for k in instance_ids)
        )
        return {
            key: InstanceState.TERMINATED if raw is None else _state_of(raw)
            for key, raw in zip(instance_ids, raws, strict=True)
        }

    async def instances(self, tags: Mapping[str, str]) -> list[Instance]:
        """Every VM in the resource group carrying all of `tags` (ARM lists, skyd filters)."""
        client = await self.arm.compute()
        group = self.config.resource_group
        raws: list[dict[str, Any]] = []
        try:
            async for vm in client.virtual_machines.list(group, expand="instanceView"):
                raw = as_json(vm)
                vm_tags = raw.get("tags") or {}
                if all(vm_tags.get(k) == v for k, v in tags.items()):
                    raws.append(raw)
        except ProviderError:
            raise
        except Exception as exc:
            raise translate_exception(exc, None, None) from exc
        addresses = await asyncio.gather(*(self._addresses(raw) for raw in raws))
        return [
            replace(self._instance(group, raw), public_ip=public, private_ip=private)
            for raw, (public, private) in zip(raws, addresses, strict=True)
        ]

    async def _addresses(self, raw: Mapping[str, Any]) -> tuple[str | None, str | None]:
        """A VM's public and private IP: ARM keeps them on its NIC and public IP resources."""
        refs = raw.get("properties", {}).get("networkProfile", {}).get("networkInterfaces", [])
        if not refs:
            return None, None
        region = str(raw.get("location", ""))
        nic_response = await self.arm.request("GET", str(refs[0]["id"]))
        if nic_response.status_code == 404:
            return None, None
        self.arm.raise_for(nic_response, region)
        nic = nic_response.json()
        public = None
        for config in nic.get("properties", {}).get("ipConfigurations", []):
            ip_ref = config.get("properties", {}).get("publicIPAddress")
            if ip_ref:
                ip_response = await self.arm.request("GET", str(ip_ref["id"]))
                if ip_response.status_code < 400:
                    public = ip_response.json().get("properties", {}).get("ipAddress")
                break
        return public, _private_ip(nic)

    def _instance(self, group: str, raw: Mapping[str, Any]) -> Instance:
        props = raw.get("properties", {})
        zones = raw.get("zones") or []
        region = str(raw.get("location", ""))
        return Instance(
            instance_id=instance_key(group, str(raw["name"])),
            provider=self.name,
            cloud=CLOUD,
            region=region,
            zone=str(zones[0]) if zones else "",
            instance_type=str(props.get("hardwareProfile", {}).get("vmSize", "")),
            spot=props.get("priority") == "Spot",
            state=_state_of(raw),
            tags={k: v for k, v in (raw.get("tags") or {}).items() if k != TAG_STOPPED},
            ssh_user=self.config.admin_username,  # osProfile's admin, holding skyd's key
        )

    # -- stop / start / terminate -------------------------------------------------------

    async def _set_stopped_tag(self, group: str, name: str, stopped: bool) -> None:
        client = await self.arm.compute()
        vm = await client.virtual_machines.get(group, name)
        tags = dict(as_json(vm).get("tags") or {})
        if stopped:
            tags[TAG_STOPPED] = "true"
        else:
            tags.pop(TAG_STOPPED, None)
        poller = await client.virtual_machines.begin_update(group, name, {"tags": tags})
        await poller.result()

    async def stop(self, instance_ids: Sequence[str]) -> None:
        """Deallocate (no compute charges), marked so it is not mistaken for an eviction."""

        async def one(key: str) -> None:
            group, name = split_instance_key(key)
            client = await self.arm.compute()
            try:
                await self._set_stopped_tag(group, name, True)
                poller = await client.virtual_machines.begin_deallocate(group, name)
                await poller.result()
            except Exception as exc:
                raise translate_exception(exc, None, None) from exc

        await asyncio.gather(*(one(k) for k in instance_ids))

    async def start(self, instance_ids: Sequence[str]) -> None:
        async def one(key: str) -> None:
            group, name = split_instance_key(key)
            client = await self.arm.compute()
            try:
                poller = await client.virtual_machines.begin_start(group, name)
                await poller.result()
                await self._set_stopped_tag(group, name, False)
            except Exception as exc:
                raise translate_exception(exc, None, None) from exc

        await asyncio.gather(*(one(k) for k in instance_ids))

    async def terminate(self, instance_ids: Sequence[str]) -> None:
        """Delete each VM (its OS disk goes with it), then its NIC, then its public IP."""
        await asyncio.gather(*(self._terminate_one(k) for k in instance_ids))

    async def _terminate_one(self, key: str) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        group, name = split_instance_key(key)
        vm = await self._get_vm(group, name, None)
        region = str(vm.get("location", "")) if vm is not None else ""
        if vm is not None:
            client = await self.arm.compute()
            try:
                poller = await client.virtual_machines.begin_delete(group, name)
                await poller.result()
            except ResourceNotFoundError:
                pass
            except Exception as exc:
                raise translate_exception(exc, region or None, None) from exc
        # Conventional names cover a VM that never got created or is already gone.
        await self.arm.long_running(
            "DELETE", self.arm.network_path(group, "networkInterfaces", f"{name}-nic"), region
        )
        await self.arm.long_running(
            "DELETE", self.arm.network_path(group, "publicIPAddresses", f"{name}-ip"), region
        )
        await self.arm.long_running(
            "DELETE", self.arm.network_path(group, "networkSecurityGroups", f"{name}-nsg"), region
        )
        ppg = ((vm or {}).get("properties", {}).get("proximityPlacementGroup") or {}).get("id")
        if ppg and str(ppg).rsplit("/", 1)[-1].startswith(PREFIX):
            # the gang's last VM takes its placement group along
            await self.placement.release(str(ppg).rsplit("/", 1)[-1])

    async def sweep_ports(self, daemon_id: str, busy_jobs: Sequence[int]) -> list[str]:
        """Delete the NSGs (and leftover NIC and IP) of this daemon's ended VMs, which a
        daemon killed mid-teardown leaves behind (skyd.providers.azure.ports, PortSweeper)."""
        group = self.config.resource_group
        path = f"{self.arm.rg_path(group)}/providers/Microsoft.Network/networkSecurityGroups"
        response = await self.arm.request("GET", path)
        self.arm.raise_for(response, "")
        live = {split_instance_key(i.instance_id)[1] for i in await self.instances({})}
        stale = stale_vm_names(response.json().get("value", []), live, daemon_id, busy_jobs)
        await asyncio.gather(*(self._terminate_one(instance_key(group, vm)) for vm in stale))
        return [f"{group}/{vm}-nsg" for vm in stale]

    async def aclose(self) -> None:
        await self.arm.aclose()


def _private_ip(nic: Mapping[str, Any]) -> str | None:
    for config in nic.get("properties", {}).get("ipConfigurations", []):
        address = config.get("properties", {}).get("privateIPAddress")
        if address:
            return str(address)
    return None


def _state_of(raw: Mapping[str, Any]) -> InstanceState:
    props = raw.get("properties", {})
    provisioning = props.get("provisioningState", "")
    if provisioning == "Deleting":
        return InstanceState.TERMINATING
    if provisioning == "Failed":
        return InstanceState.TERMINATED
    power = ""
    for status in (props.get("instanceView") or {}).get("statuses", []):
        code = str(status.get("code", ""))
        if code.startswith("PowerState/"):
            power = code.split("/", 1)[1]
    state = _POWER_STATES.get(power, InstanceState.PENDING)
    evicted = (
        state == InstanceState.STOPPED
        and props.get("priority") == "Spot"
        and (raw.get("tags") or {}).get(TAG_STOPPED) != "true"
    )
    return InstanceState.PREEMPTED if evicted else state
