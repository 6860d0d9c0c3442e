"""End to end on three fake clouds: run examples/cloud/ through a private daemon.

Starts the fake EC2, Compute Engine and Resource Manager (their VMs real sshd's on loopback,
skyd.testing.cloud_world), a daemon of its own (state and socket in a temporary directory)
with aws, gcp and azure enabled against them, and submits every runnable task of
examples/cloud/. The GPU spot job is preempted through the fake's own hook once it has
saved a checkpoint; it must resume from it on another VM. Every job's output is read back
with `skyctl logs`. The last line printed is one JSON object:

    {"jobs": N, "succeeded": N, "clouds": [...], "leaked_instances": 0,
     "preempted_and_resumed": K}

Exit 0 only if every job SUCCEEDED on the cloud it was pinned to, its output came back
through skyctl, the preempted job resumed, and no fake holds an instance afterwards.

    python -m skyd.testing.e2e_clouds [--examples DIR] [--timeout S]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from skyctl.client import DaemonClient
from skyd.catalog import Catalog
from skyd.daemon import Daemon
from skyd.providers.base import TAG_JOB, InstanceLister, Provider
from skyd.spec import parse_task
from skyd.testing.cloud_world import CloudWorld
from skyd.testing.daemon import DaemonThread, settings_for_tests

# Tasks in examples/cloud/ that are for the optimizer only (they need an A100 and a deadline).
NOT_RUN = frozenset({"gpu_spot_deadline.yaml"})
PREEMPT_AFTER_STEP = 3
TERMINAL = ("SUCCEEDED", "FAILED", "FAILED_SETUP", "CANCELLED")


def _skyctl_logs(socket: str, job_id: int) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "skyctl", "--socket", socket, "logs", str(job_id)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.stdout


def _pinned_cloud(text: str) -> str | None:
    spec = parse_task(text)
    return spec.resources.cloud


async def _preempt_when_checkpointed(
    world: CloudWorld,
    providers: dict[str, Provider],
    client: DaemonClient,
    job_id: int,
    state_dir: Path,
    deadline: float,
) -> bool:
    """Take the job's spot VM back once a checkpoint past PREEMPT_AFTER_STEP came home."""
    checkpoint = state_dir / "checkpoints" / str(job_id) / "step"
    while time.monotonic() < deadline:
        job = await asyncio.to_thread(client.get_job, job_id)
        if job["state"] in TERMINAL:
            return False
        step = checkpoint.read_text().strip() if checkpoint.exists() else ""
        if job["state"] == "RUNNING" and step.isdigit() and int(step) >= PREEMPT_AFTER_STEP:
            provider = providers[job["placement"]["provider"]]
            assert isinstance(provider, InstanceLister)
            for inst in await provider.instances({TAG_JOB: str(job_id)}):
                if inst.state.value == "RUNNING":
                    world.preempt(inst)
                    return True
        await asyncio.sleep(0.2)  # polling a running job's progress, not ordering events
    return False


