"""`skyctl submit --follow` on a terminal, against a real SDK on a local EC2 endpoint whose first
zone has no capacity: progress names the cloud, region and zone being tried, the failover to the
next zone, the boot, and how the job ended, with symbols and colour as `sky launch` shows them."""

from __future__ import annotations

import asyncio
import os
import pty
import re
import subprocess
import sys
import threading
from pathlib import Path

from skyd.testing.daemon import daemon_thread
from skyd.testing.ec2_fixtures import settings_on_ec2
from skyd.testing.moto_ec2 import Ec2Fault, MotoEc2
from tests.daemon.test_cloud_failover import TASK

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _follow_on_a_terminal(socket_path: str, task: Path) -> tuple[int, str, str]:
    """Run `skyctl submit --follow` with a pseudo-terminal as stderr; its exit status, stdout
    and what the terminal showed (ANSI codes removed, status-line redraws collapsed)."""
    primary, secondary = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "skyctl", "--socket", socket_path, "submit", "-f", str(task)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=secondary,
    )
    os.close(secondary)
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:
                return
            if not chunk:
                return
            chunks.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    assert proc.stdout is not None
    with proc.stdout:
        out = proc.stdout.read().decode()
    code = proc.wait(120)
    reader.join(10)
    os.close(primary)
    raw = b"".join(chunks).decode()
    return code, out, raw


async def test_progress_shows_zones_tried_and_the_failover_on_a_terminal(
    ec2: MotoEc2,
    tmp_path: Path,
) -> None:
    # EC2 answers a stockout with HTTP 500, which botocore retries: out of capacity for all
    # three attempts of the first zone.
    ec2.add_fault(Ec2Fault("RunInstances", "InsufficientInstanceCapacity", 500, times=3))
    settings = settings_on_ec2(
        tmp_path, ec2, request_timeout_s=10.0, cleanup_timeout_s=0.0, sdk_max_attempts=3
    )
    task = tmp_path / "v100.yaml"
    task.write_text(TASK)
    async with daemon_thread(settings) as daemon:
        code, _out, raw = await asyncio.to_thread(_follow_on_a_terminal, daemon.socket_path, task)
    assert "\x1b[" in raw  # colour and status-line redraws: this is a terminal
    lines = [_ANSI.sub("", part) for part in raw.replace("\r\n", "\n").split("\n")]
    # a line's last redraw (after \r) is what stays on the screen
    shown = [line.split("\r")[-1].strip() for line in lines if line.strip()]
    launching = [line for line in shown if line.startswith("⚙ Launching on aws us-east-1 (use1-az")]
    assert len(launching) == 2 and launching[0] != launching[1], shown  # two zones tried
    failover = [line for line in shown if line.startswith("✗ Failover: tried aws/us-east-1/")]
    assert len(failover) == 1 and "blocked" in failover[0], shown
    assert shown.index(failover[0]) > shown.index(launching[0])
    assert any(line.startswith("⚙ Launched ") for line in shown), shown
    assert shown[-1].startswith("✗ Failed: "), shown  # no [cloud_ssh] key: it cannot start
    assert code == 1
