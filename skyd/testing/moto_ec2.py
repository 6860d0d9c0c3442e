"""Moto's EC2 server on loopback behind a proxy that injects AWS errors, hangs and preemptions."""

from __future__ import annotations

import contextlib
import re
import threading
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientSession, ClientTimeout, web

from skyd.testing.ebs_rules import check_block_devices
from skyd.testing.ec2_placement import PlacementGroups
from skyd.testing.efa_rules import check_network_interfaces
from skyd.testing.fake_vm import FakeVmHost
from skyd.testing.loopback_fake import LoopbackFake

MOTO_ACCOUNT_ID = "123456789012"

# Calls after which instances may have changed state (and their machines must follow).
_STATE_ACTIONS = frozenset(
    {
        "RunInstances",
        "StartInstances",
        "StopInstances",
        "TerminateInstances",
        "DescribeInstances",
        "DescribeInstanceStatus",
    }
)
# The login user each family of images creates (what an AMI's documentation says).
_IMAGE_USERS = (
    ("ubuntu", "ubuntu"),
    ("debian", "admin"),
    ("amzn", "ec2-user"),
    ("al2023", "ec2-user"),
    ("amazon linux", "ec2-user"),
)

# Headers the proxy must not copy verbatim: they describe the hop, not the payload.
_HOP_HEADERS = frozenset(
    {"connection", "content-length", "transfer-encoding", "keep-alive", "host", "content-encoding"}
)


@dataclass
class Ec2Fault:
    """Answer matching EC2 API calls with an AWS error instead of forwarding them to moto.

    `params` narrows the match to calls whose form parameters have these values
    (e.g. {"Placement.AvailabilityZone": "us-east-1b"}). `times` counts how many calls
    fail (None = until cleared). `hang` never answers, so the client's read timeout fires.
    """

    action: str
    code: str = ""
    status: int = 400
    message: str = "injected by MotoEc2"
    params: Mapping[str, str] = field(default_factory=dict)
    times: int | None = 1
    hang: bool = False
    # With hang: let moto carry the call out first, then lose the answer (the cloud acted).
    after_forward: bool = False

    def matches(self, action: str, form: Mapping[str, str]) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        if action != self.action:
            return False
        return all(form.get(k) == v for k, v in self.params.items())


