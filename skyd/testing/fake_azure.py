"""A local HTTPS Azure Resource Manager: VMs, NICs, public IPs and the async-operation protocol."""

from __future__ import annotations

import itertools
import ssl
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from skyd.testing.arm_machines import ArmMachines, key_of
from skyd.testing.arm_operations import ArmOperations
from skyd.testing.arm_tls import StaticTokenCredential, write_self_signed_cert
from skyd.testing.azure_placement import ProximityGroups
from skyd.testing.azure_schema import ArmError, accelerated_refusal, check_put
from skyd.testing.fake_vm import FakeVmHost
from skyd.testing.loopback_fake import LoopbackFake

__all__ = ["ArmFault", "FakeAzure", "StaticTokenCredential", "write_self_signed_cert"]

RG = "/subscriptions/{sub}/resourceGroups/{rg}/providers"
VMS = RG + "/Microsoft.Compute/virtualMachines"
NICS = RG + "/Microsoft.Network/networkInterfaces"
IPS = RG + "/Microsoft.Network/publicIPAddresses"
NSGS = RG + "/Microsoft.Network/networkSecurityGroups"
_KINDS = {"nic": "networkInterfaces", "ip": "publicIPAddresses", "nsg": "networkSecurityGroups"}


@dataclass
class ArmFault:
    """Make matching calls fail.

    `operation` is one of vm.put, vm.get, vm.list, vm.patch, vm.delete, vm.deallocate,
    vm.start, nic.put, nic.delete, ip.put, ip.delete, operation.get. With `status` the
    call answers that HTTP error with ARM's {"error": {"code", "message"}} body; with
    `async_error` the call is accepted (201/202) and its async operation ends Failed with
    that code, as ARM reports AllocationFailed. `hang` never answers.
    """

    operation: str
    status: int = 0
    code: str = ""
    async_error: str = ""
    message: str = "injected by FakeAzure"
    retry_after: int | None = None
    times: int | None = 1
    hang: bool = False

    def matches(self, operation: str) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        return operation == self.operation


