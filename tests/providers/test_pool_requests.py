"""`cpus:` / `memory:` on capacity pools (local, ssh, slurm, kubernetes) ask for that much of
a node; on clouds they name an instance type of exactly that size (SkyPilot's reading).
Matching (both the per-offer and the column path), and what each pool hands a node."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from skyd.catalog import Catalog
from skyd.clock import VirtualClock
from skyd.errors import CapacityError
from skyd.model import Amount, LaunchRequest, Offer, OfferFilter
from skyd.providers.kubernetes.manifests import job_manifest
from skyd.providers.local.provider import LocalProvider
from skyd.providers.slurm.script import batch_script
from skyd.providers.ssh.capacity import HostUsage, nodes_fit
from skyd.providers.ssh.config import SshHost


def _offer(cloud: str, itype: str, vcpus: float, memory: float) -> Offer:
    return Offer(cloud, cloud, "", itype, "", 0, vcpus, memory, 100_000, None)


OFFERS = [
    _offer("aws", "c5.large", 2, 4),
    _offer("aws", "t1.tiny", 1, 1),
    _offer("local", "localhost", 2, 8),
    _offer("kubernetes", "4cpu-16gb", 4, 16),
    _offer("slurm", "lab-2cpu-2gb", 2, 2),
    _offer("ssh", "box", 8, 32),
]


@pytest.mark.parametrize("column_path", [True, False])
@pytest.mark.parametrize(
    ("cpus", "memory", "feasible"),
    [
        (Amount(1), None, {"t1.tiny", "localhost", "4cpu-16gb", "lab-2cpu-2gb", "box"}),
        (Amount(2), None, {"c5.large", "localhost", "4cpu-16gb", "lab-2cpu-2gb", "box"}),
        (Amount(4), Amount(16), {"4cpu-16gb", "box"}),
        (Amount(3, or_more=True), None, {"4cpu-16gb", "box"}),
        (None, Amount(4), {"c5.large", "localhost", "4cpu-16gb", "box"}),
        (Amount(16), None, set()),
    ],
)
def test_pools_admit_any_node_big_enough_clouds_the_exact_type(
    column_path: bool, cpus: Amount | None, memory: Amount | None, feasible: set[str]
) -> None:
    catalog = Catalog(OFFERS)
    query = OfferFilter(cpus=cpus, memory_gib=memory, spot=False)
    rows = catalog.explain(query) if column_path else catalog.explain_each(query)
    assert {c.offer.instance_type for c, reason in rows if reason is None} == feasible
    assert {r.value for _, r in rows if r is not None} <= {"resources_mismatch"}


def _request(token: str, cpus: float | None = None, memory: float | None = None) -> LaunchRequest:
    return LaunchRequest(
        job_id=1,
        attempt=1,
        client_token=token,
        offer=OFFERS[2],
        spot=False,
        cpus=cpus,
        memory_gib=memory,
    )


def test_local_slots_are_cpus_a_task_holds_and_is_pinned_to(tmp_path: Path) -> None:
    local = LocalProvider(tmp_path, VirtualClock(), slots=3, gpus=0)
    two = asyncio.run(local.launch(_request("a", cpus=2)))
    assert local.free_slots() == 1
    assert local.pinned_cpus(two[0].instance_id) is not None
    with pytest.raises(CapacityError, match=r"1 local node\(s\) of 2 slot\(s\) asked, 1 free of 3"):
        asyncio.run(local.launch(_request("b", cpus=1.5)))  # 1.5 CPUs hold 2 slots
    again = asyncio.run(local.launch(_request("a", cpus=2)))  # a retry holds nothing more
    assert [i.instance_id for i in again] == [two[0].instance_id] and local.free_slots() == 1
    unpinned = asyncio.run(local.launch(_request("c")))  # no cpus asked: one slot, all CPUs
    assert local.pinned_cpus(unpinned[0].instance_id) is None and local.free_slots() == 0
    asyncio.run(local.terminate([two[0].instance_id]))
    one = asyncio.run(local.launch(_request("d", cpus=1)))
    assert local.free_slots() == 1 and len(local.pinned_cpus(one[0].instance_id) or []) == 1


def test_local_memory_asks_are_held_out_of_this_hosts_memory(tmp_path: Path) -> None:
    local = LocalProvider(tmp_path, VirtualClock(), slots=4, gpus=0)
    total = local.offers()[0].memory_gib
    asyncio.run(local.launch(_request("a", memory=total * 0.6)))
    with pytest.raises(CapacityError, match="GiB"):
        asyncio.run(local.launch(_request("b", memory=total * 0.6)))
    asyncio.run(local.launch(_request("c", memory=total * 0.3)))
    assert local.free_memory_gib() == pytest.approx(total * 0.1)


def test_an_older_slot_file_without_numbers_still_holds_one_slot(tmp_path: Path) -> None:
    (tmp_path / "local-skyd-9-1.json").write_text('{"tags": {}, "launched_at": 0}')
    local = LocalProvider(tmp_path, VirtualClock(), slots=2, gpus=0)
    assert local.free_slots() == 1
    with pytest.raises(CapacityError):
        asyncio.run(local.launch(_request("a", cpus=2)))


def test_ssh_hosts_count_the_cpus_and_memory_their_jobs_asked(tmp_path: Path) -> None:
    host = SshHost(name="box", host="h", user="u", key_path=tmp_path / "k", cpus=8, memory_gib=32)
    offer = _offer("ssh", "box", 8, 32)
    held = HostUsage("box", jobs=1, max_jobs=8, gpus={}, gpus_total={}, down=False, cpus=5)
    assert nodes_fit(host, offer, 7, {}, _request("x", cpus=1), held) == 3
    assert nodes_fit(host, offer, 7, {}, _request("x", cpus=4), held) == 0
    assert nodes_fit(host, offer, 7, {}, _request("x", memory=10), held) == 3
    assert nodes_fit(host, offer, 7, {}, _request("x"), held) == 7  # no ask: job slots only


def test_kubernetes_pods_and_slurm_jobs_ask_for_the_tasks_share() -> None:
    def limits(**ask: float) -> object:
        manifest = job_manifest(
            name="j", tags={}, nodes=1, image="img", gpus=0, gpu_label="", gpu_product="",
            time_limit_s=None, linger_s=0, **ask,
        )  # fmt: skip
        return manifest["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]

    assert limits() == {"cpu": "1"}
    assert limits(cpus=0.5, memory_gib=1.5) == {"cpu": "0.5", "memory": "1536Mi"}

    def script(**ask: int) -> str:
        return batch_script(
            job_name="j", comment="c", partition="lab", nodes=1, gpu_type="", gpus_per_node=0,
            time_limit_s=None, run_dir="/r", python="python3", **ask,
        )  # fmt: skip

    assert "--cpus-per-task=1\n" in script(cpus_per_node=1, memory_mb=1024)
    assert "#SBATCH --mem=1024M" in script(cpus_per_node=1, memory_mb=1024)
    assert "--mem" not in script(cpus_per_node=2)


def test_local_says_a_task_waits_for_slots_it_fits_in_but_are_held(tmp_path: Path) -> None:
    local = LocalProvider(tmp_path, VirtualClock(), slots=2, gpus=0)
    assert local.no_room_for(2, None, 1) is None
    asyncio.run(local.launch(_request("a", cpus=1)))
    assert local.no_room_for(1, None, 1) is None
    assert "1 of 2 slots free; the task holds 2" in str(local.no_room_for(2, None, 1))
    assert local.no_room_for(3, None, 1) is None  # never here: placement and launch say so
    total = local.offers()[0].memory_gib
    asyncio.run(local.launch(_request("b", memory=total * 0.9)))
    assert local.no_room_for(None, None, 1) == (
        "local has 0 of 2 slots free; the task holds 1 (one per CPU asked, per node)"
    )