def error_xml(code: str, message: str) -> str:
    """The body EC2's query protocol returns for an error (what botocore parses)."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error>"
        f"</Errors><RequestID>{uuid.uuid4()}</RequestID></Response>"
    )


@dataclass(frozen=True)
class StockImage:
    """A public AMI every fake region has, and the public SSM parameter naming it."""

    ami_id: str
    name: str
    parameter: str
    root_device_name: str = "/dev/sda1"


# What AWS publishes and skyd looks up when no image is configured: Canonical's Ubuntu and
# the Deep Learning Base AMI (NVIDIA driver), each behind its public SSM parameter.
# ami-12c6146b is moto's own example image id, which older tests configure explicitly.
STOCK_IMAGES = (
    StockImage(
        "ami-12c6146b",
        "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-20240501",
        "/aws/service/canonical/ubuntu/server/22.04/stable/current/amd64/hvm/ebs-gp2/ami-id",
    ),
    StockImage(
        "ami-0d1a5e0000000a001",
        "Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04) 20240501",
        "/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-22.04/latest/ami-id",
    ),
)


class MotoServerThread:
    """One ThreadedMotoServer on a free loopback port (synchronous: start once, reset often).

    Every reset leaves the STOCK_IMAGES (and their SSM parameters) in the warm regions.
    """

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._lock = threading.Lock()
        self._warm: tuple[str, ...] = ("us-east-1",)
        self.url = ""

    def start(self, warm_regions: tuple[str, ...] = ("us-east-1",)) -> str:
        from moto.ec2.models import ec2_backends

        # Importing EC2 and building a region's backend takes seconds; doing it here keeps
        # that out of the first API call (and out of client read timeouts).
        self._warm = warm_regions
        for region in warm_regions:
            ec2_backends[MOTO_ACCOUNT_ID][region]
        self._stock()
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        return self.url

    def stop(self) -> None:
        self._server.stop()

    def reset(self) -> None:
        """Forget every resource (moto's state is process-global)."""
        from moto.ec2.models import ec2_backends

        with self._lock:
            ec2_backends.reset()
            self._stock()

    def _stock(self) -> None:
        import datetime as dt

        from moto.ec2.models import ec2_backends
        from moto.ec2.models.amis import Ami
        from moto.ssm.models import Parameter, ssm_backends

        for region in self._warm:
            ec2 = ec2_backends[MOTO_ACCOUNT_ID][region]
            params = ssm_backends[MOTO_ACCOUNT_ID][region]._parameters
            for image in STOCK_IMAGES:
                ec2.amis[image.ami_id] = Ami(
                    ec2,
                    image.ami_id,
                    name=image.name,
                    owner_id="099720109477",
                    public=True,
                    root_device_type="ebs",
                    root_device_name=image.root_device_name,
                    architecture="x86_64",
                    virtualization_type="hvm",
                    region_name=region,
                )
                params[image.parameter] = [
                    Parameter(  # type: ignore[abstract]  # moto's own class, as moto builds it
                        account_id=MOTO_ACCOUNT_ID,
                        name=image.parameter,
                        value=image.ami_id,
                        parameter_type="String",
                        description=None,
                        allowed_pattern=None,
                        keyid=None,
                        last_modified_date=dt.datetime.now(dt.UTC),
                        version=1,
                        data_type="aws:ec2:image",
                    )
                ]


class MotoEc2(LoopbackFake):
    """The fault-injecting EC2 endpoint tests point the AWS adapter at.

    Every call is forwarded to moto unless a registered Ec2Fault matches its Action;
    `calls` counts Actions seen, so tests can assert how many RunInstances happened.

    With `machines`, every instance is a real machine (skyd.testing.fake_vm): its private
    and public IP are its own loopback address, and while it is running an sshd accepts
    its key pair's public key for its image's default user (`image_users[ami]`, else from
    the image's name: ubuntu, admin for Debian, ec2-user for Amazon Linux; else ubuntu).
    """

    def __init__(
        self,
        moto: MotoServerThread,
        machines: FakeVmHost | None = None,
        image_users: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__()
        self._moto = moto
        self.machines = machines
        self.image_users = dict(image_users or {})
        # RunInstances answers by ClientToken: EC2 is idempotent on it, moto is not.
        self._runs: dict[str, web.Response] = {}
        self.faults: list[Ec2Fault] = []
        self.calls: Counter[str] = Counter()
        self.block_devices: list[dict[str, str]] = []  # each RunInstances' mappings
        self.network_interfaces: list[dict[str, str]] = []  # and its interfaces
        # moto has no placement groups: this proxy keeps them (skyd.testing.ec2_placement)
        self.placement_groups = PlacementGroups(_alive)
        # server_seconds: time spent answering (moto's work plus this hop)
        self._session: ClientSession | None = None
        self.endpoint_url = ""

    async def start(self) -> str:
        app = web.Application(client_max_size=16 * 1024 * 1024, middlewares=[self._timed])
        app.router.add_route("*", "/{tail:.*}", self._answer)
        port = await self._serve(app)
        self._session = ClientSession(timeout=ClientTimeout(total=60), auto_decompress=False)
        self.endpoint_url = f"http://127.0.0.1:{port}"
        return self.endpoint_url

    async def stop(self) -> None:
        self._closing.set()
        if self._session is not None:
            await self._session.close()
        await super().stop()

    def add_fault(self, fault: Ec2Fault) -> Ec2Fault:
        self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        self.faults.clear()

    def preempt(self, instance_id: str, region: str) -> None:
        """Take a spot instance back the way EC2 does: terminated by the service."""
        from moto.ec2.models import ec2_backends
        from moto.ec2.models.instances import StateReason

        instance = ec2_backends[MOTO_ACCOUNT_ID][region].get_instance(instance_id)
        instance.terminate()
        instance.state_reason = StateReason(
            "Server.SpotInstanceTermination: Spot instance termination",
            "Server.SpotInstanceTermination",
        )
        self.sync_machines()

    def sync_machines(self) -> None:
        """Make every instance's machine match its state (moto changes state instantly)."""
        if self.machines is None:
            return
        from moto.ec2.models import ec2_backends

        for region, backend in list(ec2_backends[MOTO_ACCOUNT_ID].items()):
            for instance in backend.all_instances():
                vm_id = f"{region}/{instance.id}"
                state = instance.state
                if state in ("terminated", "shutting-down"):
                    self.machines.destroy(vm_id)
                    continue
                known = vm_id in self.machines.vms
                vm = self.machines.create(vm_id)
                if not known:
                    nic = instance.nics[0]
                    nic.private_ip_address = vm.address
                    if nic.public_ip:
                        nic.public_ip = vm.address
                if state == "running":
                    self.machines.boot(vm_id, self._logins(backend, instance))
                else:
                    self.machines.halt(vm_id)

    def _logins(self, backend: Any, instance: Any) -> dict[str, list[str]]:
        pair = backend.key_pairs.get(instance.key_name) if instance.key_name else None
        if pair is None or not pair.material_public:
            return {}
        material = pair.material_public
        key = material.decode() if isinstance(material, bytes) else str(material)
        return {self._image_user(backend, instance.image_id): [key]}

    def _image_user(self, backend: Any, image_id: str) -> str:
        if image_id in self.image_users:
            return self.image_users[image_id]
        image = backend.amis.get(image_id)
        name = f"{getattr(image, 'name', '')} {getattr(image, 'description', '')}".lower()
        return next((user for word, user in _IMAGE_USERS if word in name), "ubuntu")

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        form = _form(body, request.query_string)
        action = form.get("Action", "")
        self.calls[action] += 1
        token = form.get("ClientToken", "") if action == "RunInstances" else ""
        if token in self._runs:
            earlier = self._runs[token]
            return web.Response(status=200, body=earlier.body, headers=earlier.headers)
        for fault in self.faults:
            if fault.matches(action, form):
                if fault.times is not None:
                    fault.times -= 1
                if fault.hang:
                    if fault.after_forward:
                        await self._forward(request, body)
                    return await self._hang()
                return web.Response(
                    status=fault.status,
                    text=error_xml(fault.code, fault.message),
                    content_type="text/xml",
                )
        if action == "RunInstances":
            # moto keeps a gp3/io2 volume's type and size but not its Iops / Throughput:
            # what each launch asked for is kept here for tests to read
            self.block_devices.append(
                {k: v for k, v in form.items() if k.startswith("BlockDeviceMapping.")}
            )
            # moto ignores InterfaceType: what each launch asked of its interfaces
            self.network_interfaces.append(
                {k: v for k, v in form.items() if k.startswith("NetworkInterface.")}
            )
        refused = (
            check_block_devices(form) or check_network_interfaces(form)
            if action == "RunInstances"
            else None
        )
        if refused is not None:  # what EC2 refuses of EBS volumes and moto lets through
            return web.Response(status=400, text=error_xml(*refused), content_type="text/xml")
        region = _region_of(request)
        if self.placement_groups.handles(action):
            status, text = self.placement_groups.answer(action, form, region)
            return web.Response(status=status, text=text, content_type="text/xml")
        misplaced = (
            self.placement_groups.check_launch(form, region) if action == "RunInstances" else None
        )
        if misplaced is not None:  # moto has no placement groups: checked here
            text = error_xml(misplaced.code, misplaced.message)
            return web.Response(status=misplaced.status, text=text, content_type="text/xml")
        response = await self._forward(request, body)
        if action == "RunInstances" and response.status == 200 and response.body:
            self._join_group(form, region, bytes(response.body))  # type: ignore[arg-type]
        if action in _STATE_ACTIONS:
            self.sync_machines()
        return response

    def _join_group(self, form: Mapping[str, str], region: str, answer: bytes) -> None:
        """Record the launched instances in their placement group, and set moto's own
        placement field so DescribeInstances shows Placement.GroupName as EC2 does."""
        name = form.get("Placement.GroupName")
        if not name:
            return
        from moto.ec2.models import ec2_backends

        ids = re.findall(r"<instanceId>(i-[0-9a-f]+)</instanceId>", answer.decode())
        self.placement_groups.launched(form, region, ids)
        backend = ec2_backends[MOTO_ACCOUNT_ID][region]
        for instance_id in ids:
            backend.get_instance(instance_id).placement.group_name = name

    async def _forward(self, request: web.Request, body: bytes) -> web.Response:
        response = await self._relay(request, body)
        form = _form(body, request.query_string)
        token = form.get("ClientToken", "")
        if form.get("Action") == "RunInstances" and token and response.status == 200:
            self._runs[token] = response
        return response

    async def _relay(self, request: web.Request, body: bytes) -> web.Response:
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
        async with self._session.request(
            request.method, self._moto.url + request.path_qs, data=body, headers=headers
        ) as upstream:
            payload = await upstream.read()
            out_headers = {
                k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_HEADERS
            }
            return web.Response(status=upstream.status, body=payload, headers=out_headers)


def _alive(region: str, instance_id: str) -> bool:
    """Whether moto still runs the instance (anything but terminated holds its group)."""
    from moto.ec2.models import ec2_backends

    try:
        instance = ec2_backends[MOTO_ACCOUNT_ID][region].get_instance(instance_id)
    except Exception:
        return False
    return bool(instance.state != "terminated")


def _region_of(request: web.Request) -> str:
    """The region a SigV4-signed call is for (its credential scope), as moto reads it."""
    found = re.search(
        r"Credential=[^/]+/\d+/([a-z0-9-]+)/", request.headers.get("Authorization", "")
    )
    return found.group(1) if found else "us-east-1"


def _form(body: bytes, query: str) -> dict[str, str]:
    fields: dict[str, Any] = {}
    with contextlib.suppress(UnicodeDecodeError):
        fields.update(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True))
    fields.update(urllib.parse.parse_qsl(query, keep_blank_values=True))
    return {str(k): str(v) for k, v in fields.items()}
