"""The ssh provider against in-process SSH machines: offers, capacity, idempotency, hosts down."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from skyd.errors import AuthError, CapacityError, ProviderError, TransientError
from skyd.model import InstanceState, LaunchRequest, Offer
from skyd.providers.base import MANAGED, TAG_JOB, TAG_MANAGED, TAG_TOKEN
from skyd.providers.ssh import SshHost, SshProviderConfig
from skyd.providers.ssh.capacity import host_offers
from skyd.testing.ssh_server import FakeSshServer, SshFault
from tests.ssh.ssh_helpers import ProviderFactory, host_for


def request(offer: Offer, token: str, *, nodes: int = 1, job_id: int = 1) -> LaunchRequest:
    return LaunchRequest(
        job_id=job_id, attempt=1, client_token=token, offer=offer, spot=False, num_nodes=nodes
    )


def offer_of(provider_offers: list[Offer], instance_type: str) -> Offer:
    return next(o for o in provider_offers if o.instance_type == instance_type)


def test_offers_whole_host_gpu_shares_and_cpu_share(tmp_path: Path) -> None:
    host = SshHost(
        name="gpu-1",
        host="10.0.0.5",
        user="lab",
        key_path=tmp_path / "k",
        cpus=32,
        memory_gib=256,
        gpus={"A100": 4},
        hourly_price_micros=1_500_000,
    )
    offers = host_offers(host)
    assert [(o.instance_type, o.accelerator_name, o.accelerator_count) for o in offers] == [
        ("gpu-1", "A100", 4),
        ("gpu-1-A100x1", "A100", 1),
        ("gpu-1-A100x2", "A100", 2),
        ("gpu-1-A100x3", "A100", 3),
        ("gpu-1-cpu", "", 0),
    ]
    assert {(o.cloud, o.region, o.zone) for o in offers} == {("ssh", "lab", "gpu-1")}
    assert {o.price_micros for o in offers} == {1_500_000}
    assert {o.spot_price_micros for o in offers} == {None}
    cpu_only = host_offers(SshHost(name="cpu-1", host="h", user="u", key_path=tmp_path / "k"))
    assert [(o.instance_type, o.accelerator_count, o.price_micros) for o in cpu_only] == [
        ("cpu-1", 0, 0)
    ]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "Bad_Name", r"ssh\.hosts\['Bad_Name'\]\.name"),
        ("port", 0, r"\.port must be 1\.\.65535"),
        ("max_jobs", 0, r"\.max_jobs must be >= 1"),
        ("gpus", {"A100": 0}, r"\.gpus\.A100 must be a whole count"),
        ("gpus", {"A 100": 1}, r"'A 100' is not a GPU name"),
        ("hourly_price_micros", -1, r"hourly_price_micros must be >= 0"),
    ],
)
def test_bad_host_settings_name_the_field(
    tmp_path: Path, field: str, value: object, message: str
) -> None:
    settings: dict[str, object] = {"name": "box", "host": "h", "user": "u", "key_path": tmp_path}
    settings[field] = value
    with pytest.raises(ValueError, match=message):
        SshHost(**settings)  # type: ignore[arg-type]


def test_config_mapping_and_pool_checks(tmp_path: Path) -> None:
    host = SshHost.from_mapping(
        {"name": "box", "host": "h", "user": "u", "key_path": "~/.ssh/id", "gpus": {"V100": 2}}
    )
    assert host.key_path == Path("~/.ssh/id").expanduser()
    assert dict(host.gpus) == {"V100": 2}
    with pytest.raises(ValueError, match=r"ssh\.hosts\['box'\]: unknown setting\(s\) gpu;"):
        SshHost.from_mapping({"name": "box", "host": "h", "user": "u", "key_path": "k", "gpu": 1})
    with pytest.raises(ValueError, match=r"ssh\.hosts\['box'\]\.user is required"):
        SshHost.from_mapping({"name": "box", "host": "h", "key_path": "k"})
    with pytest.raises(ValueError, match="duplicate host name"):
        SshProviderConfig(hosts=[host, host], state_dir=tmp_path)


async def test_launch_is_idempotent_by_token_and_tags_instances(
    box_a: FakeSshServer, make_provider: ProviderFactory
) -> None:
    provider = make_provider(host_for(box_a))
    offer = provider.offers()[0]
    first = await provider.launch(request(offer, "job1-attempt1", job_id=1))
    again = await provider.launch(request(offer, "job1-attempt1", job_id=1))
    assert [i.instance_id for i in again] == [i.instance_id for i in first]
    assert provider.usage()["box-a"].jobs == 1
    inst = first[0]
    assert (inst.cloud, inst.region, inst.zone, inst.state) == (
        "ssh",
        "lab",
        "box-a",
        InstanceState.RUNNING,
    )
    assert inst.tags[TAG_MANAGED] == MANAGED and inst.tags[TAG_TOKEN] == "job1-attempt1"
    assert inst.private_ip == box_a.host
    assert await provider.describe(tags={TAG_JOB: "1"}) == {inst.instance_id: "RUNNING"}


async def test_slots_and_gpus_are_counted_per_host_and_survive_a_restart(
    box_a: FakeSshServer, box_b: FakeSshServer, make_provider: ProviderFactory
) -> None:
    hosts = (host_for(box_a, max_jobs=3, gpus={"A100": 4}), host_for(box_b, max_jobs=1))
    provider = make_provider(*hosts)
    offers = list(provider.offers())
    await provider.launch(request(offer_of(offers, "box-a-A100x3"), "t1"))
    with pytest.raises(CapacityError) as caught:
        await provider.launch(request(offer_of(offers, "box-a-A100x2"), "t2"))
    assert caught.value.scope == "ssh/lab/box-a"
    assert "1 free A100" in caught.value.message
    await provider.launch(request(offer_of(offers, "box-a-A100x1"), "t3"))
    await provider.launch(request(offer_of(offers, "box-b"), "t4"))

    # A daemon restart: a new provider over the same state directory keeps the counts.
    restarted = make_provider(*hosts)
    usage = restarted.usage()
    assert (usage["box-a"].jobs, dict(usage["box-a"].gpus)) == (2, {"A100": 4})
    assert usage["box-b"].jobs == 1
    with pytest.raises(CapacityError, match="box-b runs 1 of 1 jobs"):
        await restarted.launch(request(offer_of(offers, "box-b"), "t5"))
    with pytest.raises(CapacityError, match="0 free A100"):
        await restarted.launch(request(offer_of(offers, "box-a-A100x1"), "t6"))
    # A CPU-only share still fits beside the GPUs: slots are the other limit.
    await restarted.launch(request(offer_of(offers, "box-a-cpu"), "t7"))
    with pytest.raises(CapacityError, match="box-a runs 3 of 3 jobs"):
        await restarted.launch(request(offer_of(offers, "box-a-cpu"), "t8"))
    t1 = [i for i in await restarted.describe() if "-t1-" in i]
    await restarted.terminate(t1)
    assert dict(restarted.usage()["box-a"].gpus) == {"A100": 1}


async def test_cpus_and_memory_asked_are_held_on_the_host_and_survive_a_restart(
    box_a: FakeSshServer, make_provider: ProviderFactory
) -> None:
    host = host_for(box_a, max_jobs=4)  # 8 CPUs, 32 GiB
    provider = make_provider(host)
    offer = provider.offers()[0]
    five = replace(request(offer, "five"), cpus=5.0, memory_gib=8.0)
    await provider.launch(five)
    with pytest.raises(CapacityError, match="has 3 of 8 CPUs free; 4 asked"):
        await provider.launch(replace(request(offer, "four"), cpus=4.0))
    with pytest.raises(CapacityError, match="has 24 of 32 GiB of memory free; 30 asked"):
        await provider.launch(replace(request(offer, "big"), memory_gib=30.0))
    await provider.launch(replace(request(offer, "three"), cpus=3.0))
    usage = make_provider(host).usage()["box-a"]  # a restarted daemon keeps the counts
    assert (usage.jobs, usage.cpus, usage.memory_gib) == (2, 8.0, 8.0)
    await provider.launch(request(offer, "no-ask"))  # asks nothing: only a job slot


async def test_multi_node_request_must_fit_the_host(
    box_a: FakeSshServer, make_provider: ProviderFactory
) -> None:
    provider = make_provider(host_for(box_a, max_jobs=2, gpus={"V100": 2}))
    offers = list(provider.offers())
    with pytest.raises(CapacityError, match="2 free V100; 4 needed"):
        await provider.launch(request(offer_of(offers, "box-a"), "gang", nodes=2))
    assert provider.usage()["box-a"].jobs == 0
    launched = await provider.launch(request(offer_of(offers, "box-a-V100x1"), "gang2", nodes=2))
    assert [i.instance_id.rsplit("-", 1)[1] for i in launched] == ["0", "1"]


async def test_a_gang_spreads_over_the_pools_hosts_one_node_each_first(
    box_a: FakeSshServer, box_b: FakeSshServer, make_provider: ProviderFactory
) -> None:
    small = host_for(box_b, "box-small", cpus=2, max_jobs=4)
    provider = make_provider(host_for(box_a, max_jobs=2), host_for(box_b, max_jobs=1), small)
    head = offer_of(list(provider.offers()), "box-a")
    # box-small has fewer CPUs than box-a: it never takes a node of box-a's shape
    assert provider.max_nodes(head) == 3
    launched = await provider.launch(request(head, "gang", nodes=3))
    hosts = [provider.host_config(i.instance_id).name for i in launched]
    assert hosts == ["box-a", "box-b", "box-a"]
    assert [i.instance_id.rsplit("-", 1)[1] for i in launched] == ["0", "1", "2"]
    # the pool is full for this shape now: all or nothing, nothing more is held
    with pytest.raises(CapacityError, match="box-b runs 1 of 1 jobs"):
        await provider.launch(request(offer_of(list(provider.offers()), "box-b"), "more"))
    assert provider.usage()["box-small"].jobs == 0
    await provider.terminate([i.instance_id for i in launched])
    assert provider.usage()["box-a"].jobs == provider.usage()["box-b"].jobs == 0


async def test_a_host_that_stops_answering_is_marked_down_after_repeated_failures(
    box_a: FakeSshServer, box_b: FakeSshServer, make_provider: ProviderFactory
) -> None:
    provider = make_provider(host_for(box_a), host_for(box_b), down_after_failures=2)
    on_a = (await provider.launch(request(provider.offers()[0], "on-a")))[0].instance_id
    on_b = (await provider.launch(request(provider.offers()[1], "on-b")))[0].instance_id
    await box_a.go_down("hang")
    # One missed probe is a blip, not a dead machine.
    assert await provider.describe([on_a, on_b]) == {on_a: "RUNNING", on_b: "RUNNING"}
    assert await provider.describe([on_a, on_b]) == {on_a: "PREEMPTED", on_b: "RUNNING"}
    assert provider.usage()["box-a"].down
    # The machine comes back: the lost instance stays PREEMPTED until the core terminates it.
    await box_a.come_back()
    assert await provider.describe([on_a]) == {on_a: "PREEMPTED"}
    assert await provider.host_up("box-a")
    assert not provider.usage()["box-a"].down
    await provider.terminate([on_a])
    assert await provider.describe([on_a]) == {on_a: "TERMINATED"}
    assert provider.usage()["box-a"].jobs == 0


async def test_launch_on_an_unreachable_or_drained_host_names_the_scope(
    box_a: FakeSshServer, make_provider: ProviderFactory
) -> None:
    provider = make_provider(host_for(box_a))
    offer = provider.offers()[0]
    (box_a.home / ".skyd").mkdir()
    (box_a.home / ".skyd" / "drain").touch()
    with pytest.raises(CapacityError, match="drained") as drained:
        await provider.launch(request(offer, "t1"))
    assert drained.value.scope == "ssh/lab/box-a"
    (box_a.home / ".skyd" / "drain").unlink()
    box_a.add_fault(SshFault("reject_auth"))
    with pytest.raises(AuthError, match="refused the login") as refused:
        await provider.launch(request(offer, "t1"))
    assert refused.value.scope == "ssh"
    await box_a.go_down()
    with pytest.raises(TransientError, match="unreachable") as down:
        await provider.launch(request(offer, "t1"))
    assert down.value.scope == "ssh/lab/box-a"
    assert provider.usage()["box-a"].jobs == 0


async def test_offer_of_another_pool_is_refused(
    box_a: FakeSshServer, make_provider: ProviderFactory
) -> None:
    provider = make_provider(host_for(box_a))
    stranger = Offer("ssh", "lab", "nowhere", "nowhere", "", 0, 1, 1, 0, None)
    with pytest.raises(ProviderError, match=r"not an offer of the ssh pool \(hosts: box-a\)"):
        await provider.launch(request(stranger, "t1"))


async def test_stop_keeps_the_slot_and_start_needs_the_host(
    box_a: FakeSshServer, make_provider: ProviderFactory
) -> None:
    provider = make_provider(host_for(box_a, max_jobs=1))
    iid = (await provider.launch(request(provider.offers()[0], "t1")))[0].instance_id
    await provider.stop([iid])
    assert await provider.describe([iid]) == {iid: "STOPPED"}
    with pytest.raises(CapacityError):
        await provider.launch(request(provider.offers()[0], "t2"))
    await box_a.go_down()
    with pytest.raises(TransientError):
        await provider.start([iid])
    await box_a.come_back()
    await provider.start([iid])
    assert await provider.describe([iid]) == {iid: "RUNNING"}


async def test_concurrent_launches_with_one_token_take_one_slot(
    box_a: FakeSshServer, make_provider: ProviderFactory
) -> None:
    provider = make_provider(host_for(box_a, max_jobs=1))
    same = request(provider.offers()[0], "retried")
    first, second = await asyncio.gather(provider.launch(same), provider.launch(same))
    assert [i.instance_id for i in first] == [i.instance_id for i in second]
    assert provider.usage()["box-a"].jobs == 1


def test_pool_config_from_the_config_file_table(tmp_path: Path) -> None:
    config = SshProviderConfig.from_mapping(
        {
            "probe_timeout_s": 3,
            "hosts": [
                {"name": "a", "host": "10.0.0.1", "user": "lab", "key_path": "/k", "max_jobs": 2}
            ],
        },
        tmp_path,
    )
    assert config.probe_timeout_s == 3
    assert [(h.name, h.max_jobs) for h in config.hosts] == [("a", 2)]
    with pytest.raises(ValueError, match=r"ssh: unknown setting\(s\) probe_timeout;"):
        SshProviderConfig.from_mapping({"probe_timeout": 3}, tmp_path)
    with pytest.raises(ValueError, match=r"ssh\.down_after_failures must be >= 1"):
        SshProviderConfig.from_mapping({"down_after_failures": 0}, tmp_path)


def test_the_documented_config_example_parses(tmp_path: Path) -> None:
    import textwrap
    import tomllib

    from skyd.providers.ssh import config as config_module

    doc = config_module.__doc__ or ""
    example = textwrap.dedent(doc.split("SshProviderConfig.from_mapping):", 1)[1])
    parsed = SshProviderConfig.from_mapping(tomllib.loads(example)["ssh"], tmp_path)
    assert [(h.name, dict(h.gpus), h.max_jobs) for h in parsed.hosts] == [
        ("gpu-box-1", {"A100": 4}, 4)
    ]
