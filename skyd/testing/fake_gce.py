"""A local Compute Engine: the REST paths google-cloud-compute calls, with fault knobs."""

from __future__ import annotations

import itertools
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from skyd.testing.fake_gce_firewalls import FakeFirewalls
from skyd.testing.fake_vm import FakeVmHost
from skyd.testing.gce_policies import Policies
from skyd.testing.gce_rest import API, PUBLIC_BASE, error, matches, now
from skyd.testing.gce_schema import GceError, check_insert, check_zone
from skyd.testing.loopback_fake import LoopbackFake

# One observation (GET/list) moves an instance one step along these paths.
_NEXT_STATUS = {
    "PROVISIONING": "STAGING",
    "STAGING": "RUNNING",
    "STOPPING": "TERMINATED",
}


@dataclass
class GceFault:
    """Make matching calls fail.

    `method` is the API method (insert, get, list, aggregatedList, stop, start, delete,
    operations.get, operations.wait, operations.list). With `status`, the call itself
    answers that HTTP error (with `reason` in errors[]); with `operation_error` (e.g.
    ZONE_RESOURCE_POOL_EXHAUSTED, QUOTA_EXCEEDED) the call is accepted and its operation
    ends in that error, as GCE reports stockouts. `hang` never answers.
    """

    method: str
    status: int = 0
    reason: str = ""
    operation_error: str = ""
    message: str = "injected by FakeGce"
    zone: str | None = None
    times: int | None = 1
    hang: bool = False
    # With hang on insert: create the instance first, then lose the answer (the cloud acted).
    after_effect: bool = False

    def matches(self, method: str, zone: str | None) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        return method == self.method and (self.zone is None or self.zone == zone)


@dataclass
class _Operation:
    body: dict[str, Any]
    on_done: list[Any] = field(default_factory=list)


