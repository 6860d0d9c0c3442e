"""kill -9 chaos on the cloud path (issue #13, point 4): `skyd run` against the fake EC2,
Compute Engine and Azure (VMs real sshd's) is killed again and again at chosen points of its
cloud jobs' lives, then restarted; at the end it finishes the work.

Each kill aims at one point, picked by a seeded RNG, and is sent the moment the harness sees
it (the fakes run in this process, so it watches their API calls and machines, and reads
the daemon's store):

- launch_sent: a launch request (RunInstances, instances.insert, VM PUT) just reached a fake;
- launched_not_recorded: a fake created a VM the store has no row for yet;
- booting: a launch is recorded but its job not started: the VM boots, or skyd waits for
  its sshd;
- running: a job is RUNNING on its VM;
- terminating: a terminate request (TerminateInstances, instances.delete, VM DELETE) just
  reached a fake.

Every point gets the same share of the kills, in a seeded random order. A point not seen
within its AIM_SECONDS gets a kill at that moment anyway (counted `random`).
Each start of the daemon is a fork of a process that imported skyd and the cloud SDKs once
(skyd.testing.warm_daemon; `--cold` starts `python -m skyd run` each time instead), so the
kills are spent on the jobs' lives rather than on imports.

Counted at the end (bench.chaos's audit of the store, plus the fakes themselves): jobs lost
or stuck, jobs not SUCCEEDED, instances any fake still holds, duplicate launches (VMs the
fakes created beyond one per recorded attempt), and instances whose ledger seconds differ
from their lifetimes.

    python -m bench.cloud_chaos --kills 50 --json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import shutil
import sqlite3
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

from bench.chaos import TERMINAL, Report, _audit
from skyctl.client import DaemonClient
from skyd.catalog import Catalog, default_catalog_dir
from skyd.testing.cloud_world import (
    AWS_ENV,
    AWS_IMAGE,
    AZURE_GROUP,
    AZURE_SUBSCRIPTION,
    GCP_PROJECT,
    CloudWorld,
)
from skyd.testing.daemon import DaemonProcess, wait_until
from skyd.testing.warm_daemon import WarmDaemonProcess

T = TypeVar("T")
PINS = (
    "cloud: aws\n  region: us-east-1\n  instance_type: c5.large",
    "cloud: gcp\n  zone: us-central1-a\n  instance_type: n2-standard-8",
    "cloud: azure\n  region: eastus\n  instance_type: Standard_D4s_v5",
)
POINTS = ("launch_sent", "launched_not_recorded", "booting", "running", "terminating")
# how long a kill waits for its point (seconds at aim_scale 1): the later points of a life
# come after a boot, an SSH upload and the run, which take seconds on a busy machine
AIM_SECONDS = {
    "launch_sent": 4.0,
    "launched_not_recorded": 4.0,
    "booting": 4.0,
    "running": 8.0,
    "terminating": 8.0,
}
LAUNCHES = (("ec2", "RunInstances"), ("gce", "insert"), ("azure", "vm.put"))
TERMINATES = (("ec2", "TerminateInstances"), ("gce", "delete"), ("azure", "vm.delete"))


class _Loop:
    """The fakes' event loop, in a thread of its own (the daemon is another process)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 120) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def _config(daemon: DaemonProcess, world: CloudWorld) -> None:
    daemon.config.write_text(
        "scheduler_tick_seconds = 0.2\nshutdown_budget_seconds = 5.0\n"
        "reconcile_interval_seconds = 2.0\n"
        "[local]\ngpus = 0\ncancel_grace_seconds = 1.0\n"
        "[market]\npoll_aws_spot_prices = false\n"
        f'[aws]\nenabled = true\nregions = ["us-east-1"]\n'
        f'endpoint_url = "{world.ec2.endpoint_url}"\n'
        f'default_image_id = "{AWS_IMAGE}"\ncleanup_timeout_s = 0.0\n'
        f'[gcp]\nenabled = true\nproject = "{GCP_PROJECT}"\nendpoint = "{world.gce.endpoint}"\n'
        "anonymous = true\n"
        f'[azure]\nenabled = true\nsubscription_id = "{AZURE_SUBSCRIPTION}"\n'
        f'resource_group = "{AZURE_GROUP}"\nbase_url = "{world.azure.base_url}"\n'
        f'ca_file = "{world.azure.ca_file}"\nstatic_token = "fake-arm-token"\n'
        "poll_interval_s = 0.0\n"
        f'[cloud_ssh]\nkey_path = "{world.key_path}"\nport = {world.machines.port}\n'
        "checkpoint_sync_s = 0.5\n"
    )


