"""A Slurm cluster whose controller did not answer when the daemon started is placed on once
it answers: the daemon reads the lab's own systems again every `offers_refresh_seconds`,
through the real sinfo of the test cluster (behind a switch that makes it fail first)."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from skyctl.client import DaemonClient
from skyd.testing.daemon import daemon_thread, job_when, settings_for_tests, wait_until
from tests.providers.slurm.slurm_world import CLUSTER

pytestmark = [pytest.mark.timeout(400), pytest.mark.usefixtures("slurm_cluster")]

ENDED = ("SUCCEEDED", "FAILED", "FAILED_SETUP", "CANCELLED")
TASK = "name: lab\nresources: {infra: slurm/test/lab}\nrun: echo ran-on-$SLURM_JOB_PARTITION\n"


def unreachable_sinfo(bin_dir: Path, down: Path) -> None:
    """`sinfo` that fails as Slurm's does with its controller down, while `down` exists."""
    real = shutil.which("sinfo")
    assert real is not None, "the Slurm client commands are installed by .ci/setup.d/20-slurm"
    bin_dir.mkdir()
    script = bin_dir / "sinfo"
    script.write_text(
        "#!/bin/sh\n"
        f'if [ -e "{down}" ]; then\n'
        '  echo "sinfo: error: Unable to contact slurm controller (connect failure)" >&2\n'
        "  exit 1\n"
        "fi\n"
        f'exec "{real}" "$@"\n'
    )
    script.chmod(0o755)


async def test_a_cluster_down_at_start_is_used_once_it_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    down = tmp_path / "controller-down"
    down.touch()
    unreachable_sinfo(tmp_path / "bin", down)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    settings = settings_for_tests(tmp_path)
    settings.local.enabled = False
    settings.market.offers_refresh_seconds = 1.0
    settings.slurm = {
        "clusters": [
            {"name": CLUSTER, "work_dir": str(tmp_path / "cluster"), "python": sys.executable}
        ]
    }
    async with daemon_thread(settings) as daemon:
        with DaemonClient(daemon.socket_path) as client:

            def ask() -> tuple[Any, Any]:
                checks = client.request("GET", "/v1/check")
                plan = client.request("POST", "/v1/optimize", body={"task_yaml": TASK})
                return checks, plan

            checks, plan = await asyncio.to_thread(ask)
            [slurm] = [c for c in checks if c["cloud"] == "slurm"]
            assert "Unable to contact slurm controller" in slurm["reason"], slurm
            assert plan["chosen"] is None  # nothing of the cluster is known yet

            down.unlink()  # the controller answers again

            def placed() -> bool:
                answer = client.request("POST", "/v1/optimize", body={"task_yaml": TASK})
                return answer["chosen"] is not None and answer["chosen"]["cloud"] == "slurm"

            await asyncio.to_thread(wait_until, placed, timeout=60, interval=0.2)
            job = await asyncio.to_thread(client.submit_task, TASK, str(tmp_path), None)
            final = await job_when(client, int(job["id"]), ENDED, wait_s=240, interval=0.2)
            assert final["state"] == "SUCCEEDED", final

            # the controller gone again: `skyctl check` says so, but placement keeps the
            # partition (a running job's offering must not vanish with a restarting controller)
            refresh = daemon.daemon.offer_refresh
            assert refresh is not None
            before = refresh.reads
            down.touch()
            await asyncio.to_thread(
                wait_until, lambda: refresh.reads >= before + 2, timeout=30, interval=0.1
            )
            checks, plan = await asyncio.to_thread(ask)
            [slurm] = [c for c in checks if c["cloud"] == "slurm"]
            assert "Unable to contact slurm controller" in slurm["reason"], slurm
            assert plan["chosen"] is not None and plan["chosen"]["cloud"] == "slurm", plan
