"""Control-plane overhead of a launch, and of listing 1,000 tagged instances, per cloud adapter.

    python -m bench.launch [--launches 20] [--tagged 1000] [--providers aws,gcp,azure] [--json]

Each adapter runs against its local fake (moto behind the fault proxy, the Compute Engine
fake, the HTTPS Resource Manager fake) with zero injected latency. The fakes count the
time spent inside their request handlers; "overhead" is the launch's wall time minus that
server time: our code, the SDK, HTTP and TLS on the client side — everything but the cloud's
own latency. The same run measures the bare SDK create call(s) the same way, so the
adapter's own share (existing-instance check, network/security resources, waits) shows as
the difference. Target (issue 6): overhead ≤ 50 ms per launch; the 1,000-instance listing is
the adapter's part of a reconcile (target for the whole reconcile ≤ 2 s).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from skyd.clock import VirtualClock
from skyd.model import LaunchRequest, Offer
from skyd.providers.base import MANAGED, TAG_JOB, TAG_MANAGED, Provider


class ServerTimed(Protocol):
    server_seconds: float


@dataclass
class Sample:
    wall: list[float] = field(default_factory=list)
    server: list[float] = field(default_factory=list)

    def overhead(self) -> list[float]:
        return [w - s for w, s in zip(self.wall, self.server, strict=True)]

    def summary(self) -> dict[str, float]:
        return {
            "wall_ms": round(statistics.median(self.wall) * 1000, 2),
            "server_ms": round(statistics.median(self.server) * 1000, 2),
            "overhead_ms": round(statistics.median(self.overhead()) * 1000, 2),
        }


async def timed(fake: ServerTimed, sample: Sample, action: Callable[[], Awaitable[Any]]) -> Any:
    before = fake.server_seconds
    started = time.perf_counter()
    result = await action()
    sample.wall.append(time.perf_counter() - started)
    sample.server.append(fake.server_seconds - before)
    return result


def request(offer: Offer, job_id: int) -> LaunchRequest:
    return LaunchRequest(
        job_id=job_id,
        attempt=1,
        client_token=f"bench-{job_id}-{uuid.uuid4().hex[:8]}",
        offer=offer,
        spot=False,
    )


class LoopStall:
    """The longest time the event loop went without running a 5 ms ticker (SDK imports…)."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        while True:
            started = time.perf_counter()
            await asyncio.sleep(0.005)
            self.worst = max(self.worst, time.perf_counter() - started - 0.005)

    async def __aenter__(self) -> LoopStall:
        self._task = asyncio.create_task(self._tick())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


async def measure_launches(
    provider: Provider, fake: ServerTimed, offer: Offer, launches: int
) -> tuple[float, float, Sample]:
    cold_started = time.perf_counter()
    async with LoopStall() as stall:
        first = await provider.launch(request(offer, 1))
    cold = time.perf_counter() - cold_started
    await provider.terminate([i.instance_id for i in first])
    sample = Sample()
    for n in range(launches):
        made = await timed(fake, sample, partial(provider.launch, request(offer, 100 + n)))
        await provider.terminate([i.instance_id for i in made])
    return cold, stall.worst, sample


async def measure_listing(
    provider: Provider, fake: ServerTimed, rounds: int = 3
) -> tuple[Sample, int]:
    sample = Sample()
    seen = 0
    for _ in range(rounds):
        found = await timed(fake, sample, partial(provider.describe, tags={TAG_MANAGED: MANAGED}))
        seen = len(found)
    return sample, seen


# -- AWS ---------------------------------------------------------------------------------


