"""AwsProvider: the Provider Protocol over EC2 through aioboto3."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence, Set
from typing import Any

from skyd.clock import Clock, SystemClock
from skyd.errors import CapacityError, ProviderError
from skyd.model import Instance, InstanceState, LaunchRequest, Offer
from skyd.providers.aws.body import run_instances_params
from skyd.providers.aws.cleanup import LIVE_STATES as _LIVE_STATES
from skyd.providers.aws.cleanup import AwsCleanup
from skyd.providers.aws.clients import Ec2Clients
from skyd.providers.aws.config import AwsConfig
from skyd.providers.aws.errors import CLOUD, translate_error_code, translate_exception
from skyd.providers.aws.images import Image, login_user_for
from skyd.providers.aws.network import (
    ensure_key_pair,
    ensure_security_group,
    find_network,
    groups_of,
)
from skyd.providers.aws.placement import (
    ensure_group,
    group_name,
    groups_in_use,
    why_not_cluster,
)
from skyd.providers.aws.ports import open_ports
from skyd.providers.base import (
    TAG_CLUSTER,
    TAG_TOKEN,
    launch_tags,
    managed_tags,
)

log = logging.getLogger(__name__)

_EC2_STATES = {
    "pending": InstanceState.PENDING,
    "running": InstanceState.RUNNING,
    "stopping": InstanceState.STOPPING,
    "stopped": InstanceState.STOPPED,
    "shutting-down": InstanceState.TERMINATING,
    "terminated": InstanceState.TERMINATED,
}
# State-reason codes EC2 sets when it interrupts a spot instance.
_SPOT_INTERRUPTION_CODES = frozenset(
    {"Server.SpotInstanceTermination", "Server.SpotInstanceShutdown"}
)


def instance_key(region: str, ec2_id: str) -> str:
    """skyd's id of an EC2 instance: the region travels with it, so no lookup table is needed."""
    return f"{region}/{ec2_id}"


def split_instance_key(key: str) -> tuple[str, str]:
    region, sep, ec2_id = key.partition("/")
    if not sep or not region or not ec2_id.startswith("i-"):
        raise ValueError(
            f"not an aws instance id: {key!r}; expected 'REGION/i-…' as returned by launch()"
        )
    return region, ec2_id


def ec2_client_token(client_token: str) -> str:
    """EC2 ClientToken (≤ 64 ASCII chars), stable for the same skyd token."""
    if len(client_token) <= 64 and client_token.isascii() and client_token.isprintable():
        return client_token
    return hashlib.sha256(client_token.encode()).hexdigest()[:64]


def resource_name(request: LaunchRequest) -> str:
    """Security group and key pair name shared by one cluster (or one job)."""
    cluster = request.tags.get(TAG_CLUSTER)
    return f"skyd-{cluster}" if cluster else f"skyd-job-{request.job_id}"