async def run(examples: Path, budget_s: float) -> dict[str, Any]:
    tasks = sorted(p for p in examples.glob("*.yaml") if p.name not in NOT_RUN)
    root = Path(tempfile.mkdtemp(prefix="skyd-e2e-clouds-"))
    world = CloudWorld(root / "world", boot_delay_s=1.0)
    await world.start()
    daemon: DaemonThread | None = None
    result: dict[str, Any] = {}
    try:
        settings = world.settings(settings_for_tests(root))
        settings.scheduler_tick_seconds = 0.5
        settings.cloud_ssh.checkpoint_sync_s = 0.5
        # every step's save pulled as it lands, so the job is preempted past PREEMPT_AFTER_STEP
        # within its 12 s (by default a pull out of a cloud earns a wait of up to 30 minutes)
        settings.cloud_ssh.checkpoint_sync_max_s = 0.5
        providers = world.providers(Catalog.load(settings.catalog_dir))
        daemon = DaemonThread(settings)
        daemon.daemon = Daemon(settings, providers=providers)
        await asyncio.to_thread(daemon.start)
        deadline = time.monotonic() + budget_s
        with DaemonClient(daemon.socket_path) as client:
            jobs: dict[str, dict[str, Any]] = {}
            for path in tasks:
                text = path.read_text()
                job = await asyncio.to_thread(client.submit_task, text, str(examples), None)
                jobs[path.stem] = {"id": int(job["id"]), "pinned": _pinned_cloud(text)}
            preempted = False
            if "gpu_spot_resume" in jobs:
                preempted = await _preempt_when_checkpointed(
                    world,
                    providers,
                    client,
                    jobs["gpu_spot_resume"]["id"],
                    settings.state_dir,
                    deadline,
                )
            for info in jobs.values():
                while True:
                    job = await asyncio.to_thread(client.get_job, info["id"])
                    if job["state"] in TERMINAL or time.monotonic() > deadline:
                        break
                    await asyncio.sleep(0.2)  # waiting for real VMs and processes
                info["state"] = job["state"]
                info["reason"] = job["reason"]
                info["cloud"] = (job.get("placement") or {}).get("cloud")
                info["preemptions"] = job["preemptions"]
                info["zones"] = [
                    e["data"]["placement"]["zone"]
                    for e in job["events"]
                    if e["state"] == "PROVISIONING" and "placement" in (e.get("data") or {})
                ]
                launched = [e["at"] for e in job["events"] if e["kind"] == "launched"]
                running = [e["at"] for e in job["events"] if e["state"] == "RUNNING"]
                if launched and running:
                    # VM launched (RUNNING at the API) to the job's run started on it: the
                    # boot delay, SSH wait, host-key pin, upload and setup
                    info["launch_to_run_s"] = round(running[0] - launched[0], 2)
                info["log"] = await asyncio.to_thread(_skyctl_logs, daemon.socket_path, info["id"])
                info["ok"] = (
                    info["state"] == "SUCCEEDED"
                    and (info["pinned"] is None or info["cloud"] == info["pinned"])
                    and f"EXAMPLE-OK {job['name']}" in info["log"]
                )
        await asyncio.to_thread(daemon.stop)
        daemon = None
        held = await world.held(providers)
        leaked = len(held) + len(world.machines.running())
        resumed = [
            n
            for n, i in jobs.items()
            if i["preemptions"] > 0
            and i["ok"]
            and "resumed from step" in i["log"]
            and len(set(i["zones"])) > 1  # on another zone (or cloud) than the lost VM's
        ]
        result = {
            "jobs": len(jobs),
            "succeeded": sum(1 for i in jobs.values() if i["ok"]),
            "clouds": sorted({str(i["cloud"]) for i in jobs.values() if i["cloud"]}),
            "leaked_instances": leaked,
            "preempted_and_resumed": len(resumed),
            "_details": {
                n: {k: v for k, v in i.items() if k != "log"} | {"log_tail": i["log"][-300:]}
                for n, i in jobs.items()
            },
            "_preempted": preempted,
        }
        for provider in providers.values():
            await provider.aclose()
    finally:
        if daemon is not None:
            await asyncio.to_thread(daemon.stop)
        await world.stop()
    return result


def passed(result: dict[str, Any]) -> bool:
    return bool(
        result.get("jobs", 0) > 0
        and result["succeeded"] == result["jobs"]
        and result["leaked_instances"] == 0
        and result["preempted_and_resumed"] >= 1
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parents[2] / "examples" / "cloud"
    parser.add_argument("--examples", type=Path, default=default)
    parser.add_argument("--timeout", type=float, default=240.0)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("e2e-clouds runs fake VMs as real sshd's with their login users: run as root")
        return 2
    result = asyncio.run(run(args.examples, args.timeout))
    details = result.pop("_details", {})
    result.pop("_preempted", None)
    for name, info in details.items():
        print(f"{name}: {json.dumps(info)}", file=sys.stderr)
    print(json.dumps(result))
    return 0 if passed(result) else 1


if __name__ == "__main__":
    sys.exit(main())