async def bench_aws(launches: int, tagged: int) -> dict[str, Any]:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ["MOTO_EC2_LOAD_DEFAULT_AMIS"] = "false"
    import boto3

    from skyd.providers.aws import AwsConfig, AwsProvider
    from skyd.testing.moto_ec2 import STOCK_IMAGES, MotoEc2, MotoServerThread

    image = STOCK_IMAGES[0].ami_id  # an AMI the fake region has: it refuses unknown ones
    moto = MotoServerThread()
    moto.start()
    proxy = MotoEc2(moto)
    await proxy.start()
    provider = AwsProvider(
        # Moto takes tens of seconds to render 1,000 instances on a busy machine.
        AwsConfig(endpoint_url=proxy.endpoint_url, default_image_id=image, request_timeout_s=600),
        clock=VirtualClock(),
    )
    offer = Offer("aws", "us-east-1", "use1-az1", "t3.micro", "", 0, 2, 1.0, 10_400, 3_100)
    try:
        cold, stall, sample = await measure_launches(provider, proxy, offer, launches)
        raw = Sample()
        client = await provider.clients.client("us-east-1")  # the same SDK client, bare call
        for n in range(launches):
            await timed(
                proxy,
                raw,
                partial(
                    client.run_instances,
                    ImageId=image,
                    InstanceType="t3.micro",
                    MinCount=1,
                    MaxCount=1,
                    ClientToken=f"raw-{n}",
                    Placement={"AvailabilityZone": "us-east-1b"},
                ),
            )
        direct = boto3.client("ec2", region_name="us-east-1", endpoint_url=moto.url)
        # Only live ones: terminating one already terminated is refused (its ENI is gone).
        live = [{"Name": "instance-state-name", "Values": ["pending", "running"]}]
        ids = [
            i["InstanceId"]
            for r in direct.describe_instances(Filters=live)["Reservations"]
            for i in r["Instances"]
        ]
        direct.terminate_instances(InstanceIds=ids)
        tags = [{"Key": TAG_MANAGED, "Value": MANAGED}, {"Key": TAG_JOB, "Value": "9"}]
        for start in range(0, tagged, 250):
            count = min(250, tagged - start)
            direct.run_instances(
                ImageId=image,
                InstanceType="t3.micro",
                MinCount=count,
                MaxCount=count,
                TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
            )
        listing, seen = await measure_listing(provider, proxy)
    finally:
        await provider.aclose()
        await proxy.stop()
        moto.stop()
    return report("aws", cold, stall, sample, raw, listing, seen)


# -- GCP ---------------------------------------------------------------------------------


async def bench_gcp(launches: int, tagged: int) -> dict[str, Any]:
    from skyd.providers.gcp import GcpConfig, GcpProvider
    from skyd.testing.fake_gce import FakeGce

    fake = FakeGce()
    await fake.start()
    provider = GcpProvider(GcpConfig(project="bench", endpoint=fake.endpoint, anonymous=True))
    offer = Offer("gcp", "us-central1", "us-central1-a", "n2-standard-8", "", 0, 2, 8, 1, 1)
    try:
        cold, stall, sample = await measure_launches(provider, fake, offer, launches)
        from google.cloud import compute_v1

        instances, ops = await provider._clients()
        raw = Sample()

        def insert_and_wait(n: int) -> None:
            op = instances.insert_unary(
                project="bench",
                zone="us-central1-a",
                instance_resource=compute_v1.Instance(
                    name=f"raw-{n}", machine_type="zones/us-central1-a/machineTypes/n2-standard-8"
                ),
            )
            ops.wait(project="bench", zone="us-central1-a", operation=op.name)

        for n in range(launches):
            await timed(fake, raw, partial(asyncio.to_thread, insert_and_wait, n))
        fake.instances.clear()
        template = {
            "kind": "compute#instance",
            "status": "RUNNING",
            "zone": "https://www.googleapis.com/compute/v1/projects/bench/zones/us-central1-a",
            "machineType": "zones/us-central1-a/machineTypes/n2-standard-8",
            "labels": {TAG_MANAGED: MANAGED, TAG_JOB: "9"},
            "scheduling": {},
            "networkInterfaces": [{"networkIP": "10.0.0.2"}],
        }
        for n in range(tagged):
            fake.instances[("bench", "us-central1-a", f"t-{n}")] = dict(
                template, name=f"t-{n}", id=str(n), selfLink=f"x/instances/t-{n}"
            )
        listing, seen = await measure_listing(provider, fake)
    finally:
        await provider.aclose()
        await fake.stop()
    return report("gcp", cold, stall, sample, raw, listing, seen)


# -- Azure -------------------------------------------------------------------------------