class AwsProvider:
    """Launches, describes, stops, starts and terminates EC2 instances for skyd.

    Instance ids are `REGION/i-…`. Every resource it creates (instances, volumes,
    security groups, key pairs) carries the skyd tags, so reconcile can find leaks.
    """

    name = "aws"

    def __init__(
        self, config: AwsConfig, clock: Clock | None = None, offers: Sequence[Offer] = ()
    ) -> None:
        self.config = config
        self._clock = clock or SystemClock()
        self._offers = tuple(offers)
        self.clients = Ec2Clients(config)
        self._zone_names: dict[str, dict[str, str]] = {}  # region -> {AZ id: AZ name}
        self._images: dict[tuple[str, str], Image] = {}  # (region, AMI id) -> what it is
        self._regions_used: set[str] = set()
        self.cleanup = AwsCleanup(
            config, self._clock, self._regions, self.clients.calls, self.clients.describe_instances
        )

    def _regions(self) -> list[str]:
        """The configured regions and any this adapter launched in."""
        return sorted(set(self.config.regions) | self._regions_used)

    def offers(self) -> Sequence[Offer]:
        return self._offers

    async def check(self) -> str:
        """One cheap authenticated call (`skyctl check`): the first region's zones."""
        region = self.config.regions[0]
        async with self.clients.calls(region) as ec2:
            reply = await ec2.describe_availability_zones()
        zones = len(reply.get("AvailabilityZones", []))
        return f"DescribeAvailabilityZones in {region} answered: {zones} zones"

    # -- launch -------------------------------------------------------------------------

    def placement_note(self, request: LaunchRequest) -> str:
        why_not = why_not_cluster(request.offer.instance_type, request.num_nodes)
        if why_not is not None:
            return f"no placement group: {why_not}"
        return f"in cluster placement group {group_name(ec2_client_token(request.client_token))}"

    async def launch(self, request: LaunchRequest) -> list[Instance]:
        offer = request.offer
        region, zone_id = offer.region, offer.zone
        self._regions_used.add(region)
        existing = await self._find(region, {TAG_TOKEN: request.client_token}, live_only=True)
        if existing:
            return existing
        image = await self._image(region, gpu=offer.accelerator_count > 0)
        zone_name = await self._zone_name(region, zone_id) if zone_id else None
        tags = launch_tags(request)
        token = ec2_client_token(request.client_token)
        why_not = why_not_cluster(offer.instance_type, request.num_nodes)
        placement_group = group_name(token) if why_not is None else None
        if why_not is not None and request.num_nodes > 1:
            log.info("aws: job %s attempt %s: %s", request.job_id, request.attempt, why_not)
        try:
            return await self._launch(request, image, zone_name, tags, token, placement_group)
        finally:
            self.cleanup.launching_groups.discard(placement_group or "")

    async def _launch(
        self,
        request: LaunchRequest,
        image: Image,
        zone_name: str | None,
        tags: dict[str, str],
        token: str,
        placement_group: str | None,
    ) -> list[Instance]:
        offer = request.offer
        region, zone_id = offer.region, offer.zone
        async with self.clients.calls(region, zone_id) as ec2:
            vpc_id, subnet_id = await find_network(
                ec2, self.config.vpc_ids.get(region), region, zone_id, zone_name
            )
            name = resource_name(request)
            group_id = await ensure_security_group(
                ec2, name, tags, vpc_id, self.config.ssh_ingress_cidrs
            )
            if request.ports:
                await open_ports(ec2, group_id, request.ports)
            key_name = (
                await ensure_key_pair(ec2, name, tags, self.config.ssh_public_key)
                if self.config.ssh_public_key
                else None
            )
            if placement_group is not None:
                self.cleanup.launching_groups.add(placement_group)
                await ensure_group(ec2, placement_group, tags)
        params = run_instances_params(
            request,
            image,
            token=token,
            tags=tags,
            subnet_id=subnet_id,
            group_id=group_id,
            public_ip=self.config.public_ip,
            zone_name=zone_name,
            placement_group=placement_group,
            key_name=key_name,
        )
        try:
            async with self.clients.calls(region, zone_id) as ec2:
                reply = await ec2.run_instances(**params)
        except ProviderError:
            # A failed attempt must not strand the group and key it created for itself.
            with contextlib.suppress(ProviderError):
                await self._release_unused(
                    region,
                    {group_id},
                    {key_name} if key_name else set(),
                    {placement_group} if placement_group else set(),
                )
            raise
        return [self._instance(region, raw) for raw in reply.get("Instances", [])]

    async def _image(self, region: str, gpu: bool) -> Image:
        """The AMI to boot (config, else the public SSM parameter) and what DescribeImages
        says of it: its root device and the user its family logs in as."""
        image_id = self.config.image_for(region, gpu)
        if image_id is None:
            name = self.config.gpu_image_parameter if gpu else self.config.image_parameter
            ssm = await self.clients.client(region, "ssm")
            try:
                reply = await ssm.get_parameter(Name=name)
            except Exception as exc:
                raise translate_exception(exc, region, None) from exc
            image_id = str(reply["Parameter"]["Value"])
        known = self._images.get((region, image_id))
        if known is not None:
            return known
        await self._learn_images(region, [image_id])
        image = self._images.get((region, image_id))
        if image is None:
            raise translate_error_code(
                "InvalidAMIID.NotFound", 400, f"The image id '[{image_id}]' does not exist",
                region, None,
            )  # fmt: skip
        return image

    async def _learn_images(self, region: str, image_ids: Sequence[str]) -> None:
        """What DescribeImages says of these AMIs (one call), remembered per (region, AMI)."""
        async with self.clients.calls(region) as ec2:
            reply = await ec2.describe_images(ImageIds=sorted(set(image_ids)))
        for raw in reply.get("Images", []):
            name, description = str(raw.get("Name", "")), str(raw.get("Description", ""))
            self._images[(region, str(raw["ImageId"]))] = Image(
                image_id=str(raw["ImageId"]),
                name=name,
                root_device_name=str(raw.get("RootDeviceName") or "/dev/sda1"),
                login_user=login_user_for(name, description),
            )

    async def _zone_map(self, region: str) -> dict[str, str]:
        """AZ id -> AZ name for this account (names are shuffled per account, ids are not)."""
        names = self._zone_names.get(region)
        if names is None:
            async with self.clients.calls(region) as ec2:
                reply = await ec2.describe_availability_zones()
            names = {
                z["ZoneId"]: z["ZoneName"]
                for z in reply.get("AvailabilityZones", [])
                if "ZoneId" in z and "ZoneName" in z
            }
            self._zone_names[region] = names
        return names

    async def _zone_name(self, region: str, zone: str) -> str:
        """Catalog zones are AZ ids (use1-az2); RunInstances wants this account's AZ name."""
        names = await self._zone_map(region)
        if zone in names:
            return names[zone]
        if zone in names.values():
            return zone
        raise CapacityError(
            f"aws: zone {zone!r} is not offered to this account in {region} "
            f"(known: {', '.join(sorted(names))})",
            scope=f"{CLOUD}/{region}/{zone}",
        )

    def _zone_id(self, region: str, zone_name: str) -> str:
        for zone_id, name in self._zone_names.get(region, {}).items():
            if name == zone_name:
                return zone_id
        return zone_name

    # -- describe -----------------------------------------------------------------------

    async def describe(
        self, instance_ids: Sequence[str] | None = None, tags: Mapping[str, str] | None = None
    ) -> dict[str, InstanceState]:
        if instance_ids is not None:
            by_region = _group_by_region(instance_ids)
            states: dict[str, InstanceState] = {
                key: InstanceState.TERMINATED for key in instance_ids
            }
            for region, ec2_ids in by_region.items():
                for raw in await self.clients.describe_instances(
                    region, [{"Name": "instance-id", "Values": ec2_ids}]
                ):
                    states[instance_key(region, raw["InstanceId"])] = _state_of(raw)
            return states
        wanted = dict(tags or managed_tags())
        regions = sorted(set(self.config.regions) | self._regions_used)
        results = await asyncio.gather(*(self._states_by_tags(r, wanted) for r in regions))
        return {key: state for batch in results for key, state in batch.items()}

    async def _states_by_tags(
        self, region: str, tags: Mapping[str, str]
    ) -> dict[str, InstanceState]:
        """States of tagged instances without DescribeInstances for every one of them.

        Parsing full DescribeInstances answers dominates a reconcile over many instances;
        DescribeTags plus DescribeInstanceStatus carry a tenth of the data. Only instances
        that have ended (or are missing from the status list) are described in full, since
        only their state reason tells a spot interruption from a termination.
        """
        ids: set[str] | None = None
        states: dict[str, InstanceState] = {}
        async with self.clients.calls(region) as ec2:
            for key, value in tags.items():
                found: set[str] = set()
                pages = ec2.get_paginator("describe_tags").paginate(
                    Filters=[
                        {"Name": "resource-type", "Values": ["instance"]},
                        {"Name": "key", "Values": [key]},
                        {"Name": "value", "Values": [value]},
                    ]
                )
                async for page in pages:
                    found.update(t["ResourceId"] for t in page.get("Tags", []))
                ids = found if ids is None else ids & found
            if not ids:
                return {}
            pages = ec2.get_paginator("describe_instance_status").paginate(IncludeAllInstances=True)
            async for page in pages:
                for status in page.get("InstanceStatuses", []):
                    if status["InstanceId"] in ids:
                        name = status.get("InstanceState", {}).get("Name", "")
                        states[status["InstanceId"]] = _EC2_STATES.get(name, InstanceState.PENDING)
        ended = {InstanceState.STOPPED, InstanceState.TERMINATING, InstanceState.TERMINATED}
        unsure = sorted(i for i in ids if states.get(i, InstanceState.TERMINATED) in ended)
        for start in range(0, len(unsure), 200):
            chunk = unsure[start : start + 200]
            for raw in await self.clients.describe_instances(
                region, [{"Name": "instance-id", "Values": chunk}]
            ):
                states[raw["InstanceId"]] = _state_of(raw)
        return {instance_key(region, i): state for i, state in states.items()}

    async def instances(self, tags: Mapping[str, str]) -> list[Instance]:
        """Every instance carrying all of `tags` in the configured (and used) regions."""
        regions = sorted(set(self.config.regions) | self._regions_used)
        results = await asyncio.gather(*(self._find(r, tags, live_only=False) for r in regions))
        return [inst for batch in results for inst in batch]

    async def _find(self, region: str, tags: Mapping[str, str], live_only: bool) -> list[Instance]:
        await self._zone_map(region)  # so records carry AZ ids, as the catalog does
        filters = [{"Name": f"tag:{k}", "Values": [v]} for k, v in tags.items()]
        if live_only:
            filters.append({"Name": "instance-state-name", "Values": _LIVE_STATES})
        raws = await self.clients.describe_instances(region, filters)
        if self.config.ssh_user is None:
            # a daemon that restarted after the launch has not looked at the image yet: its
            # login user (ubuntu, ec2-user, …) comes from what the AMI is
            unknown = {str(r.get("ImageId", "")) for r in raws} - {""}
            unknown -= {image for (where, image) in self._images if where == region}
            if unknown:
                with contextlib.suppress(ProviderError):  # then the default user is tried
                    await self._learn_images(region, sorted(unknown))
        return [self._instance(region, raw) for raw in raws]

    def _instance(self, region: str, raw: Mapping[str, Any]) -> Instance:
        zone_name = raw.get("Placement", {}).get("AvailabilityZone", "")
        tags = {t["Key"]: t["Value"] for t in raw.get("Tags", [])}
        launched = raw.get("LaunchTime")
        return Instance(
            instance_id=instance_key(region, raw["InstanceId"]),
            provider=self.name,
            cloud=CLOUD,
            region=region,
            zone=self._zone_id(region, zone_name),
            instance_type=raw.get("InstanceType", ""),
            spot=raw.get("InstanceLifecycle") == "spot",
            state=_state_of(raw),
            tags=tags,
            public_ip=raw.get("PublicIpAddress"),
            private_ip=raw.get("PrivateIpAddress"),
            launched_at=launched.timestamp() if launched is not None else None,
            ssh_user=self._login_user(region, str(raw.get("ImageId", ""))),
        )

    def _login_user(self, region: str, image_id: str) -> str | None:
        """The configured user, else that of the image (known once skyd launched it)."""
        image = self._images.get((region, image_id))
        return self.config.ssh_user or (image.login_user if image is not None else None)

    # -- stop / start / terminate -------------------------------------------------------

    async def stop(self, instance_ids: Sequence[str]) -> None:
        for region, ec2_ids in _group_by_region(instance_ids).items():
            async with self.clients.calls(region) as ec2:
                await ec2.stop_instances(InstanceIds=ec2_ids)

    async def start(self, instance_ids: Sequence[str]) -> None:
        for region, ec2_ids in _group_by_region(instance_ids).items():
            async with self.clients.calls(region) as ec2:
                await ec2.start_instances(InstanceIds=ec2_ids)

    async def terminate(self, instance_ids: Sequence[str]) -> None:
        """Terminate, then delete the security groups and key pairs nothing else uses."""
        for region, ec2_ids in _group_by_region(instance_ids).items():
            raws = await self.clients.describe_instances(
                region, [{"Name": "instance-id", "Values": ec2_ids}]
            )
            live = [r["InstanceId"] for r in raws if r.get("State", {}).get("Name") != "terminated"]
            groups = {
                g["GroupId"]
                for r in raws
                for g in groups_of(r)
                if g.get("GroupName", "").startswith("skyd-")
            }
            keys = {r["KeyName"] for r in raws if r.get("KeyName", "").startswith("skyd-")}
            if live:
                async with self.clients.calls(region) as ec2:
                    await ec2.terminate_instances(InstanceIds=live)
            await self._release_unused(region, groups, keys, groups_in_use(raws))

    async def _release_unused(
        self, region: str, groups: set[str], keys: set[str], placement: Set[str] = frozenset()
    ) -> None:
        await self.cleanup.release_unused(region, groups, keys, placement)

    async def sweep_ports(self, daemon_id: str, busy_jobs: Sequence[int]) -> list[str]:
        """This daemon's security groups no live instance uses (see PortSweeper)."""
        return await self.cleanup.sweep_ports(daemon_id, busy_jobs)

    async def orphaned_resources(self) -> list[str]:
        """Security groups, key pairs and placement groups with skyd tags nothing uses."""
        return await self.cleanup.orphaned_resources()

    async def sweep_placement(self, tags: Mapping[str, str]) -> list[str]:
        """Placement groups of `tags` a crash left (see PlacementSweeper)."""
        return await self.cleanup.sweep_placement(tags)

    async def aclose(self) -> None:
        await self.clients.aclose()


def _state_of(raw: Mapping[str, Any]) -> InstanceState:
    name = raw.get("State", {}).get("Name", "")
    reason = raw.get("StateReason", {}).get("Code", "")
    if raw.get("InstanceLifecycle") == "spot" and reason in _SPOT_INTERRUPTION_CODES:
        return InstanceState.PREEMPTED
    return _EC2_STATES.get(name, InstanceState.PENDING)


def _group_by_region(instance_ids: Sequence[str]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = defaultdict(list)
    for key in instance_ids:
        region, ec2_id = split_instance_key(key)
        grouped[region].append(ec2_id)
    return dict(grouped)
