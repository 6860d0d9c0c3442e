"""Bringing a remote attempt's checkpoint home: node 0's $SKYD_CHECKPOINT_DIR copied into the
job's local checkpoint directory when it changed (skyd.runner.checkpoint_pull moves only new
or changed files), every pull's bytes told to the meter exactly once (egress is billed), and
the pulls paced by what they cost (skyd.runner.pull_cadence). Local files of an attempt:

    ssh-checkpoint-seen              the fingerprint of the checkpoint last pulled
    ssh-checkpoint-unmetered.json    a pull whose bytes crossed, not yet metered
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import replace
from pathlib import Path

from skyd.errors import ProviderError
from skyd.model import RunPhase, RunStatus
from skyd.providers.ssh.connection import SshConnections
from skyd.runner import checkpoint_pull, sync
from skyd.runner.json_files import read_json
from skyd.runner.pull_cadence import PullClock, PullPricing, pull_interval_s
from skyd.runner.pulls import CheckpointPull, CutShort, TransferMeter, load_pending, save_pending
from skyd.runner.ssh_node import SshNode
from skyd.runner.ssh_state import CHECKPOINT_FILE, NODES_FILE, UNMETERED_FILE

log = logging.getLogger(__name__)


class CheckpointSync:
    """The checkpoint pulls of every attempt an SshRunner watches (its `checkpoints`)."""

    def __init__(
        self,
        connections: SshConnections,
        *,
        command_timeout_s: float,
        transfer_timeout_s: float,
        sync_s: float,
        sync_max_s: float | None,
        meter: TransferMeter | None,
        pricing: PullPricing | None,
    ) -> None:
        self._connections = connections
        self._timeout = command_timeout_s
        self._transfer_timeout = transfer_timeout_s
        self._sync_s = sync_s
        self._sync_max_s = max(sync_s, sync_max_s or sync_s)
        self._meter = meter
        # prices a pull that moved bytes, for the wait before the next (pull_cadence)
        self._pricing = pricing
        self._unmetered: set[str] = set()  # attempt dirs whose last pull the meter refused
        # attempt dir -> when its checkpoint is next looked at (inf: pulled after the end)
        self._next_look: dict[str, float] = {}
        self._clocks: dict[str, PullClock] = {}  # attempt dir -> when a pull is worth it
        # job dir -> the time between its saves as its last attempt's looks saw it: a job
        # saves at the same pace on its next instance, which need not learn it again
        self._paces: dict[str, float] = {}
        self._marks: dict[str, str] = {}  # attempt dir -> its checkpoint's last fingerprint
        # attempt dir -> its last checkpoint pull metered (not a log read, nor a pull cut short)
        self._reported: dict[str, CheckpointPull] = {}

    async def maybe_pull(self, attempt_dir: Path, status: RunStatus) -> None:
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
        job_dir = str(attempt_dir.parent)
        clock = self._clocks.get(key)
        if clock is None:
            clock = self._clocks[key] = PullClock(save_s=self._paces.get(job_dir))
        try:
            if not ended and clock.wait_s > 0:
                self._next_look[key] = time.monotonic() + self._sync_s
                mark = await self._checkpoint_mark(attempt_dir)
                now = time.monotonic()
                fresh = clock.seen(mark, now)
                if clock.save_s is not None:
                    self._paces[job_dir] = clock.save_s
                if not clock.worth_pulling(now, fresh):
                    return
            await self.pull(attempt_dir)
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
            saved = read_json(pull.attempt_dir / NODES_FILE) or {}
            nodes = max(1, len(saved.get("nodes", ())))
            price = replace(price, hourly_micros=price.hourly_micros * nodes)
        return pull_interval_s(price, self._sync_s, self._sync_max_s)

    async def pull(self, attempt_dir: Path, *, force: bool = False) -> bool:
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
            if not self.report(waiting):
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
                timeout_s=self._transfer_timeout,
                staged=lambda nbytes: save_pending(unmetered, pending(nbytes, key)),
                progress=crossed.arrived,
            )
        except Exception:
            cut = crossed.failed()
            if cut is not None and self.report(cut):
                unmetered.unlink(missing_ok=True)
            raise
        pull = load_pending(unmetered)
        if pull is None or self.report(pull):
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

    def report(self, pull: CheckpointPull) -> bool:
        """Tell the meter of `pull`; False (kept to report at the next sync) if it failed."""
        if self._meter is None:
            return True
        try:
            self._meter(pull)
        except Exception:
            log.exception("could not meter the transfer %s", pull.key)
            return False
        return True