class FakeGce(LoopbackFake):
    """Compute Engine instances and zone operations for one or more projects, in memory.

    With `machines`, every instance is a real machine (skyd.testing.fake_vm): its networkIP and
    natIP are its own loopback address, and it runs an sshd for the `user:key` lines of its
    `ssh-keys` metadata while it is RUNNING.

    Inserts are validated against Compute Engine's own schema and the catalog's zones
    (skyd.testing.gce_schema) and refused in GCE's error shape.
    """

    def __init__(self, machines: FakeVmHost | None = None, *, strict: bool = True) -> None:
        super().__init__()
        self.machines = machines
        # Every insert is checked as GCE checks it (skyd.testing.gce_schema); `refused`
        # keeps what was turned away. strict=False only for benchmarks of bulk inserts.
        self.strict = strict
        self.refused: list[GceError] = []
        self.instances: dict[tuple[str, str, str], dict[str, Any]] = {}  # (project, zone, name)
        self.operations: dict[tuple[str, str, str], _Operation] = {}
        self.firewalls = FakeFirewalls(strict)
        self._requests: dict[str, tuple[str, str, str]] = {}  # requestId -> operation key
        self.faults: list[GceFault] = []
        self.calls: Counter[str] = Counter()
        self._ids = itertools.count(1_000_000_000_000)
        # regional resource policies (compact placement of a gang): skyd.testing.gce_policies
        self.policies = Policies(lambda: next(self._ids))
        self.endpoint = ""

    # -- lifecycle ----------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._timed])
        zone = API + "/zones/{zone}"
        r = app.router
        r.add_post(zone + "/instances", self._insert)
        r.add_get(zone + "/instances", self._list)
        r.add_get(API + "/aggregated/instances", self._aggregated)
        r.add_get(zone + "/instances/{name}", self._get)
        r.add_delete(zone + "/instances/{name}", self._delete)
        r.add_post(zone + "/instances/{name}/stop", self._stop)
        r.add_post(zone + "/instances/{name}/start", self._start)
        r.add_get(zone + "/operations", self._op_list)
        r.add_get(zone + "/operations/{op}", self._op_get)
        r.add_post(zone + "/operations/{op}/wait", self._op_wait)
        self.firewalls.routes(r)
        self.policies.routes(app, API)
        return app

    async def start(self) -> str:
        self.endpoint = f"http://127.0.0.1:{await self._serve(self.app())}"
        return self.endpoint

    # -- knobs --------------------------------------------------------------------------

    def add_fault(self, fault: GceFault) -> GceFault:
        self.faults.append(fault)
        return fault

    def preempt(self, project: str, zone: str, name: str) -> None:
        """Reclaim a SPOT instance: stopped or deleted per its termination action."""
        key = (project, zone, name)
        inst = self.instances[key]
        if inst["scheduling"].get("instanceTerminationAction") == "DELETE":
            self._remove(key)
        else:
            inst["status"] = "TERMINATED"
            inst["lastStopTimestamp"] = now()
            self._vm_sync(key, inst)
        op = self._new_operation(project, zone, "compute.instances.preempted", inst, "system")
        op.body["status"] = "DONE"
        op.body["endTime"] = now()

    # -- instances ----------------------------------------------------------------------

    async def _insert(self, request: web.Request) -> web.StreamResponse:
        project, zone = request.match_info["project"], request.match_info["zone"]
        late = next((f for f in self.faults if f.after_effect and f.matches("insert", zone)), None)
        if late is not None:
            self.faults.remove(late)
            await self._insert(request)
            return await self._hang()
        failure, fault = await self._fault("insert", zone)
        if failure is not None:
            return failure
        request_id = request.query.get("requestId")
        if request_id and request_id in self._requests:
            return web.json_response(self.operations[self._requests[request_id]].body)
        try:
            body = await request.json()
        except ValueError:
            return error(400, "parseError", "Parse Error")
        refused = check_insert(body, zone) if self.strict else None
        if refused is None and self.strict:
            refused = self.policies.check_instance(project, zone, body)
        if refused is not None:
            self.refused.append(refused)
            return error(
                refused.status, refused.reason, refused.message, refused.field, refused.grpc_status
            )
        name = body.get("name", "")
        if (project, zone, name) in self.instances:
            return error(
                409,
                "alreadyExists",
                f"The resource 'projects/{project}/zones/{zone}/instances/{name}' already exists",
            )
        inst = self._new_instance(project, zone, body)
        op = self._new_operation(project, zone, "insert", inst, "skyd-test@example.com")
        if fault is not None and fault.operation_error:
            # A failed insert leaves nothing behind, as on GCE.
            op.on_done.append(lambda: self._remove((project, zone, name)))
            op.body["error"] = {"errors": [{"code": fault.operation_error, "message": _msg(fault)}]}
            op.body["httpErrorStatusCode"] = 403 if "QUOTA" in fault.operation_error else 503
        else:
            self.instances[(project, zone, name)] = inst
            self.policies.attach(project, inst)
        if request_id:
            self._requests[request_id] = _op_key(op.body)
        return web.json_response(op.body)

    def _new_instance(self, project: str, zone: str, body: dict[str, Any]) -> dict[str, Any]:
        inst = dict(body)
        number = next(self._ids)
        machine = str(body.get("machineType", "")).rsplit("/", 1)[-1]
        zone_link = f"{PUBLIC_BASE}/projects/{project}/zones/{zone}"
        inst.update(
            {
                "kind": "compute#instance",
                "id": str(number),
                "creationTimestamp": now(),
                "status": "PROVISIONING",
                "zone": zone_link,
                "machineType": f"{zone_link}/machineTypes/{machine}",
                "selfLink": f"{zone_link}/instances/{body['name']}",
                "labels": dict(body.get("labels", {})),
                "scheduling": dict(body.get("scheduling", {})),
            }
        )
        nics = []
        vm = self.machines.create(f"{project}/{zone}/{body['name']}") if self.machines else None
        for i, nic in enumerate(body.get("networkInterfaces", [{}])):
            nic = dict(nic)
            octet = number % 250 + 2
            nic["networkIP"] = vm.address if vm and i == 0 else f"10.128.{i}.{octet}"
            nat = vm.address if vm and i == 0 else f"34.1.{i}.{octet}"
            nic["accessConfigs"] = [dict(ac, natIP=nat) for ac in nic.get("accessConfigs", [])]
            nics.append(nic)
        inst["networkInterfaces"] = nics
        return inst

    async def _get(self, request: web.Request) -> web.StreamResponse:
        key = _instance_key(request)
        failure, _ = await self._fault("get", key[1])
        if failure is not None:
            return failure
        inst = self.instances.get(key)
        if inst is None:
            return _not_found(key)
        self._observe(inst)
        return web.json_response(inst)

    async def _list(self, request: web.Request) -> web.StreamResponse:
        project, zone = request.match_info["project"], request.match_info["zone"]
        failure, _ = await self._fault("list", zone)
        if failure is not None:
            return failure
        items = [
            self._observe(inst)
            for (p, z, _), inst in sorted(self.instances.items())
            if p == project and z == zone and matches(inst, request.query.get("filter", ""))
        ]
        return web.json_response(
            {
                "kind": "compute#instanceList",
                "id": f"projects/{project}/zones/{zone}/instances",
                "items": items,
            }
        )

    async def _aggregated(self, request: web.Request) -> web.StreamResponse:
        project = request.match_info["project"]
        failure, _ = await self._fault("aggregatedList", None)
        if failure is not None:
            return failure
        by_zone: dict[str, list[dict[str, Any]]] = {}
        for (p, z, _), inst in sorted(self.instances.items()):
            if p == project and matches(inst, request.query.get("filter", "")):
                by_zone.setdefault(f"zones/{z}", []).append(self._observe(inst))
        return web.json_response(
            {
                "kind": "compute#instanceAggregatedList",
                "id": f"projects/{project}/aggregated/instances",
                "items": {scope: {"instances": items} for scope, items in by_zone.items()},
            }
        )

    async def _stop(self, request: web.Request) -> web.StreamResponse:
        return await self._transition(request, "stop", "STOPPING")

    async def _start(self, request: web.Request) -> web.StreamResponse:
        return await self._transition(request, "start", "STAGING")

    async def _delete(self, request: web.Request) -> web.StreamResponse:
        key = _instance_key(request)
        failure, _ = await self._fault("delete", key[1])
        if failure is not None:
            return failure
        inst = self.instances.get(key)
        if inst is None:
            return _not_found(key)
        inst["status"] = "STOPPING"
        op = self._new_operation(key[0], key[1], "delete", inst, "skyd-test@example.com")
        self._vm_sync(key, inst)
        op.on_done.append(lambda: self._remove(key))
        return web.json_response(op.body)

    async def _transition(self, request: web.Request, method: str, status: str) -> web.Response:
        key = _instance_key(request)
        failure, _ = await self._fault(method, key[1])
        if failure is not None:
            return failure
        inst = self.instances.get(key)
        if inst is None:
            return _not_found(key)
        if method == "start" and inst["status"] != "TERMINATED":
            return error(400, "resourceNotReady", f"Instance {key[2]} is not stopped")
        inst["status"] = status
        if method == "start":
            inst["lastStartTimestamp"] = now()
        else:
            inst["lastStopTimestamp"] = now()
        self._vm_sync(key, inst)
        op = self._new_operation(key[0], key[1], method, inst, "skyd-test@example.com")
        return web.json_response(op.body)

    def _observe(self, inst: dict[str, Any]) -> dict[str, Any]:
        status = inst["status"]
        inst["status"] = _NEXT_STATUS.get(status, status)
        if inst["status"] != status:
            self._vm_sync(_key_of_link(inst["selfLink"]), inst)
        return dict(inst, status=status)

    def _remove(self, key: tuple[str, str, str]) -> None:
        inst = self.instances.pop(key, None)
        if inst is not None:
            self.policies.detach(inst["selfLink"])
        self._vm_sync(key, None)

    def _vm_sync(self, key: tuple[str, str, str], inst: dict[str, Any] | None) -> None:
        """Power the instance's machine on or off to match its status (None: deleted)."""
        if self.machines is None:
            return
        vm_id = "/".join(key)
        if inst is None:
            self.machines.destroy(vm_id)
        elif inst["status"] == "RUNNING":
            self.machines.boot(vm_id, ssh_keys_logins(inst))
        elif inst["status"] in ("STOPPING", "TERMINATED", "SUSPENDING", "SUSPENDED"):
            self.machines.halt(vm_id)

    # -- operations ---------------------------------------------------------------------

    def _new_operation(
        self, project: str, zone: str, kind: str, inst: dict[str, Any], user: str
    ) -> _Operation:
        name = f"operation-{uuid.uuid4().hex}"
        body = {
            "kind": "compute#operation",
            "id": str(next(self._ids)),
            "name": name,
            "zone": f"{PUBLIC_BASE}/projects/{project}/zones/{zone}",
            "operationType": kind,
            "targetLink": inst["selfLink"],
            "targetId": inst["id"],
            "status": "RUNNING",
            "user": user,
            "progress": 0,
            "insertTime": now(),
            "startTime": now(),
            "selfLink": f"{PUBLIC_BASE}/projects/{project}/zones/{zone}/operations/{name}",
        }
        op = _Operation(body)
        self.operations[(project, zone, name)] = op
        return op

    def _finish(self, op: _Operation) -> None:
        if op.body["status"] != "DONE":
            op.body.update(status="DONE", progress=100, endTime=now())
            for callback in op.on_done:
                callback()

    async def _op_get(self, request: web.Request) -> web.StreamResponse:
        failure, _ = await self._fault("operations.get", request.match_info["zone"])
        if failure is not None:
            return failure
        op = self.operations.get(_operation_key(request))
        if op is None:
            return error(404, "notFound", "operation not found")
        # A polled operation needs one more look before it is done.
        if op.body.get("_seen"):
            self._finish(op)
        op.body["_seen"] = True
        return web.json_response(_public(op.body))

    async def _op_wait(self, request: web.Request) -> web.StreamResponse:
        failure, _ = await self._fault("operations.wait", request.match_info["zone"])
        if failure is not None:
            return failure
        op = self.operations.get(_operation_key(request))
        if op is None:
            return error(404, "notFound", "operation not found")
        self._finish(op)
        return web.json_response(_public(op.body))

    async def _op_list(self, request: web.Request) -> web.StreamResponse:
        project, zone = request.match_info["project"], request.match_info["zone"]
        failure, _ = await self._fault("operations.list", zone)
        if failure is not None:
            return failure
        items = [
            _public(op.body)
            for (p, z, _), op in self.operations.items()
            if p == project and z == zone and matches(op.body, request.query.get("filter", ""))
        ]
        return web.json_response({"kind": "compute#operationList", "items": items})

    # -- faults -------------------------------------------------------------------------

    async def _fault(
        self, method: str, zone: str | None
    ) -> tuple[web.Response | None, GceFault | None]:
        self.calls[method] += 1
        unknown = check_zone(zone) if self.strict and zone is not None else None
        if unknown is not None:
            return error(unknown.status, unknown.reason, unknown.message, unknown.field), None
        for fault in self.faults:
            if fault.matches(method, zone):
                if fault.times is not None:
                    fault.times -= 1
                if fault.hang:
                    return await self._hang(), fault
                if fault.status:
                    return error(fault.status, fault.reason, _msg(fault)), fault
                return None, fault
        return None, None


