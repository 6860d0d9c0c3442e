"""Runs an attempt in its Slurm allocation: hands over launch.json, reads status and logs, cancels.

Same shape as the process and SSH runners — start / status / kill by the local attempt
directory — so a restarted daemon re-attaches from that directory alone. Local files:

    slurm-job.json          cluster, Slurm job id, directory on the cluster, log path
    slurm-log-offsets.json  bytes of each node's log already copied into job.log

On the cluster (DIR = the attempt's directory, on its shared filesystem) the batch shim
waits for DIR/launch.json, written last (after the workdir and file mounts), then records
DIR/status.json and DIR/node-RANK.log. Rank 0's output goes into job.log as is; other
ranks' complete lines with a "(node N) " prefix, as the SSH runner does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from skyd.errors import ProviderError
from skyd.model import InstanceState, RunPhase, RunStatus
from skyd.providers.slurm.shell import LocalShell, SlurmShell
from skyd.providers.ssh.connection import SshConnections
from skyd.runner.json_files import read_json, write_json
from skyd.runner.node_logs import node_output
from skyd.runner.process import RunCommand

log = logging.getLogger(__name__)

JOB_FILE = "slurm-job.json"
OFFSETS_FILE = "slurm-log-offsets.json"
# The daemon's own paths mean nothing inside the allocation; the cluster account's apply.
_LOCAL_ONLY_ENV = ("PATH", "HOME", "USER", "SKYD_CHECKPOINT_DIR")
LOG_CHUNK = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class SlurmJobRef:
    """Where one attempt lives: its cluster, Slurm job id and directory on the cluster."""

    cluster: str
    job_id: str
    run_dir: str
    num_nodes: int


class SlurmJobs(Protocol):
    """What the runner asks of the slurm provider (kept apart so neither imports the other's
    module both ways)."""

    connections: SshConnections

    @property
    def timeout(self) -> float: ...

    def shell(self, cluster: str) -> SlurmShell: ...

    async def home(self, cluster: str) -> str: ...

    async def job_ref(self, iid: str) -> SlurmJobRef: ...

    async def job_state(self, cluster: str, job_id: str) -> InstanceState: ...

    async def cancel(self, cluster: str, job_ids: Sequence[str]) -> None: ...


def _status(data: Mapping[str, Any], alive: bool) -> RunStatus:
    return RunStatus.from_shim({"phase": RunPhase.SETUP.value, **data}, alive)


def mount_target(dest: str, run_dir: str, home: str) -> str:
    """Where a file mount lands: `~/x` in the home, `/abs` as is, `x` in the workdir."""
    if dest.startswith("~/"):
        return f"{home}/{dest[2:]}"
    if dest.startswith("/"):
        return dest
    return f"{run_dir}/workdir/{dest}"


class SlurmRunner:
    """Starts, watches and cancels attempts that run in Slurm allocations."""

    def __init__(self, provider: SlurmJobs, *, linger_s: float = 600.0) -> None:
        self._provider = provider
        self._linger = linger_s

    # -- start -----------------------------------------------------------------------

    async def start(
        self, attempt_dir: Path, command: RunCommand, instance_ids: Sequence[str]
    ) -> int:
        """Hand the attempt to its allocation unless that was done; 1 if it was now."""
        if not instance_ids:
            raise ValueError("SlurmRunner.start needs the attempt's instances")
        attempt_dir.mkdir(parents=True, exist_ok=True)
        saved = read_json(attempt_dir / JOB_FILE)
        if saved is not None and saved.get("started"):
            return 0
        ref = await self._provider.job_ref(instance_ids[0])
        record = {
            "cluster": ref.cluster,
            "job_id": ref.job_id,
            "run_dir": ref.run_dir,
            "num_nodes": ref.num_nodes,
            "log_path": str(command.log_path),
            "started": False,
        }
        write_json(attempt_dir / JOB_FILE, record)
        shell = self._provider.shell(ref.cluster)
        timeout = self._provider.timeout
        try:
            await self._upload(ref, command)
        except OSError as exc:
            raise ProviderError(
                f"could not copy the job's files to cluster {ref.cluster}: {exc}"
            ) from exc
        launch = {
            "setup": command.setup,
            "run": command.run,
            "env": {k: v for k, v in command.env.items() if k not in _LOCAL_ONLY_ENV},
            "linger_s": self._linger,
        }
        # last: a launch.json in the directory means everything it needs is there
        await shell.write_text(f"{ref.run_dir}/launch.json", json.dumps(launch), timeout_s=timeout)
        record["started"] = True
        write_json(attempt_dir / JOB_FILE, record)
        return 1

    async def _upload(self, ref: SlurmJobRef, command: RunCommand) -> None:
        sources: list[tuple[Path, str]] = []
        if command.workdir_source is not None:
            sources.append((command.workdir_source, f"{ref.run_dir}/workdir"))
        if command.file_mounts:
            home = await self._provider.home(ref.cluster)
            for dest, src in command.file_mounts.items():
                sources.append((Path(src), mount_target(dest, ref.run_dir, home)))
        if not sources:
            return
        shell = self._provider.shell(ref.cluster)
        if isinstance(shell, LocalShell):
            await asyncio.to_thread(_copy_local, sources)
            return
        from skyd.runner.ssh_upload import upload

        target = getattr(shell, "target", None)
        if target is None:
            raise ProviderError(f"cannot copy files to cluster {ref.cluster} with {shell!r}")
        connections = self._provider.connections
        async with connections.sftp(target, timeout_s=600.0) as sftp:
            for source, dest in sources:
                await upload(sftp, source, dest)

    # -- status ----------------------------------------------------------------------

    async def status(self, attempt_dir: Path) -> RunStatus:
        """How the attempt is doing; also appends new output to the job's log."""
        saved = read_json(attempt_dir / JOB_FILE)
        if saved is None or not saved.get("started"):
            return RunStatus(RunPhase.NOT_STARTED)
        cluster, run_dir = str(saved["cluster"]), str(saved["run_dir"])
        shell = self._provider.shell(cluster)
        timeout = self._provider.timeout
        state = await self._provider.job_state(cluster, str(saved["job_id"]))
        raw = await shell.read_from(f"{run_dir}/status.json", 0, timeout_s=timeout)
        await self._pull_logs(attempt_dir, saved, final=state != InstanceState.RUNNING)
        try:
            data = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            data = None
        alive = state == InstanceState.RUNNING
        if not isinstance(data, dict) or data.get("started_at") is None:
            # handed over, not begun yet: the allocation is still reading launch.json
            if saved.get("killed"):
                return RunStatus(RunPhase.KILLED)
            return RunStatus(RunPhase.SETUP if alive else RunPhase.LOST)
        status = _status(data, alive)
        if saved.get("killed") and status.phase in (RunPhase.DONE, RunPhase.LOST):
            return replace(status, phase=RunPhase.KILLED)
        taken = status.phase == RunPhase.KILLED or (
            status.phase == RunPhase.LOST and state == InstanceState.PREEMPTED
        )
        if taken and not saved.get("killed"):
            # Slurm took the allocation (preempted, requeued, cancelled by someone): not the
            # task's end. The job's state says what happened; the scheduler acts on that.
            return replace(status, phase=RunPhase.RUN)
        return status

    async def _pull_logs(self, attempt_dir: Path, saved: Mapping[str, Any], *, final: bool) -> None:
        shell = self._provider.shell(str(saved["cluster"]))
        offsets: dict[str, int] = read_json(attempt_dir / OFFSETS_FILE) or {}
        log_path = Path(str(saved["log_path"]))
        changed = False
        for rank in range(int(saved.get("num_nodes", 1))):
            offset = offsets.get(str(rank), 0)
            chunk = await shell.read_from(
                f"{saved['run_dir']}/node-{rank}.log", offset, timeout_s=self._provider.timeout
            )
            chunk = chunk[:LOG_CHUNK]
            taken, text = node_output(rank, chunk, final=final)
            if not taken:
                continue
            with open(log_path, "ab") as out:
                out.write(text)
            offsets[str(rank)] = offset + len(taken)
            changed = True
        if changed:
            write_json(attempt_dir / OFFSETS_FILE, offsets)

    # -- kill ------------------------------------------------------------------------

    async def kill(self, attempt_dir: Path, grace_seconds: float) -> None:
        """scancel the allocation (Slurm signals every step, then kills after KillWait)."""
        saved = read_json(attempt_dir / JOB_FILE)
        if saved is None:
            return
        before = await self.status(attempt_dir) if saved.get("started") else None
        if before is not None and before.phase in (RunPhase.SETUP, RunPhase.RUN):
            # Slurm signals the steps before the batch shim: the shim may see its srun end
            # and record "done" with the signal's exit code. The cancel is what happened.
            saved["killed"] = True
            write_json(attempt_dir / JOB_FILE, saved)
        await self._provider.cancel(str(saved["cluster"]), [str(saved["job_id"])])
        with contextlib.suppress(ProviderError):
            await self.status(attempt_dir)  # the last output, recorded

    async def aclose(self) -> None:
        return None


def _copy_local(sources: Sequence[tuple[Path, str]]) -> None:
    for source, dest in sources:
        target = Path(dest)
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True, symlinks=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