class FakeAzure(LoopbackFake, ArmMachines):
    """Resource Manager over HTTPS on 127.0.0.1; `ca_file` is what clients must trust.

    With `machines`, every VM is a real machine (skyd.testing.fake_vm): public IPs and NICs get
    loopback addresses (a NIC with a public IP shares its address), and a VM runs an sshd
    for its `osProfile` adminUsername and ssh publicKeys while its power state is running.
    """

    def __init__(self, cert_dir: Path, machines: FakeVmHost | None = None) -> None:
        super().__init__()
        self.machines = machines
        self.ca_file, self._key_file = write_self_signed_cert(cert_dir)
        self.vms: dict[tuple[str, str], dict[str, Any]] = {}  # (resource group, name)
        self.nics: dict[tuple[str, str], dict[str, Any]] = {}
        self.ips: dict[tuple[str, str], dict[str, Any]] = {}
        self.nsgs: dict[tuple[str, str], dict[str, Any]] = {}
        # proximity placement groups of gangs: skyd.testing.azure_placement
        self.placement = ProximityGroups(self.vms, _error)
        # Every PUT is checked against the vendored Compute/Network specs for the
        # api-version the SDK sends (skyd.testing.azure_schema); `refused` keeps what was
        # turned away.
        self.refused: list[ArmError] = []
        # long-running calls' Azure-AsyncOperation polls: skyd.testing.arm_operations
        self.operations = ArmOperations(self._fault, _error, lambda: self.base_url)
        self.faults: list[ArmFault] = []
        self.calls: Counter[str] = Counter()
        self._octets = itertools.count(4)
        self.base_url = ""

    # -- lifecycle ----------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._timed, self._auth])
        r = app.router
        r.add_get(VMS, self._vm_list)
        r.add_put(VMS + "/{name}", self._vm_put)
        r.add_get(VMS + "/{name}", self._vm_get)
        r.add_patch(VMS + "/{name}", self._vm_patch)
        r.add_delete(VMS + "/{name}", self._vm_delete)
        r.add_post(VMS + "/{name}/deallocate", self._vm_deallocate)
        r.add_post(VMS + "/{name}/start", self._vm_start)
        for base, kind in ((NICS, "nic"), (IPS, "ip"), (NSGS, "nsg")):
            r.add_get(base, self._network_list(kind))
            r.add_put(base + "/{name}", self._network_put(kind))
            r.add_get(base + "/{name}", self._network_get(kind))
            r.add_delete(base + "/{name}", self._network_delete(kind))
        self.operations.routes(app)
        self.placement.routes(app)
        return app

    async def start(self) -> str:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.ca_file, self._key_file)
        self.base_url = f"https://127.0.0.1:{await self._serve(self.app(), context)}"
        return self.base_url

    # -- knobs --------------------------------------------------------------------------

    def add_fault(self, fault: ArmFault) -> ArmFault:
        self.faults.append(fault)
        return fault

    def evict(self, resource_group: str, name: str) -> None:
        """Take a Spot VM back per its eviction policy (Delete removes it, NIC and IP stay)."""
        vm = self.vms[(resource_group, name)]
        if vm["properties"].get("evictionPolicy") == "Delete":
            self._drop_vm((resource_group, name))
        else:
            self._power(vm, "deallocated")

    # -- plumbing -----------------------------------------------------------------------

    @web.middleware
    async def _auth(
        self, request: web.Request, handler: Callable[[web.Request], Any]
    ) -> web.StreamResponse:
        if not request.headers.get("Authorization", "").startswith("Bearer "):
            return _error(401, "AuthenticationFailed", "Authentication failed: no bearer token.")
        response: web.StreamResponse = await handler(request)
        return response

    async def _fault(self, operation: str) -> tuple[web.Response | None, ArmFault | None]:
        self.calls[operation] += 1
        for fault in self.faults:
            if fault.matches(operation):
                if fault.times is not None:
                    fault.times -= 1
                if fault.hang:
                    return await self._hang(), fault
                if fault.status:
                    headers = (
                        {"Retry-After": str(fault.retry_after)}
                        if fault.retry_after is not None
                        else {}
                    )
                    return _error(fault.status, fault.code, fault.message, headers), fault
                return None, fault
        return None, None

    # -- virtual machines ---------------------------------------------------------------

    def _vm_id(self, request: web.Request, name: str | None = None) -> str:
        m = request.match_info
        return (
            f"/subscriptions/{m['sub']}/resourceGroups/{m['rg']}/providers/"
            f"Microsoft.Compute/virtualMachines/{name or m['name']}"
        )

    def _vm_view(self, vm: dict[str, Any], expand: bool) -> dict[str, Any]:
        body = {k: v for k, v in vm.items() if not k.startswith("_")}
        body["properties"] = dict(vm["properties"])
        if expand:
            power = vm["_power"]
            statuses = [
                {"code": f"ProvisioningState/{vm['properties']['provisioningState'].lower()}"}
            ]
            if power:
                statuses.append({"code": f"PowerState/{power}", "level": "Info"})
            body["properties"]["instanceView"] = {"statuses": statuses}
            # Each look moves a transitional power state on, as the real fleet does.
            self._power(
                vm, {"starting": "running", "deallocating": "deallocated"}.get(power, power)
            )
        return body

    async def _vm_put(self, request: web.Request) -> web.StreamResponse:
        failure, fault = await self._fault("vm.put")
        if failure is not None:
            return failure
        rg, name = request.match_info["rg"], request.match_info["name"]
        body = await request.json()
        refused = self._refuse(
            "Microsoft.Compute", "virtualMachines", body, request, (rg, name) not in self.vms
        )
        if refused is not None:
            return refused
        misplaced = self.placement.check_vm(body, name)
        if misplaced is not None:
            return misplaced
        for nic in (
            body.get("properties", {}).get("networkProfile", {}).get("networkInterfaces", [])
        ):
            if key_of(nic["id"]) not in self.nics:
                return _error(
                    400,
                    "InvalidResourceReference",
                    f"Resource {nic['id']} referenced by VM {name} was not found.",
                )
        size = str(body.get("properties", {}).get("hardwareProfile", {}).get("vmSize", ""))
        accelerated = [
            nic["id"]
            for nic in body.get("properties", {})
            .get("networkProfile", {})
            .get("networkInterfaces", [])
            if self.nics[key_of(nic["id"])].get("properties", {}).get("enableAcceleratedNetworking")
        ]
        slow = accelerated_refusal(size, accelerated)
        if slow is not None:
            return web.json_response(slow.body(), status=slow.status)
        existed = (rg, name) in self.vms
        vm = {
            "id": self._vm_id(request),
            "name": name,
            "type": "Microsoft.Compute/virtualMachines",
            "location": body.get("location", ""),
            "tags": dict(body.get("tags", {})),
            "zones": body.get("zones", []),
            "properties": dict(body.get("properties", {}), provisioningState="Creating"),
            "_power": "starting",
        }
        vm["properties"]["vmId"] = str(uuid.uuid4())
        self.vms[(rg, name)] = vm

        def done() -> None:
            vm["properties"]["provisioningState"] = "Succeeded"

        def failed() -> None:
            # A failed allocation leaves the VM resource behind in Failed state, as ARM does.
            vm["properties"]["provisioningState"] = "Failed"
            self._power(vm, "")

        headers = self.operations.start(
            request, "Microsoft.Compute", vm["location"], fault, done, failed
        )
        headers.pop("Location")
        return web.json_response(
            self._vm_view(vm, expand=False), status=200 if existed else 201, headers=headers
        )

    async def _vm_get(self, request: web.Request) -> web.StreamResponse:
        failure, _ = await self._fault("vm.get")
        if failure is not None:
            return failure
        vm = self.vms.get((request.match_info["rg"], request.match_info["name"]))
        if vm is None:
            return _not_found("Microsoft.Compute/virtualMachines", request.match_info["name"])
        expand = request.query.get("$expand") == "instanceView"
        return web.json_response(self._vm_view(vm, expand))

    async def _vm_list(self, request: web.Request) -> web.StreamResponse:
        failure, _ = await self._fault("vm.list")
        if failure is not None:
            return failure
        expand = request.query.get("$expand") == "instanceView"
        rg = request.match_info["rg"]
        items = [self._vm_view(vm, expand) for (g, _), vm in sorted(self.vms.items()) if g == rg]
        return web.json_response({"value": items})

    async def _vm_patch(self, request: web.Request) -> web.StreamResponse:
        failure, _ = await self._fault("vm.patch")
        if failure is not None:
            return failure
        vm = self.vms.get((request.match_info["rg"], request.match_info["name"]))
        if vm is None:
            return _not_found("Microsoft.Compute/virtualMachines", request.match_info["name"])
        body = await request.json()
        if "tags" in body:
            vm["tags"] = dict(body["tags"])
        return web.json_response(self._vm_view(vm, expand=False))

    async def _vm_action(self, request: web.Request, action: str) -> web.StreamResponse:
        failure, fault = await self._fault(f"vm.{action}")
        if failure is not None:
            return failure
        vm = self.vms.get((request.match_info["rg"], request.match_info["name"]))
        if vm is None:
            return _not_found("Microsoft.Compute/virtualMachines", request.match_info["name"])
        if action == "deallocate":
            self._power(vm, "deallocating")
            final = "deallocated"
        else:
            self._power(vm, "starting")
            final = "running"

        def done() -> None:
            self._power(vm, final)

        headers = self.operations.start(request, "Microsoft.Compute", vm["location"], fault, done)
        return web.Response(status=202, headers=headers)

    async def _vm_deallocate(self, request: web.Request) -> web.StreamResponse:
        return await self._vm_action(request, "deallocate")

    async def _vm_start(self, request: web.Request) -> web.StreamResponse:
        return await self._vm_action(request, "start")

    async def _vm_delete(self, request: web.Request) -> web.StreamResponse:
        failure, fault = await self._fault("vm.delete")
        if failure is not None:
            return failure
        key = (request.match_info["rg"], request.match_info["name"])
        vm = self.vms.get(key)
        if vm is None:
            return web.Response(status=204)
        vm["properties"]["provisioningState"] = "Deleting"
        headers = self.operations.start(
            request, "Microsoft.Compute", vm["location"], fault, lambda: self._drop_vm(key)
        )
        return web.Response(status=202, headers=headers)

    # -- network ------------------------------------------------------------------------

    def _table(self, kind: str) -> dict[tuple[str, str], dict[str, Any]]:
        return {"nic": self.nics, "ip": self.ips, "nsg": self.nsgs}[kind]

    def _refuse(
        self, namespace: str, kind: str, body: Any, request: web.Request, creating: bool
    ) -> web.Response | None:
        version = request.query.get("api-version", "")
        error = check_put(namespace, kind, body, version, creating)
        if error is None:
            return None
        self.refused.append(error)
        return web.json_response(error.body(), status=error.status)

    def _network_put(self, kind: str) -> Callable[[web.Request], Any]:
        async def handler(request: web.Request) -> web.StreamResponse:
            failure, fault = await self._fault(f"{kind}.put")
            if failure is not None:
                return failure
            key = (request.match_info["rg"], request.match_info["name"])
            body = await request.json()
            table = self._table(kind)
            existed = key in table
            refused = self._refuse("Microsoft.Network", _KINDS[kind], body, request, not existed)
            if refused is not None:
                return refused
            props = dict(body.get("properties", {}), provisioningState="Updating")
            octet = next(self._octets)
            if kind == "ip":
                props["ipAddress"] = self._address(table.get(key), f"20.1.0.{octet}")
            elif kind == "nic":
                group = props.get("networkSecurityGroup")
                if group is not None and key_of(group["id"]) not in self.nsgs:
                    return _error(
                        400, "InvalidResourceReference", f"Resource {group['id']} not found."
                    )
                for config in props.get("ipConfigurations", []):
                    ip = config.get("properties", {}).get("publicIPAddress")
                    if ip is not None and key_of(ip["id"]) not in self.ips:
                        return _error(
                            400, "InvalidResourceReference", f"Resource {ip['id']} not found."
                        )
                    shared = self.ips[key_of(ip["id"])] if ip is not None else None
                    address = (
                        shared["properties"]["ipAddress"]
                        if shared is not None and self.machines is not None
                        else self._address(table.get(key), f"10.0.0.{octet}")
                    )
                    config.setdefault("properties", {})["privateIPAddress"] = address
            resource = {
                "id": request.path,
                "name": key[1],
                "location": body.get("location", ""),
                "tags": dict(body.get("tags", {})),
                "properties": props,
            }
            table[key] = resource

            def done() -> None:
                resource["properties"]["provisioningState"] = "Succeeded"

            headers = self.operations.start(
                request, "Microsoft.Network", resource["location"], fault, done
            )
            return web.json_response(resource, status=200 if existed else 201, headers=headers)

        return handler

    def _network_list(self, kind: str) -> Callable[[web.Request], Any]:
        async def handler(request: web.Request) -> web.StreamResponse:
            failure, _ = await self._fault(f"{kind}.list")
            if failure is not None:
                return failure
            group = request.match_info["rg"]
            items = [r for (rg, _), r in self._table(kind).items() if rg == group]
            return web.json_response({"value": items})

        return handler

    def _network_get(self, kind: str) -> Callable[[web.Request], Any]:
        async def handler(request: web.Request) -> web.StreamResponse:
            failure, _ = await self._fault(f"{kind}.get")
            if failure is not None:
                return failure
            resource = self._table(kind).get((request.match_info["rg"], request.match_info["name"]))
            if resource is None:
                return _not_found(kind, request.match_info["name"])
            return web.json_response(resource)

        return handler

    def _network_delete(self, kind: str) -> Callable[[web.Request], Any]:
        async def handler(request: web.Request) -> web.StreamResponse:
            failure, fault = await self._fault(f"{kind}.delete")
            if failure is not None:
                return failure
            key = (request.match_info["rg"], request.match_info["name"])
            table = self._table(kind)
            resource = table.get(key)
            if resource is None:
                return web.Response(status=204)
            if kind == "nic" and self._nic_in_use(resource["id"]):
                return _error(400, "NicInUse", f"Network Interface {resource['id']} is in use.")
            if kind == "nsg" and self._nsg_in_use(resource["id"]):
                return _error(
                    400,
                    "InUseNetworkSecurityGroupCannotBeDeleted",
                    f"Network security group {resource['id']} cannot be deleted because it is "
                    "in use by a network interface.",
                )
            if kind == "ip" and self._ip_in_use(resource["id"]):
                return _error(
                    400, "PublicIPAddressCannotBeDeleted", f"Public IP {resource['id']} is in use."
                )
            headers = self.operations.start(
                request,
                "Microsoft.Network",
                resource["location"],
                fault,
                lambda: self._drop_network(table, key),
            )
            return web.Response(status=202, headers=headers)

        return handler

    def _nsg_in_use(self, nsg_id: str) -> bool:
        return any(
            (nic["properties"].get("networkSecurityGroup") or {}).get("id", "").lower()
            == nsg_id.lower()
            for nic in self.nics.values()
        )

    def _nic_in_use(self, nic_id: str) -> bool:
        return any(
            n.get("id", "").lower() == nic_id.lower()
            for vm in self.vms.values()
            for n in vm["properties"].get("networkProfile", {}).get("networkInterfaces", [])
        )

    def _ip_in_use(self, ip_id: str) -> bool:
        return any(
            (c.get("properties", {}).get("publicIPAddress") or {}).get("id", "").lower()
            == ip_id.lower()
            for nic in self.nics.values()
            for c in nic["properties"].get("ipConfigurations", [])
        )


def _error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    return web.json_response(
        {"error": {"code": code, "message": message}}, status=status, headers=headers
    )


def _not_found(kind: str, name: str) -> web.Response:
    return _error(404, "ResourceNotFound", f"The Resource '{kind}/{name}' was not found.")
