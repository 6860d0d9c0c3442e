"""Talking to a test daemon as a user would: skyctl in this process, and a job's end."""

from __future__ import annotations

import contextlib
import io
from typing import Any

from skyctl.__main__ import main as skyctl
from skyctl.client import DaemonClient
from skyd.model import TERMINAL_STATES
from skyd.testing.daemon import wait_until

# A job's states once it has ended, as the API spells them.
ENDED = frozenset(state.value for state in TERMINAL_STATES)

# A decoded JSON object as the daemon sends it (skyctl.client's JsonObject, which exists for
# mypy only): tests read nested fields of job records directly.
JsonObject = dict[str, Any]


def run_skyctl(socket: str, *args: str) -> tuple[int, str, str]:
    """`skyctl --socket SOCKET ARGS…`: its exit code, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = skyctl(["--socket", socket, *args])
    return code, out.getvalue(), err.getvalue()


def wait_ended(client: DaemonClient, job_id: int, timeout: float = 60.0) -> JsonObject:
    """The job's record once it has ended (SUCCEEDED, FAILED, FAILED_SETUP or CANCELLED)."""

    def ended() -> JsonObject | None:
        job = client.get_job(job_id)
        return job if job["state"] in ENDED else None

    return wait_until(ended, timeout=timeout)
