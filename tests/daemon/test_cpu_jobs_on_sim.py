"""End to end: with the sim cloud on and the lab's one local slot busy, CPU jobs wait for it
or take a CPU instance type; none is ever placed on the trace's V100."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from skyctl.client import DaemonClient
from skyd.catalog import Catalog, default_catalog_dir
from skyd.clock import VirtualClock
from skyd.market.replay import TraceReplay
from skyd.market.traces import load_trace_set
from skyd.providers.sim.provider import SimProvider, sim_cpu_offers
from skyd.testing.daemon import DaemonThread, settings_for_tests, wait_until
from tests.daemon_calls import JsonObject

TRACES = default_catalog_dir() / "traces" / "aws-v100-3zone"


def test_sim_offers_cpu_types_at_catalog_prices(tmp_path: Path) -> None:
    clock = VirtualClock(1_800_000_000.0)
    replay = TraceReplay(load_trace_set(TRACES), clock)
    catalog = Catalog.load(clouds=["aws"])
    sim = SimProvider(replay, clock, tmp_path, cpu_offers=sim_cpu_offers(catalog.offers, replay))
    offers = {(o.zone, o.instance_type): o for o in sim.offers()}
    east = offers[("us-east-1c", "c5.2xlarge")]
    listed = next(
        o for o in catalog.offers if o.region == "us-east-1" and o.instance_type == "c5.2xlarge"
    )
    assert east.cloud == "sim" and east.region == "us-east-1"
    assert east.price_micros == listed.price_micros and east.spot_price_micros is None
    assert offers[("us-east-1c", "p3.2xlarge")].accelerator_name == "V100"
    zones = {zone for zone, _ in offers}
    assert zones == {"us-east-1c", "us-east-2b", "us-west-2a"}


def test_cpu_jobs_never_land_on_the_v100(tmp_path: Path) -> None:
    settings = settings_for_tests(tmp_path)
    settings.sim.enabled = True
    settings.sim.provisioning_delay_seconds = 0.1
    settings.local.slots = 1
    daemon = DaemonThread(settings).start()
    try:
        with DaemonClient(daemon.socket_path) as client:
            ids = [
                int(client.submit_command(["sleep", "1"], str(tmp_path), None)["id"])
                for _ in range(3)
            ]

            def finished(job_id: int) -> JsonObject | None:
                job = client.get_job(job_id)
                return job if job["state"] in ("SUCCEEDED", "FAILED") else None

            jobs = [wait_until(partial(finished, job_id), timeout=60) for job_id in ids]
            task = "resources:\n  cpus: 2+\nrun: sleep 1\n"
            optimize = client.request(
                "POST", "/v1/optimize", body={"task_yaml": task, "base_dir": str(tmp_path)}
            )
    finally:
        assert daemon.stop() == 0
    for job in jobs:
        assert job["state"] == "SUCCEEDED", job
        for event in job["events"]:
            placement = (event.get("data") or {}).get("placement") or {}
            assert not placement.get("accelerator_name"), event
            assert "p3.2xlarge" not in event["reason"] and "3.06" not in event["reason"], event
    # what `skyctl optimize` shows: the V100 is not a candidate for a CPU job here
    assert isinstance(optimize, dict)
    views = {(c["cloud"], c["instance_type"]): c for c in optimize["candidates"]}
    v100 = views[("sim", "p3.2xlarge")]
    assert v100["excluded"] == "unrequested_accelerator", v100
    assert ("sim", "c5.large") in views
