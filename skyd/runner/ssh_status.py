"""A gang's status from its nodes' remote-shim answers: parsing, per node, and combined."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from skyd.errors import ProviderError
from skyd.model import RunPhase, RunStatus
from skyd.runner.ssh_node import SshNode


def node_status(data: Mapping[str, Any] | None, alive: bool) -> RunStatus:
    return RunStatus.from_shim(data, alive)


def _failed(status: RunStatus) -> bool:
    if status.phase in (RunPhase.KILLED, RunPhase.LOST):
        return True
    return status.phase == RunPhase.DONE and (
        status.setup_exit not in (0, None) or status.run_exit != 0
    )


def combine(statuses: Sequence[RunStatus]) -> RunStatus:
    """One status for a gang: the first failure decides; done when every node is done."""
    if not statuses:
        return RunStatus(RunPhase.NOT_STARTED)
    first = statuses[0]
    if any(s.phase == RunPhase.NOT_STARTED for s in statuses):
        # a start interrupted half-way: starting again skips the nodes already going
        return RunStatus(RunPhase.NOT_STARTED, pid=first.pid)
    failures = [(rank, s) for rank, s in enumerate(statuses) if _failed(s)]
    if failures:
        # the first to fail is the cause; the others were usually killed because of it
        rank, cause = min(
            failures, key=lambda f: f[1].ended_at if f[1].ended_at is not None else float("inf")
        )
        return replace(cause, node=rank) if len(statuses) > 1 else cause
    started = [s.run_started_at for s in statuses if s.run_started_at is not None]
    if all(s.phase == RunPhase.DONE for s in statuses):
        ends = [s.ended_at for s in statuses if s.ended_at is not None]
        return RunStatus(
            RunPhase.DONE, 0, 0, min(started, default=None), max(ends, default=None), first.pid
        )
    if any(s.phase == RunPhase.SETUP for s in statuses):
        return RunStatus(RunPhase.SETUP, pid=first.pid)
    return RunStatus(RunPhase.RUN, 0, None, max(started, default=None), None, first.pid)


def status_json(status: RunStatus) -> dict[str, Any]:
    return {
        "phase": status.phase.value,
        "setup_exit": status.setup_exit,
        "run_exit": status.run_exit,
        "run_started_at": status.run_started_at,
        "ended_at": status.ended_at,
        "pid": status.pid,
    }


def last_json_line(stdout: str, node: SshNode) -> Any:
    """The shim's answer: its last output line (a login script may print before it)."""
    lines = stdout.strip().splitlines()
    try:
        return json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError) as exc:
        raise ProviderError(
            f"the remote shim on {node.target.name} gave no answer: {stdout.strip()[-200:]!r}"
        ) from exc