async def bench_azure(launches: int, tagged: int) -> dict[str, Any]:
    from skyd.providers.azure import AzureConfig, AzureProvider
    from skyd.testing.fake_azure import FakeAzure, StaticTokenCredential

    with tempfile.TemporaryDirectory() as certs:
        fake = FakeAzure(Path(certs))
        await fake.start()
        provider = AzureProvider(
            AzureConfig(
                subscription_id="00000000-0000-0000-0000-00000000beef",
                resource_group="bench",
                base_url=fake.base_url,
                ca_file=str(fake.ca_file),
                ssh_public_key="ssh-ed25519 AAAA bench",
                poll_interval_s=0,
            ),
            credential=StaticTokenCredential(),
            clock=VirtualClock(),
        )
        offer = Offer("azure", "eastus", "", "Standard_D2s_v5", "", 0, 2, 8, 1, 1)
        try:
            cold, stall, sample = await measure_launches(provider, fake, offer, launches)
            client = await provider.arm.compute()
            nic = provider.arm.network_path("bench", "networkInterfaces", "raw-nic")
            await provider.arm.long_running(
                "PUT", nic, "eastus", {"location": "eastus", "properties": {}}
            )
            raw = Sample()

            async def create(n: int) -> None:
                body = {
                    "location": "eastus",
                    "properties": {
                        "hardwareProfile": {"vmSize": "Standard_D2s_v5"},
                        "networkProfile": {"networkInterfaces": [{"id": nic}]},
                    },
                }
                poller = await client.virtual_machines.begin_create_or_update(
                    "bench", f"raw-{n}", body
                )
                await poller.result()

            for n in range(launches):
                await timed(fake, raw, partial(create, n))
            fake.vms.clear()
            for n in range(tagged):
                fake.vms[("bench", f"t-{n}")] = {
                    "id": f"{provider.arm.rg_path('bench')}/providers/Microsoft.Compute/t-{n}",
                    "name": f"t-{n}",
                    "location": "eastus",
                    "tags": {TAG_MANAGED: MANAGED, TAG_JOB: "9"},
                    "properties": {
                        "provisioningState": "Succeeded",
                        "hardwareProfile": {"vmSize": "Standard_D2s_v5"},
                    },
                    "_power": "running",
                }
            listing, seen = await measure_listing(provider, fake)
        finally:
            await provider.aclose()
            await fake.stop()
    return report("azure", cold, stall, sample, raw, listing, seen)


def report(
    cloud: str, cold: float, stall: float, sample: Sample, raw: Sample, listing: Sample, seen: int
) -> dict[str, Any]:
    launch = sample.summary()
    bare = raw.summary()
    return {
        "cloud": cloud,
        "first_launch_cold_ms": round(cold * 1000, 1),
        "first_launch_worst_loop_stall_ms": round(stall * 1000, 1),
        "launch": launch,
        "bare_sdk_create": bare,
        "adapter_share_ms": round(launch["overhead_ms"] - bare["overhead_ms"], 2),
        "overhead_vs_target_50ms": round(launch["overhead_ms"] / 50.0, 3),
        "list_tagged": {"instances": seen, **listing.summary()},
    }


async def main_async(args: argparse.Namespace) -> list[dict[str, Any]]:
    runners = {"aws": bench_aws, "gcp": bench_gcp, "azure": bench_azure}
    results = []
    for name in args.providers.split(","):
        results.append(await runners[name.strip()](args.launches, args.tagged))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--launches", type=int, default=20)
    parser.add_argument("--tagged", type=int, default=1000)
    parser.add_argument("--providers", default="aws,gcp,azure")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = asyncio.run(main_async(args))
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(
        f"{'cloud':6} {'launch wall':>12} {'server':>9} {'overhead':>9} {'bare SDK ovh':>13} "
        f"{'adapter':>8} {'/50ms':>6} {'cold':>8} {'stall':>7} | {'list N':>6} {'wall':>8} "
        f"{'overhead':>9}"
    )
    for r in results:
        la, bare, li = r["launch"], r["bare_sdk_create"], r["list_tagged"]
        print(
            f"{r['cloud']:6} {la['wall_ms']:>10.1f}ms {la['server_ms']:>7.1f}ms "
            f"{la['overhead_ms']:>7.1f}ms {bare['overhead_ms']:>11.1f}ms "
            f"{r['adapter_share_ms']:>6.1f}ms {r['overhead_vs_target_50ms']:>6.2f} "
            f"{r['first_launch_cold_ms']:>6.0f}ms "
            f"{r['first_launch_worst_loop_stall_ms']:>5.0f}ms | "
            f"{li['instances']:>6} {li['wall_ms']:>6.1f}ms "
            f"{li['overhead_ms']:>7.1f}ms"
        )
    print(
        "medians; overhead = wall - time inside the fake's handlers; adapter = overhead - bare SDK"
    )


if __name__ == "__main__":
    main()
