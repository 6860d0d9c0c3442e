"""Runs job attempts on remote machines over SSH: upload, detached remote shim, logs, exit codes.

Same shape as skyd.runner.process.ProcessRunner — start / status / kill by the local
attempt directory — so a daemon restarted with a new SshRunner re-attaches from that
directory alone. Local files of an attempt:

    ssh-nodes.json        the nodes (rank, login, remote dir) and the job.log path
    ssh-log-offsets.json  how many bytes of each node's remote job.log are already in job.log,
                          and the log reads not metered yet (skyd.runner.ssh_logs)
    ssh-status.json       the last status each node reported (exit codes kept locally)
    ssh-bucket-transfers.json  the bytes each node's buckets moved (skyd.runner.bucket_traffic)

On each node the remote shim (skyd.runner.remote_shim, shipped over SFTP) runs setup then
run in its own process group under REMOTE_DIR, records status.json there and holds a lock
while alive. Node 0's output goes into job.log as is; other nodes' complete lines are
appended with a "(node N) " prefix. A crash between appending log bytes and saving the
offset can repeat those bytes once; it never loses any.

The machines (ssh_node), local state files (ssh_state), uploads (ssh_upload), log copying
(ssh_logs), checkpoint pulls (ssh_checkpoints) and status combining (ssh_status) live beside
this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shlex
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from skyd.errors import ProviderError
from skyd.model import RunPhase, RunStatus
from skyd.providers.ssh.connection import HostKeyChangedError, SshConnections
from skyd.providers.ssh.layout import SHIM_NAME, kill_command, shim_command
from skyd.runner import bucket_traffic
from skyd.runner.json_files import read_json, write_json
from skyd.runner.process import RunCommand
from skyd.runner.pull_cadence import PullPricing
from skyd.runner.pulls import (
    TransferMeter,
)
from skyd.runner.ssh_checkpoints import CheckpointSync
from skyd.runner.ssh_logs import meter_logs, pull_log
from skyd.runner.ssh_node import SshNode, mount_destination, node_env
from skyd.runner.ssh_state import (
    MOUNTS_FILE,
    NODES_FILE,
    OFFSETS_FILE,
    STATUS_FILE,
)
from skyd.runner.ssh_status import combine, last_json_line, node_status, status_json
from skyd.runner.ssh_upload import upload_all

log = logging.getLogger(__name__)


class SshRunner:
    """Starts, watches and kills attempts on remote nodes through one connection cache."""

    def __init__(
        self,
        connections: SshConnections,
        *,
        command_timeout_s: float = 30.0,
        upload_timeout_s: float = 600.0,
        log_chunk_bytes: int = 4 * 1024 * 1024,
        checkpoint_sync_s: float = 10.0,
        checkpoint_sync_max_s: float | None = None,
        meter: TransferMeter | None = None,
        pricing: PullPricing | None = None,
        log_meter_s: float = 60.0,
        write_back_s: float = 300.0,
    ) -> None:
        # a killed attempt's wrapper writes the job's buckets back after the grace, this long
        self._write_back = write_back_s
        self._meter = meter  # told the bytes of every pull and log read (egress is billed)
        # log reads are metered in batches, at most this often per attempt (and at its end)
        self._log_meter_s = log_meter_s
        self._logs_metered: dict[str, float] = {}  # attempt dir -> when its logs were metered
        self.checkpoints = CheckpointSync(
            connections,
            command_timeout_s=command_timeout_s,
            transfer_timeout_s=upload_timeout_s,
            sync_s=checkpoint_sync_s,
            sync_max_s=checkpoint_sync_max_s,
            meter=meter,
            pricing=pricing,
        )
        self._connections = connections
        self._timeout = command_timeout_s
        self._upload_timeout = upload_timeout_s
        self._chunk = log_chunk_bytes

    @property
    def connections(self) -> SshConnections:
        return self._connections

    # -- start -----------------------------------------------------------------------

    async def start(
        self,
        attempt_dir: Path,
        command: RunCommand,
        nodes: Sequence[SshNode],
        *,
        provider: str | None = None,
    ) -> int:
        """Upload and start every node that has not started yet; returns how many it started.

        `command.file_mounts` maps destinations as written in the task (`~/x`, `/abs/x`, `x`)
        to local sources; `command.cwd` is ignored (the remote workdir is REMOTE_DIR/workdir).
        `provider` (whose instances the nodes are) is kept for the checkpoint pulls' meter.
        """
        if not nodes:
            raise ValueError("SshRunner.start needs at least one node")
        attempt_dir.mkdir(parents=True, exist_ok=True)
        saved = read_json(attempt_dir / NODES_FILE)
        if saved is None:
            write_json(
                attempt_dir / NODES_FILE,
                {
                    "log_path": str(command.log_path),
                    "nodes": [n.to_json() for n in nodes],
                    "checkpoint_dir": command.env.get("SKYD_CHECKPOINT_DIR"),
                    "provider": provider,
                },
            )
        started = await asyncio.gather(*(self._start_node(n, command, nodes) for n in nodes))
        return sum(started)

    async def _start_node(
        self, node: SshNode, command: RunCommand, nodes: Sequence[SshNode]
    ) -> int:
        data, alive, _, _, _ = await self._remote_status(node, shim_may_be_missing=True)
        if data is not None or alive:
            return 0  # this node already runs (or ran) the attempt: never run it twice
        directory = node.remote_dir
        launch: dict[str, Any] = {
            "setup": command.setup,
            "run": command.run,
            "cwd": f"{directory}/workdir",
            "env": node_env(command.env, node, nodes),
            "abs_env": {"SKYD_CHECKPOINT_DIR": f"{directory}/checkpoints"},
        }
        if command.container is not None:
            # the shim runs setup and run inside it; named per attempt and node, so a kill
            # (or a restarted daemon's) finds it again
            task_id = command.env.get("SKYPILOT_TASK_ID", "skyd")
            launch["container"] = {
                **command.container,
                "name": f"{task_id}-{node.rank}",
                # absolute file-mount destinations are bound in too (the home always is)
                "binds": sorted(
                    d
                    for d in [
                        *(command.file_mounts or {}),
                        *(str(m["dest"]) for m in command.storage_mounts),
                    ]
                    if d.startswith("/")
                ),
            }
        if command.storage_mounts:
            # buckets land where the task says on the node (as its file mounts do)
            launch["storage_mounts"] = [
                {**m, "target": mount_destination(str(m["dest"]), directory)}
                for m in command.storage_mounts
            ]
        try:
            await upload_all(
                self._connections, node, command, launch, timeout_s=self._upload_timeout
            )
        except OSError as exc:  # a local source went missing since the task was checked
            raise ProviderError(
                f"could not upload the job's files to {node.target.name}: {exc}"
            ) from exc
        result = await self._connections.run(
            node.target,
            shim_command(node.python, directory, "start"),
            timeout_s=self._timeout,
        )
        if result.exit_status != 0:
            raise ProviderError(
                f"could not start the job on {node.target.name} ({node.python} "
                f"{directory}/{SHIM_NAME} exited {result.exit_status}): "
                f"{result.stderr.strip()[:300]}"
            )
        answer = last_json_line(result.stdout, node)
        return 1 if isinstance(answer, dict) and answer.get("started") else 0

    async def pull_checkpoints(self, attempt_dir: Path, *, force: bool = False) -> bool:
        """Node 0's checkpoint copied home if it changed (CheckpointSync.pull)."""
        return await self.checkpoints.pull(attempt_dir, force=force)

    # -- status ----------------------------------------------------------------------

    def nodes(self, attempt_dir: Path) -> list[SshNode]:
        saved = read_json(attempt_dir / NODES_FILE)
        if saved is None:
            return []
        return [SshNode.from_json(n) for n in saved["nodes"]]

    async def status(self, attempt_dir: Path) -> RunStatus:
        """How the attempt is doing; also appends new remote output to the job's log.

        A node that does not answer keeps its last known status (the provider's probe
        decides when its host is down)."""
        saved = read_json(attempt_dir / NODES_FILE)
        if saved is None:
            return RunStatus(RunPhase.NOT_STARTED)
        nodes = [SshNode.from_json(n) for n in saved["nodes"]]
        log_path = Path(saved["log_path"])
        known: dict[str, Any] = read_json(attempt_dir / STATUS_FILE) or {}
        # before new reads join them: a range a killed daemon charged is charged again as is
        # (the meter ignores its key), never after it grew
        self._meter_logs(attempt_dir, nodes, saved.get("provider"), ended=False)
        behind: set[int] = set()  # nodes whose log has more than this poll copied
        answers = await asyncio.gather(
            *(self._poll_node(attempt_dir, log_path, n, behind) for n in nodes),
            return_exceptions=True,
        )
        statuses = []
        for node, answer in zip(nodes, answers, strict=True):
            if isinstance(answer, RunStatus):
                known[str(node.rank)] = status_json(answer)
                statuses.append(answer)
                continue
            if not isinstance(answer, ProviderError) or isinstance(answer, HostKeyChangedError):
                raise answer  # a changed host key is not a node that is slow to answer
            log.warning("node %d (%s) did not answer: %s", node.rank, node.target.name, answer)
            last = known.get(str(node.rank))
            statuses.append(node_status(last, True) if last else RunStatus(RunPhase.SETUP))
        write_json(attempt_dir / STATUS_FILE, known)
        combined = combine(statuses)
        # an ended attempt's reads are metered once its logs are all copied (one batch)
        ended = combined.phase == RunPhase.DONE and not behind
        self._meter_logs(attempt_dir, nodes, saved.get("provider"), ended=ended)
        await self.checkpoints.maybe_pull(attempt_dir, combined)
        return combined

    def _meter_logs(
        self, attempt_dir: Path, nodes: list[SshNode], provider: str | None, *, ended: bool
    ) -> None:
        """Meter the attempt's log reads when it ended, when this process has not metered
        them yet (what a killed daemon left), or every `log_meter_s`: a batch, not a ledger
        row per read."""
        if self._meter is None:
            return
        key = str(attempt_dir)
        last = self._logs_metered.pop(key, None)  # unset until this metering is saved
        now = time.monotonic()
        if last is not None and not ended and now - last < self._log_meter_s:
            self._logs_metered[key] = last
            return
        if meter_logs(attempt_dir, nodes, provider, self.checkpoints.report):
            self._logs_metered[key] = now  # else: again at the next poll, before new reads

    async def _poll_node(
        self, attempt_dir: Path, log_path: Path, node: SshNode, behind: set[int]
    ) -> RunStatus:
        answer = await self._remote_status(node, shim_may_be_missing=True)
        data, alive, log_size, mounts, transfers = answer
        status = node_status(data, alive)
        if mounts and node.rank == 0 and read_json(attempt_dir / MOUNTS_FILE) != mounts:
            write_json(attempt_dir / MOUNTS_FILE, mounts)  # how each bucket got there, for show
        if transfers is not None:  # the bytes its buckets moved, for the daemon to charge
            bucket_traffic.keep_node(attempt_dir, node.rank, node.instance_id, transfers)
        offsets: dict[str, int] = read_json(attempt_dir / OFFSETS_FILE) or {}
        if status.phase != RunPhase.NOT_STARTED and log_size > offsets.get(str(node.rank), 0):
            # after the status, so a DONE node's output is complete when we copy it
            reached = await pull_log(
                self._connections,
                attempt_dir,
                log_path,
                node,
                final=not alive,
                timeout_s=self._timeout,
                chunk_bytes=self._chunk,
                metered=self._meter is not None,
            )
            if reached < log_size:
                behind.add(node.rank)
        return status

    async def _remote_status(
        self, node: SshNode, *, shim_may_be_missing: bool
    ) -> tuple[dict[str, Any] | None, bool, int, dict[str, str] | None, object]:
        """The node's status.json (None before the shim wrote one), whether the shim lives,
        the size of its remote job.log, how its buckets were mounted (once they were) and
        the bytes they moved (skyd.runner.bucket_traffic; None before any)."""
        shim = shlex.quote(f"{node.remote_dir}/{SHIM_NAME}")
        command = shim_command(node.python, node.remote_dir, "status")
        if shim_may_be_missing:
            command = f"if [ -f {shim} ]; then {command}; else echo null; fi"
        result = await self._connections.run(node.target, command, timeout_s=self._timeout)
        if result.exit_status != 0:
            raise ProviderError(
                f"status of the job on {node.target.name} failed (exit {result.exit_status}): "
                f"{result.stderr.strip()[:300]}"
            )
        answer = last_json_line(result.stdout, node)
        if not isinstance(answer, dict):
            return None, False, 0, None, None
        mounts = answer.get("mounts") if isinstance(answer.get("mounts"), dict) else None
        size = int(answer.get("log_size", 0))
        transfers = answer.get("transfers")
        return answer.get("status"), bool(answer.get("alive")), size, mounts, transfers

    async def kill(self, attempt_dir: Path, grace_seconds: float) -> None:
        """SIGTERM every node's process group, SIGKILL the job's processes left after the
        grace, then wait (at most `write_back_s`) while each node writes its buckets back;
        the status read after records the bytes that moved, for the daemon to charge."""
        nodes = self.nodes(attempt_dir)

        async def kill_node(node: SshNode) -> None:
            try:
                await self._connections.run(
                    node.target,
                    kill_command(node.python, node.remote_dir, grace_seconds, self._write_back),
                    # the shim gives up on the write-back after write_back_s, then records
                    # the kill within its 10 s margin
                    timeout_s=self._timeout + grace_seconds + self._write_back + 10.0,
                )
            except ProviderError as exc:
                log.warning("could not kill the job on %s: %s", node.target.name, exc)

        await asyncio.gather(*(kill_node(n) for n in nodes))
        with contextlib.suppress(ProviderError):
            await self.status(attempt_dir)  # the last output and the killed phase, recorded

    async def aclose(self) -> None:
        return None  # the connections belong to whoever made them
