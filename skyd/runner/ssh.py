"""Runs job attempts on remote machines over SSH: upload, detached remote shim, logs, exit codes.

Same shape as skyd.runner.process.ProcessRunner — start / status / kill by the local
attempt directory — so a daemon restarted with a new SshRunner re-attaches from that
directory alone. Local files of an attempt:

    ssh-nodes.json        the nodes (rank, login, remote dir) and the job.log path
    ssh-log-offsets.json  how many bytes of each node's remote job.log are already in job.log
    ssh-status.json       the last status each node reported (exit codes kept locally)
    ssh-bucket-transfers.json  the bytes each node's buckets moved (skyd.runner.bucket_traffic)

On each node the remote shim (skyd.runner.remote_shim, shipped over SFTP) runs setup then
run in its own process group under REMOTE_DIR, records status.json there and holds a lock
while alive. Node 0's output goes into job.log as is; other nodes' complete lines are
appended with a "(node N) " prefix. A crash between appending log bytes and saving the
offset can repeat those bytes once; it never loses any.

The machines (ssh_node), local state files (ssh_state), uploads (ssh_upload), log copying
(ssh_logs) and status combining (ssh_status) live beside this module.
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
from skyd.runner import bucket_traffic, checkpoint_pull, sync
from skyd.runner.json_files import read_json, write_json
from skyd.runner.process import RunCommand
from skyd.runner.pulls import CheckpointPull, TransferMeter, load_pending, save_pending
from skyd.runner.ssh_logs import pull_log
from skyd.runner.ssh_node import SshNode, mount_destination, node_env
from skyd.runner.ssh_state import (
    CHECKPOINT_FILE,
    MOUNTS_FILE,
    NODES_FILE,
    OFFSETS_FILE,
    STATUS_FILE,
    UNMETERED_FILE,
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
        meter: TransferMeter | None = None,
    ) -> None:
        self._sync_s = checkpoint_sync_s
        self._meter = meter  # told the bytes of every checkpoint pull (egress is billed)
        self._unmetered: set[str] = set()  # attempt dirs whose last pull the meter refused
        self._pulled: dict[str, float] = {}  # attempt dir -> when its checkpoints were pulled
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
        """Copy node 0's $SKYD_CHECKPOINT_DIR back into the job's local checkpoint directory
        when it changed since the last pull (so a preempted attempt's successor resumes from
        it), fetching only the files new or changed since (skyd.runner.checkpoint_pull).
        Returns whether it synced.

        The meter hears of the pull (the bytes that crossed) after the copy is in place and
        before the pull is marked done; the pull is also recorded in UNMETERED_FILE before
        the swap, so a daemon killed in between reports it after its restart, under the same
        key (the meter charges a key once). A pull the meter failed to take is reported
        again at the next sync, before anything is pulled again."""
        saved = read_json(attempt_dir / NODES_FILE)
        if saved is None or not saved.get("checkpoint_dir") or not saved["nodes"]:
            return False
        node = SshNode.from_json(saved["nodes"][0])
        remote = f"{node.remote_dir}/checkpoints"
        seen_file = attempt_dir / CHECKPOINT_FILE
        unmetered = attempt_dir / UNMETERED_FILE
        result = await self._connections.run(
            node.target, sync.fingerprint_command(remote), timeout_s=self._timeout
        )
        mark = result.stdout.strip()
        if result.exit_status != 0 or mark == "none":
            return False
        key = f"checkpoint:{attempt_dir}:{mark}"
        waiting = load_pending(unmetered)
        if waiting is not None:
            # its bytes already crossed: report them before pulling anything more
            # ours: swapped in by this process; else a killed daemon's, maybe never swapped in
            ours = str(attempt_dir) in self._unmetered
            if not self._report(waiting):
                return False
            self._unmetered.discard(str(attempt_dir))
            if ours and waiting.key == key:
                seen_file.write_text(mark)
                unmetered.unlink()
                return False
            unmetered.unlink()
        if not force and seen_file.exists() and seen_file.read_text() == mark:
            return False

        def staged(nbytes: int) -> None:
            pull = CheckpointPull(attempt_dir, saved.get("provider"), node.instance_id, nbytes, key)
            save_pending(unmetered, pull)

        await checkpoint_pull.pull(
            self._connections,
            node.target,
            remote,
            Path(saved["checkpoint_dir"]),
            timeout_s=self._upload_timeout,
            staged=staged,
        )
        pull = load_pending(unmetered)
        if pull is None or self._report(pull):
            seen_file.write_text(mark)
            unmetered.unlink(missing_ok=True)
        else:
            self._unmetered.add(str(attempt_dir))
        return True

    def _report(self, pull: CheckpointPull) -> bool:
        """Tell the meter of `pull`; False (kept to report at the next sync) if it failed."""
        if self._meter is None:
            return True
        try:
            self._meter(pull)
        except Exception:
            log.exception("could not meter the checkpoint pull of %s", pull.attempt_dir)
            return False
        return True

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
        answers = await asyncio.gather(
            *(self._poll_node(attempt_dir, log_path, n) for n in nodes), return_exceptions=True
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
        await self._maybe_pull(attempt_dir, combined)
        return combined

    async def _maybe_pull(self, attempt_dir: Path, status: RunStatus) -> None:
        """Checkpoints come back every `checkpoint_sync_s` while the run goes, and once more
        when it ends; a failed pull is retried on a later poll, never fatal."""
        if status.phase not in (RunPhase.RUN, RunPhase.DONE):
            return
        now = time.monotonic()
        key = str(attempt_dir)
        last = self._pulled.get(key)
        ended = status.phase == RunPhase.DONE
        if last is not None and ((ended and last < 0) or (not ended and now - last < self._sync_s)):
            return
        try:
            await self.pull_checkpoints(attempt_dir)
        except ProviderError as exc:
            log.warning("could not pull checkpoints of %s: %s", attempt_dir, exc)
            return
        self._pulled[key] = -1.0 if ended else now

    async def _poll_node(self, attempt_dir: Path, log_path: Path, node: SshNode) -> RunStatus:
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
            await pull_log(
                self._connections,
                attempt_dir,
                log_path,
                node,
                final=not alive,
                timeout_s=self._timeout,
                chunk_bytes=self._chunk,
            )
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
        """SIGTERM every node's process group, then SIGKILL what is left after the grace."""
        nodes = self.nodes(attempt_dir)

        async def kill_node(node: SshNode) -> None:
            try:
                await self._connections.run(
                    node.target,
                    kill_command(node.python, node.remote_dir, grace_seconds),
                    timeout_s=self._timeout + grace_seconds,
                )
            except ProviderError as exc:
                log.warning("could not kill the job on %s: %s", node.target.name, exc)

        await asyncio.gather(*(kill_node(n) for n in nodes))
        with contextlib.suppress(ProviderError):
            await self.status(attempt_dir)  # the last output and the killed phase, recorded

    async def aclose(self) -> None:
        return None  # the connections belong to whoever made them