def _task(n: int, pin: str, seconds: float) -> str:
    return f"name: chaos-{n}\nresources:\n  {pin}\nrun: sleep {seconds}; echo finished {n}\n"


def _submit(daemon: DaemonProcess, rng: random.Random, n: int, acked: list[int]) -> None:
    try:
        with DaemonClient(str(daemon.socket_path)) as client:
            for _ in range(n):
                text = _task(len(acked), rng.choice(PINS), rng.choice((0.5, 1, 2, 3)))
                acked.append(int(client.submit_task(text, str(daemon.root), None)["id"]))
    except (OSError, RuntimeError, ValueError):
        pass  # the daemon died under the submit: not acknowledged, not counted


class _Watch:
    """What the harness can see of a point of the jobs' lives, from the fakes and the store."""

    def __init__(self, world: CloudWorld, db_path: Path) -> None:
        self.world = world
        self.db_path = db_path

    def _calls(self, which: tuple[tuple[str, str], ...]) -> int:
        return sum(getattr(self.world, fake).calls[name] for fake, name in which)

    def _query(self, sql: str) -> int:
        try:
            db = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=0.2)
            try:
                return int(db.execute(sql).fetchone()[0])
            finally:
                db.close()
        except sqlite3.Error:
            return -1  # not created yet, or busy: not seen this time

    def _unrecorded(self) -> int:
        """VMs the fakes created minus instance rows the store has."""
        rows = self._query("SELECT COUNT(*) FROM instances")
        return -(10**9) if rows < 0 else len(self.world.machines.vms) - rows

    def predicate(self, point: str) -> Callable[[], bool]:
        """A check that is true once `point` is reached (counters taken from now on)."""
        if point == "launch_sent":
            base = self._calls(LAUNCHES)
            return lambda: self._calls(LAUNCHES) > base
        if point == "terminating":
            base = self._calls(TERMINATES)
            return lambda: self._calls(TERMINATES) > base
        if point == "launched_not_recorded":
            gap = self._unrecorded()
            return lambda: self._unrecorded() > gap
        if point == "booting":
            return self._booting
        if point == "running":
            return lambda: self._query("SELECT COUNT(*) FROM jobs WHERE state = 'RUNNING'") > 0
        raise ValueError(point)

    def _booting(self) -> bool:
        """A launch is recorded but its job not started: the VM boots, or skyd waits for
        its sshd."""
        waiting = self._query(
            "SELECT COUNT(*) FROM jobs AS j JOIN instances AS i"
            " ON i.job_id = j.id AND i.attempt = j.attempt WHERE j.state = 'PROVISIONING'"
        )
        vms = list(self.world.machines.vms.values())
        return waiting > 0 or any(vm.state == "booting" for vm in vms)

    def open_jobs(self) -> int:
        states = ", ".join(f"'{s}'" for s in TERMINAL)
        return self._query(f"SELECT COUNT(*) FROM jobs WHERE state NOT IN ({states})")


