"""kill -9 chaos on the cloud path (issue #13, point 4): `skyd run` against the fake EC2 and
Compute Engine (VMs real sshd's) is killed again and again while its cloud jobs are being
launched, recorded, booted, run and terminated; then it finishes the work.

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
import sqlite3
import tempfile
import threading
import time
from collections.abc import Coroutine
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

from bench.chaos import TERMINAL, Report, _audit
from skyctl.client import DaemonClient
from skyd.catalog import Catalog, default_catalog_dir
from skyd.testing.cloud_world import AWS_ENV, AWS_IMAGE, GCP_PROJECT, CloudWorld
from skyd.testing.daemon import DaemonProcess, wait_until

T = TypeVar("T")
PINS = (
    "cloud: aws\n  region: us-east-1\n  instance_type: c5.large",
    "cloud: gcp\n  zone: us-central1-a\n  instance_type: n2-standard-8",
)


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
        f'[cloud_ssh]\nkey_path = "{world.key_path}"\nport = {world.machines.port}\n'
        "checkpoint_sync_s = 0.5\n"
    )


def _task(n: int, pin: str, seconds: int) -> str:
    return f"name: chaos-{n}\nresources:\n  {pin}\nrun: sleep {seconds}; echo finished {n}\n"


def _submit(daemon: DaemonProcess, rng: random.Random, n: int, acked: list[int]) -> None:
    try:
        with DaemonClient(str(daemon.socket_path)) as client:
            for _ in range(n):
                text = _task(len(acked), rng.choice(PINS), rng.randint(1, 4))
                acked.append(int(client.submit_task(text, str(daemon.root), None)["id"]))
    except (OSError, RuntimeError, ValueError):
        pass  # the daemon died under the submit: not acknowledged, not counted


def run_cloud_chaos(
    root: Path, kills: int, *, seed: int = 13, jobs: int = 6, settle_seconds: float = 150.0
) -> dict[str, Any]:
    rng = random.Random(seed)
    started = time.monotonic()
    loop = _Loop()
    world = CloudWorld(root / "world", boot_delay_s=0.5)
    loop.run(world.start())
    daemon = DaemonProcess(root, env=AWS_ENV)
    _config(daemon, world)
    report = Report()
    acked: list[int] = []
    starts: list[float] = []
    held: list[str] = []
    stuck_detail: dict[int, list[str]] = {}
    vms_created = 0
    try:
        starts.append(time.time())
        daemon.start()
        _submit(daemon, rng, jobs, acked)
        for k in range(kills):
            time.sleep(rng.uniform(0.05, 1.5))  # a random point of the jobs' lives
            if k % 8 == 7:
                _submit(daemon, rng, 1, acked)
            daemon.kill9()
            report.kills += 1
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
        tokens = db.execute("SELECT COUNT(DISTINCT client_token) FROM instances").fetchone()[0]
        db.close()
    finally:
        daemon.close()
        loop.run(world.stop())
        loop.close()
    report.submitted = len(acked)
    report.leaked_instances = sorted(set(report.leaked_instances) | set(held))
    duplicate_launches = max(0, vms_created - int(tokens))
    report.seconds = round(time.monotonic() - started, 1)
    result = asdict(report)
    result.update(
        {
            "benchmark": "cloud_chaos",
            "vms_created": vms_created,
            "attempts_recorded": int(tokens),
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
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="skyd-cloud-chaos-") as tmp:
        result = run_cloud_chaos(Path(tmp), args.kills, seed=args.seed, jobs=args.jobs)
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{result['kills']} kills, {result['submitted']} jobs: lost {result['lost']}, "
            f"stuck {result['stuck']}, leaked {result['leaked_instances']}, duplicate "
            f"launches {result['duplicate_launches']}, ledger mismatches "
            f"{result['ledger_mismatches']}"
        )
    return 0 if result["clean"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
