"""Reconcile at start: orphans terminated and reported, an unrecorded launch adopted (never
launched twice), and another daemon's resources left alone."""

from __future__ import annotations

from pathlib import Path

from skyctl.client import DaemonClient
from skyd.clock import SystemClock
from skyd.model import JobState, LaunchRequest, Offer
from skyd.providers.base import TAG_ATTEMPT, TAG_DAEMON, TAG_JOB, TAG_MANAGED, TAG_TOKEN
from skyd.providers.local import LocalProvider
from skyd.scheduler.service import daemon_identity
from skyd.spec import parse_task
from skyd.store import jobs as job_store
from skyd.store import open_store
from skyd.testing.daemon import DaemonThread, settings_for_tests, wait_until

OFFER = Offer("local", "local", "", "localhost", "", 0, 2.0, 4.0, 0, None)


def _tags(daemon_id: str, job: int, attempt: int) -> dict[str, str]:
    token = f"skyd-{job}-{attempt}"
    return {
        TAG_MANAGED: "1",
        TAG_DAEMON: daemon_id,
        TAG_JOB: str(job),
        TAG_ATTEMPT: str(attempt),
        TAG_TOKEN: token,
    }


async def _claim(slots: Path, daemon_id: str, job: int, attempt: int) -> str:
    provider = LocalProvider(slots, SystemClock(), slots=4, gpus=0)
    token = f"skyd-{job}-{attempt}"
    request = LaunchRequest(job, attempt, token, OFFER, False, tags=_tags(daemon_id, job, attempt))
    [instance] = await provider.launch(request)
    return instance.instance_id


async def test_orphans_are_terminated_adoptions_run_once_others_untouched(tmp_path: Path) -> None:
    settings = settings_for_tests(tmp_path)
    state = settings.state_dir
    slots = state / "local-slots"
    ours = daemon_identity(state)
    # a crash between "launched" and "recorded", for a job still PROVISIONING attempt 1
    store = open_store(state)
    spec = parse_task("name: adopt-me\nrun: echo ran once\n")
    job, _ = job_store.insert_job(
        store,
        name="adopt-me",
        owner_uid=0,
        owner_name="root",
        project=None,
        priority=0,
        spec_json=spec.to_json(),
        base_dir="/tmp",
        deadline=None,
        now=1.0,
    )
    placement = '{"provider": "local", "key": "local/local//localhost/ondemand", '
    placement += '"offer_key": "local/local//localhost", "cloud": "local", "region": "local", '
    placement += '"zone": "", "instance_type": "localhost", "spot": false, "hourly_price": 0}'
    job_store.transition(
        store,
        job.id,
        JobState.PROVISIONING,
        now=2.0,
        reason="placed",
        attempt=1,
        placement_json=placement,
    )
    store.close()
    adopted = await _claim(slots, ours, job.id, 1)
    orphan = await _claim(slots, ours, 999, 1)  # a job the store never heard of
    foreign = await _claim(slots, "skyd-otherlabserver", 5, 1)  # another daemon's

    daemon = DaemonThread(settings).start()
    try:
        with DaemonClient(daemon.socket_path) as client:
            report = client.request("GET", "/v1/orphans")
            actions = {o["instance_id"]: o["action"] for o in report["orphans"]}
            assert actions == {adopted: "adopted", orphan: "terminated"}
            done = wait_until(lambda: (j := client.get_job(job.id))["state"] == "SUCCEEDED" and j)
            log = b"".join(client.job_logs(job.id, follow=False)).decode()
    finally:
        assert daemon.stop() == 0
    assert log.count("ran once") == 1
    kinds = [e["kind"] for e in done["events"]]
    assert "adopted" in kinds
    launches = [e for e in done["events"] if e["state"] == "SETTING_UP"]
    assert len(launches) == 1
    remaining = sorted(p.stem for p in slots.glob("local-*.json"))
    assert remaining == [foreign]  # ours released; the other daemon's left alone
