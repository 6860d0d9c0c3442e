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
(ssh_logs) and status combining (ssh_status) live beside this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import shlex
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from skyd.errors import ProviderError
from skyd.model import RunPhase, RunStatus
from skyd.providers.ssh.connection import HostKeyChangedError, SshConnections
from skyd.providers.ssh.layout import SHIM_NAME, kill_command, shim_command
from skyd.runner import bucket_traffic, checkpoint_pull, sync
from skyd.runner.json_files import read_json, write_json
from skyd.runner.process import RunCommand
from skyd.runner.pull_cadence import PullClock, PullPricing, pull_interval_s
from skyd.runner.pulls import (
    CheckpointPull,
    CutShort,
    TransferMeter,
    load_pending,
    save_pending,
)
from skyd.runner.ssh_logs import meter_logs, pull_log
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
        checkpoint_sync_max_s: float | None = None,
        meter: TransferMeter | None = None,
        pricing: PullPricing | None = None,
        log_meter_s: float = 60.0,
    ) -> None:
        self._sync_s = checkpoint_sync_s
        self._sync_max_s = max(checkpoint_sync_s, checkpoint_sync_max_s or checkpoint_sync_s)
        self._meter = meter  # told the bytes of every pull and log read (egress is billed)
        # prices a pull that moved bytes, for the wait before the next (pull_cadence)
        self._pricing = pricing
        # log reads are metered in batches, at most this often per attempt (and at its end)
        self._log_meter_s = log_meter_s
        self._logs_metered: dict[str, float] = {}  # attempt dir -> when its logs were metered
        self._unmetered: set[str] = set()  # attempt dirs whose last pull the meter refused
        # attempt dir -> when its checkpoint is next looked at (inf: pulled after the end)
        self._next_look: dict[str, float] = {}
        self._clocks: dict[str, PullClock] = {}  # attempt dir -> when a pull is worth it
        self._marks: dict[str, str] = {}  # attempt dir -> its checkpoint's last fingerprint
        # attempt dir -> its last checkpoint pull metered (not a log read, nor a pull cut short)
        self._reported: dict[str, CheckpointPull] = {}
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
        again at the next sync, before anything is pulled again.

        A pull that fails after bytes crossed (the link cut, a file rewritten under tar) is
        metered too, for the bytes that arrived, under a key of its own: they are recorded in
        UNMETERED_FILE as they arrive (CutShort), so a daemon killed before the meter took
        them reports them after its restart."""
        saved = read_json(attempt_dir / NODES_FILE)
        if saved is None or not saved.get("checkpoint_dir") or not saved["nodes"]:
            return False
        node = SshNode.from_json(saved["nodes"][0])
        remote = f"{node.remote_dir}/checkpoints"
        seen_file = attempt_dir / CHECKPOINT_FILE
        unmetered = attempt_dir / UNMETERED_FILE
        mark = await self._fingerprint(node)
        if mark is None:
            return False
        self._marks[str(attempt_dir)] = mark  # what the pull cadence's clock looks at
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

        def pending(nbytes: int, under: str) -> CheckpointPull:
            return CheckpointPull(
                attempt_dir, saved.get("provider"), node.instance_id, nbytes, under
            )

        # the bytes of this try if it fails midway: its own key, so each failed try is
        # charged once (a restarted daemon reports the same record) and a later pull of the
        # same version is charged for what it moves
        cut_key = f"{key}:cut:{os.urandom(8).hex()}"
        crossed = CutShort(unmetered, pending(0, cut_key))
        try:
            await checkpoint_pull.pull(
                self._connections,
                node.target,
                remote,
                Path(saved["checkpoint_dir"]),
                timeout_s=self._upload_timeout,
                staged=lambda nbytes: save_pending(unmetered, pending(nbytes, key)),
                progress=crossed.arrived,
            )
        except Exception:
            cut = crossed.failed()
            if cut is not None and self._report(cut):
                unmetered.unlink(missing_ok=True)
            raise
        pull = load_pending(unmetered)
        if pull is None or self._report(pull):
            seen_file.write_text(mark)
            unmetered.unlink(missing_ok=True)
            if pull is not None:
                self._reported[str(attempt_dir)] = pull  # the pull cadence prices it
        else:
            self._unmetered.add(str(attempt_dir))
        return True

    async def _fingerprint(self, node: SshNode) -> str | None:
        """The fingerprint of node's checkpoint directory (None: empty or unreadable)."""
        remote = f"{node.remote_dir}/checkpoints"
        result = await self._connections.run(
            node.target, sync.fingerprint_command(remote), timeout_s=self._timeout
        )
        mark = result.stdout.strip()
        return None if result.exit_status != 0 or mark == "none" else mark

    async def _checkpoint_mark(self, attempt_dir: Path) -> str | None:
        saved = read_json(attempt_dir / NODES_FILE)
        if saved is None or not saved.get("checkpoint_dir") or not saved["nodes"]:
            return None
        return await self._fingerprint(SshNode.from_json(saved["nodes"][0]))

    def _report(self, pull: CheckpointPull) -> bool:
        """Tell the meter of `pull`; False (kept to report at the next sync) if it failed."""
        if self._meter is None:
            return True
        try:
            self._meter(pull)
        except Exception:
            log.exception("could not meter the transfer %s", pull.key)
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
        await self._maybe_pull(attempt_dir, combined)
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
        if meter_logs(attempt_dir, nodes, provider, self._report):
            self._logs_metered[key] = now  # else: again at the next poll, before new reads

    async def _maybe_pull(self, attempt_dir: Path, status: RunStatus) -> None:
        """Checkpoints come back while the run goes, and once more when it ends or is
        killed; a failed pull is retried on a later poll, never fatal. The checkpoint is
        looked at every `checkpoint_sync_s`; after a pull whose bytes a cloud bills, a
        changed one is pulled only once its `PullClock` says it is worth it (up to
        `checkpoint_sync_max_s` of waiting)."""
        if status.phase not in (RunPhase.RUN, RunPhase.DONE, RunPhase.KILLED):
            return
        key = str(attempt_dir)
        next_look = self._next_look.get(key)
        # a killed attempt (a move, a cancel) is pulled once more: what the job saved on its
        # SIGTERM, and since the last pull, is what the next attempt resumes from
        ended = status.phase != RunPhase.RUN
        if next_look is not None and (
            math.isinf(next_look) or (not ended and time.monotonic() < next_look)
        ):
            return
        clock = self._clocks.setdefault(key, PullClock())
        try:
            if not ended and clock.wait_s > 0:
                self._next_look[key] = time.monotonic() + self._sync_s
                mark = await self._checkpoint_mark(attempt_dir)
                now = time.monotonic()
                if not clock.worth_pulling(now, clock.seen(mark, now)):
                    return
            await self.pull_checkpoints(attempt_dir)
        except ProviderError as exc:
            log.warning("could not pull checkpoints of %s: %s", attempt_dir, exc)
            return
        if ended:
            self._next_look[key] = math.inf
            self._clocks.pop(key, None)
            self._marks.pop(key, None)
            return
        now = time.monotonic()  # the wait counts from the pull's end
        self._next_look[key] = now + self._sync_s
        clock.seen(self._marks.get(key), now)
        pull = self._reported.pop(key, None)
        if pull is not None:
            wait = self._pull_interval(pull)
            clock.pulled(now, wait if wait > self._sync_s else 0.0)

    def _pull_interval(self, pull: CheckpointPull) -> float:
        """Seconds worth waiting after `pull` before the next (pull_cadence)."""
        if self._pricing is None:
            return self._sync_s
        try:
            price = self._pricing(pull)
        except Exception:
            log.exception("could not price the checkpoint pull of %s", pull.attempt_dir)
            return self._sync_s
        if price is not None:
            # every node's work since the last pull is lost with node 0's checkpoint
            nodes = max(1, len(self.nodes(pull.attempt_dir)))
            price = replace(price, hourly_micros=price.hourly_micros * nodes)
        return pull_interval_s(price, self._sync_s, self._sync_max_s)

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
