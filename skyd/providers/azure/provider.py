"""AzureProvider: the Provider Protocol over Azure Resource Manager (async SDK + ARM REST)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from skyd.clock import Clock, SystemClock
from skyd.errors import AuthError, ProviderError, TransientError
from skyd.model import Instance, InstanceState, LaunchRequest, Offer
from skyd.providers.azure.bodies import StaticToken, nsg_body, vm_body
from skyd.providers.azure.config import AzureConfig
from skyd.providers.azure.errors import CLOUD, translate_error_code, translate_exception
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
        self._credential = credential
        self._owns_credential = credential is None
        self._clock = clock or SystemClock()
        self._offers = tuple(offers)
        self._compute: Any = None
        self._session: Any = None  # our own aiohttp session when trusting an extra CA
        self._lock = asyncio.Lock()
        self.placement = ProximityGroups(config.resource_group, self._client)

    def offers(self) -> Sequence[Offer]:
        return self._offers

    # -- plumbing -----------------------------------------------------------------------

    async def _client(self) -> Any:
        async with self._lock:
            if self._compute is None:
                # The SDK takes about a second to import: keep that off the daemon's loop.
                await asyncio.to_thread(importlib.import_module, "azure.mgmt.compute.aio")
                from azure.mgmt.compute.aio import ComputeManagementClient

                if self._credential is None and self.config.static_token:
                    self._credential = StaticToken(self.config.static_token)
                if self._credential is None:
                    await asyncio.to_thread(importlib.import_module, "azure.identity.aio")
                    from azure.identity.aio import DefaultAzureCredential

                    self._credential = DefaultAzureCredential()
                kwargs: dict[str, Any] = {
                    "retry_total": self.config.retry_total,
                    "retry_backoff_factor": self.config.retry_backoff_factor,
                    "retry_backoff_max": self.config.retry_backoff_max_s,
                    "polling_interval": self.config.poll_interval_s,
                    "connection_timeout": self.config.connect_timeout_s,
                    "read_timeout": self.config.request_timeout_s,
                }
                if self.config.ca_file:
                    kwargs["transport"] = self._transport_trusting(self.config.ca_file)
                if self.config.base_url:
                    kwargs["base_url"] = self.config.base_url
                self._compute = ComputeManagementClient(
                    self._credential, self.config.subscription_id, **kwargs
                )
        return self._compute

    def _transport_trusting(self, ca_file: str) -> Any:
        """An HTTP transport that trusts `ca_file` with one TLS context for every request.

        azure-core's `connection_verify=<path>` builds a fresh SSL context per request, which
        defeats connection pooling: every ARM call would pay a new TLS handshake.
        """
        import ssl

        import aiohttp
        from azure.core.pipeline.transport import AioHttpTransport

        context = ssl.create_default_context(cafile=ca_file)
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context))
        return AioHttpTransport(
            session=self._session,
            session_owner=False,
            connection_timeout=self.config.connect_timeout_s,
            read_timeout=self.config.request_timeout_s,
        )

    async def _arm(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        """One ARM REST call through the SDK's pipeline; returns the response."""
        from azure.core.rest import HttpRequest

        client = await self._client()
        request = HttpRequest(
            method,
            path,
            params={"api-version": self.config.network_api_version},
            json=dict(body) if body is not None else None,
        )
        # Not streamed: the pipeline has read the body already.
        return await client.send_request(request)

    async def _arm_lro(
        self,
        method: str,
        path: str,
        region: str,
        body: Mapping[str, Any] | None = None,
        needs: Callable[[dict[str, Any]], bool] | None = None,
    ) -> dict[str, Any] | None:
        """PUT/DELETE with ARM's long-running-operation protocol, polled to the end.

        Returns the resource body (PUT) or None (DELETE, or already gone). The final GET
        is skipped when `needs` says the PUT's own answer already holds what the caller uses.
        """
        response = await self._arm(method, path, body)
        if method == "DELETE" and response.status_code in (204, 404):
            return None
        self._raise_for(response, region)
        initial: dict[str, Any] = response.json() if method == "PUT" else {}
        poll_url = response.headers.get("Azure-AsyncOperation")
        deadline = self._clock.now() + self.config.operation_timeout_s
        while poll_url:
            await self._clock.sleep(self._retry_after(response))
            if self._clock.now() > deadline:
                raise TransientError(
                    f"azure: {method} {path} not done after {self.config.operation_timeout_s}s",
                    scope=f"{CLOUD}/{region}",
                )
            from azure.core.rest import HttpRequest

            client = await self._client()
            response = await client.send_request(HttpRequest("GET", poll_url))
            self._raise_for(response, region)
            status = response.json().get("status", "")
            if status == "Succeeded":
                break
            if status in ("Failed", "Canceled"):
                error = response.json().get("error") or {}
                raise translate_error_code(
                    str(error.get("code", status)),
                    200,
                    str(error.get("message", "")),
                    region,
                    None,
                )
        if method == "DELETE":
            return None
        if needs is not None and not needs(initial):
            return initial
        final = await self._arm("GET", path)
        self._raise_for(final, region)
        result: dict[str, Any] = final.json()
        return result

    def _retry_after(self, response: Any) -> float:
        header = response.headers.get("Retry-After")
        if header is not None and header.isdigit():
            return float(header)
        return self.config.poll_interval_s

    def _raise_for(self, response: Any, region: str, scope: str | None = None) -> None:
        if response.status_code < 400:
            return
        try:
            error = response.json().get("error") or {}
        except ValueError:
            error = {}
        header = response.headers.get("Retry-After")
        raise translate_error_code(
            str(error.get("code", "")),
            int(response.status_code),
            str(error.get("message", response.text())),
            region,
            scope,
            float(header) if header and header.isdigit() else None,
        )

    def _rg_path(self, resource_group: str) -> str:
        return f"/subscriptions/{self.config.subscription_id}/resourceGroups/{resource_group}"

    def _network_path(self, resource_group: str, kind: str, name: str) -> str:
        return f"{self._rg_path(resource_group)}/providers/Microsoft.Network/{kind}/{name}"

    async def check(self) -> str:
        """One cheap authenticated call (`skyctl check`): the resource group's VM list."""
        group = self.config.resource_group
        client = await self._client()
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
            ip_path = self._network_path(group, "publicIPAddresses", f"{name}-ip")
            ip = await self._arm_lro(
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
        nsg_path = self._network_path(group, "networkSecurityGroups", f"{name}-nsg")
        await self._arm_lro(
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
        nic_path = self._network_path(group, "networkInterfaces", f"{name}-nic")
        nic = await self._arm_lro(
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
        client = await self._client()
        try:
            poller = await client.virtual_machines.begin_create_or_update(group, name, body)
            vm = await poller.result()
        except ProviderError:
            raise
        except Exception as exc:
            raise translate_exception(exc, region, scope) from exc
        raw = _as_json(vm)
        inst = self._instance(group, raw)
        return replace(inst, public_ip=public_ip, private_ip=private_ip)

    # -- describe -----------------------------------------------------------------------

    async def _get_vm(self, group: str, name: str, region: str | None) -> dict[str, Any] | None:
        from azure.core.exceptions import ResourceNotFoundError

        client = await self._client()
        try:
            vm = await client.virtual_machines.get(group, name, expand="instanceView")
        except ResourceNotFoundError:
            return None
        except Exception as exc:
            raise translate_exception(exc, region, None) from exc
        return _as_json(vm)

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
        client = await self._client()
        group = self.config.resource_group
        raws: list[dict[str, Any]] = []
        try:
            async for vm in client.virtual_machines.list(group, expand="instanceView"):
                raw = _as_json(vm)
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
        nic_response = await self._arm("GET", str(refs[0]["id"]))
        if nic_response.status_code == 404:
            return None, None
        self._raise_for(nic_response, region)
        nic = nic_response.json()
        public = None
        for config in nic.get("properties", {}).get("ipConfigurations", []):
            ip_ref = config.get("properties", {}).get("publicIPAddress")
            if ip_ref:
                ip_response = await self._arm("GET", str(ip_ref["id"]))
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
        client = await self._client()
        vm = await client.virtual_machines.get(group, name)
        tags = dict(_as_json(vm).get("tags") or {})
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
            client = await self._client()
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
            client = await self._client()
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
            client = await self._client()
            try:
                poller = await client.virtual_machines.begin_delete(group, name)
                await poller.result()
            except ResourceNotFoundError:
                pass
            except Exception as exc:
                raise translate_exception(exc, region or None, None) from exc
        # Conventional names cover a VM that never got created or is already gone.
        await self._arm_lro(
            "DELETE", self._network_path(group, "networkInterfaces", f"{name}-nic"), region
        )
        await self._arm_lro(
            "DELETE", self._network_path(group, "publicIPAddresses", f"{name}-ip"), region
        )
        await self._arm_lro(
            "DELETE", self._network_path(group, "networkSecurityGroups", f"{name}-nsg"), region
        )
        ppg = ((vm or {}).get("properties", {}).get("proximityPlacementGroup") or {}).get("id")
        if ppg and str(ppg).rsplit("/", 1)[-1].startswith(PREFIX):
            # the gang's last VM takes its placement group along
            await self.placement.release(str(ppg).rsplit("/", 1)[-1])

    async def sweep_ports(self, daemon_id: str, busy_jobs: Sequence[int]) -> list[str]:
        """Delete the NSGs (and leftover NIC and IP) of this daemon's ended VMs, which a
        daemon killed mid-teardown leaves behind (skyd.providers.azure.ports, PortSweeper)."""
        group = self.config.resource_group
        path = f"{self._rg_path(group)}/providers/Microsoft.Network/networkSecurityGroups"
        response = await self._arm("GET", path)
        self._raise_for(response, "")
        live = {split_instance_key(i.instance_id)[1] for i in await self.instances({})}
        stale = stale_vm_names(response.json().get("value", []), live, daemon_id, busy_jobs)
        await asyncio.gather(*(self._terminate_one(instance_key(group, vm)) for vm in stale))
        return [f"{group}/{vm}-nsg" for vm in stale]

    async def aclose(self) -> None:
        if self._compute is not None:
            await self._compute.close()
            self._compute = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._owns_credential and self._credential is not None:
            await self._credential.close()
            self._credential = None


def _private_ip(nic: Mapping[str, Any]) -> str | None:
    for config in nic.get("properties", {}).get("ipConfigurations", []):
        address = config.get("properties", {}).get("privateIPAddress")
        if address:
            return str(address)
    return None


def _as_json(model: Any) -> dict[str, Any]:
    if isinstance(model, dict):
        return model
    as_dict = getattr(model, "as_dict", None)
    result: dict[str, Any] = as_dict() if as_dict is not None else dict(model)
    return result


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
