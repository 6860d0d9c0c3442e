"""The scheduler's per-tick instance snapshot: reused within a tick, taken again once a provider
says its instances changed (a sim trace withdrawal), so a preemption is seen at once."""

from __future__ import annotations

from pathlib import Path

from skyd.clock import VirtualClock
from skyd.model import InstanceState, LaunchRequest
from skyd.scheduler.describing import InstanceStates
from skyd.store import instances as instance_store
from skyd.store import open_store
from skyd.testing.memory_cloud import MemoryCloud

START = 1_800_000_000.0


async def test_an_expired_snapshot_is_taken_again_within_the_tick(tmp_path: Path) -> None:
    clock = VirtualClock(START)
    cloud = MemoryCloud(clock)
    store = open_store(tmp_path)
    (vm,) = await cloud.launch(LaunchRequest(1, 1, "t1", cloud.offers()[0], False))
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO jobs (id, name, owner_uid, owner_name, project, state, spec_json,"
            " base_dir, created_at, updated_at)"
            " VALUES (1, 'j', 1000, 'u', '', 'RUNNING', '{}', '/', ?, ?)",
            (START, START),
        )
        instance_store.insert_instance(
            conn, vm, job_id=1, attempt=1, client_token="t1", hourly_price_micros=1, now=START
        )
    (held,) = instance_store.active_instances(store)
    states = InstanceStates(store=store, clock=clock, providers={cloud.name: cloud}, max_age=1.0)
    assert (await states.states([held]))[vm.instance_id] is InstanceState.RUNNING

    cloud.preempt(vm.instance_id)
    clock.set(START + 0.5)  # a pass woken within the tick reads the tick's snapshot ...
    states.new_pass()
    assert (await states.states([held]))[vm.instance_id] is InstanceState.RUNNING
    states.expire()  # ... unless the provider said its instances changed
    states.new_pass()
    assert (await states.states([held]))[vm.instance_id] is not InstanceState.RUNNING
    store.close()