def _aim(check: Callable[[], bool], seconds: float) -> bool:
    """Poll until `check` holds (the kill goes out at once) or `seconds` passed."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.003)  # a poll of the fakes' counters, not an ordering wait
    return False


def run_cloud_chaos(
    root: Path,
    kills: int,
    *,
    seed: int = 13,
    jobs: int = 6,
    settle_seconds: float = 150.0,
    aim_scale: float = 1.0,
    boot_delay_s: float = 0.5,
    warm: bool = True,
) -> dict[str, Any]:
    rng = random.Random(seed)
    started = time.monotonic()
    loop = _Loop()
    world = CloudWorld(root / "world", boot_delay_s=boot_delay_s)
    loop.run(world.start())
    # warm: each start forks a process that imported skyd already (skyd.testing.warm_daemon)
    daemon = (WarmDaemonProcess if warm else DaemonProcess)(root, env=AWS_ENV)
    _config(daemon, world)
    watch = _Watch(world, daemon.state_dir / "skyd.db")
    report = Report()
    acked: list[int] = []
    starts: list[float] = []
    held: list[str] = []
    stuck_detail: dict[int, list[str]] = {}
    points: Counter[str] = Counter()
    vms_created = 0
    tokens = 0
    clouds: list[str] = []
    try:
        starts.append(time.time())
        daemon.start()
        _submit(daemon, rng, jobs, acked)
        schedule = [POINTS[k % len(POINTS)] for k in range(kills)]
        rng.shuffle(schedule)
        for point in schedule:
            if point in POINTS[:3] or watch.open_jobs() < 2:
                _submit(daemon, rng, 1, acked)  # something to launch
            hit = _aim(watch.predicate(point), AIM_SECONDS[point] * aim_scale)
            daemon.kill9()
            report.kills += 1
            points[point if hit else "random"] += 1
            starts.append(time.time())
            daemon.start()
        with DaemonClient(str(daemon.socket_path)) as client, contextlib.suppress(TimeoutError):
            wait_until(
                lambda: all(client.get_job(j)["state"] in TERMINAL for j in acked),
                timeout=settle_seconds,
                interval=0.25,
            )
        with DaemonClient(str(daemon.socket_path)) as client:
            for j in acked:
                job = client.get_job(j)
                if job["state"] not in TERMINAL:  # what an unfinished job was doing
                    stuck_detail[j] = [
                        f"{e['state'] or e['kind']}: {e['reason'][:160]}"
                        for e in job["events"][-4:]
                    ]
        assert daemon.terminate() == 0
        duplicates = root / "duplicates.log"
        duplicates.touch()
        _audit(daemon, acked, duplicates, report, starts)
        providers = world.providers(Catalog.load(default_catalog_dir()))
        held = [i.instance_id for i in loop.run(world.held(providers))]
        held += [vm.vm_id for vm in world.machines.running()]
        for provider in providers.values():
            loop.run(provider.aclose())
        vms_created = len(world.machines.vms)
        db = sqlite3.connect(daemon.state_dir / "skyd.db")
        tokens = int(db.execute("SELECT COUNT(DISTINCT client_token) FROM instances").fetchone()[0])
        clouds = sorted(r[0] for r in db.execute("SELECT DISTINCT provider FROM instances"))
        db.close()
    finally:
        daemon.close()
        loop.run(world.stop())
        loop.close()
    report.submitted = len(acked)
    report.leaked_instances = sorted(set(report.leaked_instances) | set(held))
    duplicate_launches = max(0, vms_created - tokens)
    report.seconds = round(time.monotonic() - started, 1)
    result = asdict(report)
    result.update(
        {
            "benchmark": "cloud_chaos",
            "seed": seed,
            "kills_by_point": dict(sorted(points.items())),
            "clouds": clouds,
            "vms_created": vms_created,
            "attempts_recorded": tokens,
            "duplicate_launches": duplicate_launches,
            "stuck_detail": stuck_detail,
            "clean": report.clean and duplicate_launches == 0,
        }
    )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=6)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--cold", action="store_true", help="python -m skyd run every start")
    parser.add_argument("--keep", type=Path, help="keep the run's directory here if not clean")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="skyd-cloud-chaos-") as tmp:
        result = run_cloud_chaos(
            Path(tmp), args.kills, seed=args.seed, jobs=args.jobs, warm=not args.cold
        )
        if args.keep is not None and not result["clean"]:
            # the store and the daemon's log, to see what an unfinished job was doing
            shutil.copytree(tmp, args.keep, ignore=shutil.ignore_patterns("*.sock"))
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{result['kills']} kills (seed {result['seed']}, {result['kills_by_point']}), "
            f"{result['submitted']} jobs: lost {result['lost']}, stuck {result['stuck']}, "
            f"leaked {result['leaked_instances']}, duplicate launches "
            f"{result['duplicate_launches']}, ledger mismatches {result['ledger_mismatches']}"
        )
    return 0 if result["clean"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