def ssh_keys_logins(inst: dict[str, Any]) -> dict[str, list[str]]:
    """Users and keys from the instance's `ssh-keys` metadata (lines of `user:key`)."""
    logins: dict[str, list[str]] = {}
    for item in inst.get("metadata", {}).get("items", []):
        if item.get("key") != "ssh-keys":
            continue
        for line in str(item.get("value", "")).splitlines():
            user, sep, key = line.partition(":")
            if sep and user.strip() and key.strip():
                logins.setdefault(user.strip(), []).append(key.strip())
    return logins


def _key_of_link(link: str) -> tuple[str, str, str]:
    parts = link.split("/")
    return parts[-5], parts[-3], parts[-1]


def _msg(fault: GceFault) -> str:
    return f"{fault.operation_error or fault.reason}: {fault.message}"


def _public(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if not k.startswith("_")}


def _op_key(body: dict[str, Any]) -> tuple[str, str, str]:
    parts = body["selfLink"].split("/")
    return parts[-5], parts[-3], parts[-1]


def _instance_key(request: web.Request) -> tuple[str, str, str]:
    m = request.match_info
    return m["project"], m["zone"], m["name"]


def _operation_key(request: web.Request) -> tuple[str, str, str]:
    m = request.match_info
    return m["project"], m["zone"], m["op"]


def _not_found(key: tuple[str, str, str]) -> web.Response:
    project, zone, name = key
    return error(
        404,
        "notFound",
        f"The resource 'projects/{project}/zones/{zone}/instances/{name}' was not found",
    )
