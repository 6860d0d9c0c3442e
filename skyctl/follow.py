"""Follow a job to its end the way `sky launch` does: where it is being tried, failovers, boot,
setup, then its output, then how it ended.

Progress comes from the daemon's event stream (read on a second connection in a thread) and
goes to stderr; the job's output goes to stdout. On a terminal progress has symbols, colour and
a ticking status line while nothing else moves; otherwise it is one plain line per event.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping

from skyctl.client import ApiError, DaemonClient, DaemonUnavailableError

# skyctl's hot paths never import typing (~3 ms at startup); these names are for mypy only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TextIO

TERMINAL = frozenset({"SUCCEEDED", "FAILED", "FAILED_SETUP", "CANCELLED"})
STARTED = frozenset({"SETTING_UP", "RUNNING"}) | TERMINAL
_SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
_TICK_SECONDS = 0.1
# How long to wait for the stream's last events once the log has ended (they are written
# together; this only bounds a daemon that went away).
_SETTLE_SECONDS = 10.0
UNCLAIMED_KEPT = 1000
_COLOURS = {"⚙": "36", "✓": "32", "✗": "31", "⚠": "33", "…": "2"}


def _where(placement: Mapping[str, Any] | None) -> str:
    if not placement:
        return "?"
    cloud, region = placement.get("cloud"), placement.get("region")
    place = " ".join(str(k) for k in (cloud, region if region != cloud else None) if k)
    if placement.get("zone"):
        place += f" ({placement['zone']})"
    what = str(placement.get("instance_type") or "")
    if placement.get("spot"):
        what += " spot"
    return f"{place} {what}".strip()


def describe(event: Mapping[str, Any]) -> tuple[str, str] | None:
    """A symbol and a sentence for one event, or None for events a launching user skips."""
    kind = str(event.get("kind") or "")
    state = event.get("state")
    reason = str(event.get("reason") or "")
    data = event.get("data") or {}
    if kind in (
        "heartbeat",
        "market",
        "credit",
        "placement",
        "migration_proposed",
        "migration_declined",
    ):
        return None
    if kind.startswith("cluster_"):
        name = data.get("cluster", "?")
        if kind == "cluster_placed":
            return "⚙", f"Launching cluster {name} on {_where(data.get('placement'))}"
        symbol = "✗" if "fail" in kind or kind == "cluster_lost" else "⚙"
        symbol = "✓" if kind == "cluster_up" else symbol
        return symbol, f"Cluster {name}: {reason or kind.removeprefix('cluster_')}"
    if kind == "submitted":
        return "⚙", "Submitted; finding the cheapest place that fits"
    if kind == "launch_failed":
        return "✗", f"Failover: {reason}"
    if kind == "preempted":
        return "⚠", f"Preempted: {reason}"
    if kind == "moved":
        return "⚙", f"Moving: {reason}"
    if kind == "cancel_requested":  # the job goes on until its kill is done
        return "⚠", reason[:1].upper() + reason[1:]
    if kind == "launched":
        return "⚙", reason[:1].upper() + reason[1:]
    if kind == "waiting":
        return "…", reason[:1].upper() + reason[1:]
    if state == "PROVISIONING" and not reason.startswith("placed"):
        return "⚙", reason[:1].upper() + reason[1:]
    if state == "PROVISIONING":
        attempt = data.get("attempt")
        tries = f" (attempt {attempt})" if isinstance(attempt, int) and attempt > 1 else ""
        placement = data.get("placement")
        where = _where(placement) if placement else reason
        return "⚙", f"Launching on {where}{tries}"
    if state == "SETTING_UP":
        return "⚙", f"Instance up; running setup ({reason})" if reason else "Running setup"
    if state == "RUNNING":
        return "✓", "Running" + (f" ({reason})" if reason else "")
    if state in TERMINAL:
        return ("✓" if state == "SUCCEEDED" else "✗"), f"{state.capitalize()}: {reason}"
    if state:
        return "⚠", f"{state}: {reason}"
    return ("…", reason) if reason else None


class Progress:
    """Writes progress lines to `err`; on a terminal, also a ticking status line."""

    def __init__(self, err: TextIO, tty: bool, label: str) -> None:
        self.err = err
        self.tty = tty
        self.label = label
        self._lock = threading.Lock()
        self._status = ""
        self._since = time.monotonic()
        self._frame = 0
        self._live = False
        self._stop = threading.Event()

    def start_ticking(self) -> None:
        if self.tty:
            self._live = True
            threading.Thread(target=self._tick, name="skyctl-progress", daemon=True).start()

    def stop_ticking(self) -> None:
        """Before output flows on stdout: one line at a time, no status line under it."""
        with self._lock:
            self._clear()
            self._live = False
        self._stop.set()

    def line(self, symbol: str, text: str) -> None:
        with self._lock:
            if not self.tty:
                self.err.write(f"{self.label}: {text}\n")
                self.err.flush()
                return
            self._clear()
            colour = _COLOURS.get(symbol, "0")
            self.err.write(f"\x1b[{colour}m{symbol}\x1b[0m {text}\n")
            self._status, self._since = text, time.monotonic()
            self._draw()

    def _tick(self) -> None:
        while not self._stop.wait(_TICK_SECONDS):
            with self._lock:
                self._frame += 1
                self._draw()

    def _clear(self) -> None:
        # only while the status line is drawn: later, the job's output may end mid-line
        if self.tty and self._live:
            self.err.write("\r\x1b[K")

    def _draw(self) -> None:
        if not self._live or not self._status:
            self.err.flush()
            return
        spin = _SPINNER[self._frame % len(_SPINNER)]
        waited = int(time.monotonic() - self._since)
        self.err.write(f"\r\x1b[K\x1b[36m{spin}\x1b[0m \x1b[2m{self._status} ({waited}s)\x1b[0m")
        self.err.flush()


class Watcher:
    """Reads the event stream in a thread and reports the events of one job (and cluster)."""

    def __init__(self, socket_path: str, since: int, progress: Progress) -> None:
        self.socket_path = socket_path
        self.since = since
        self.progress = progress
        self.job_ids: set[int] = set()
        self.cluster: str | None = None
        self.started = threading.Event()
        self.ended = threading.Event()
        self.final_line: tuple[str, str] | None = None
        self._lock = threading.Lock()
        # other jobs' events while a launch waits for its job's id (bounded: the newest only)
        self._unclaimed: deque[Mapping[str, Any]] = deque(maxlen=UNCLAIMED_KEPT)
        self._thread = threading.Thread(target=self._run, name="skyctl-events", daemon=True)

    def start(self) -> Watcher:
        self._thread.start()
        return self

    def watch_job(self, job_id: int) -> None:
        """Report this job's events too, including those that came before its id was known
        (a launch answers only after its job may have moved on)."""
        with self._lock:
            self.job_ids.add(job_id)
            early = [e for e in self._unclaimed if e.get("job_id") == job_id]
            self._unclaimed.clear()
        for event in early:
            self._report(event)

    def _mine(self, event: Mapping[str, Any]) -> bool:
        data = event.get("data") or {}
        if self.cluster is not None and data.get("cluster") == self.cluster:
            return True
        return event.get("job_id") is not None and event.get("job_id") in self.job_ids

    def _run(self) -> None:
        try:
            with DaemonClient(self.socket_path) as client:
                for event in client.events(since=self.since):
                    with self._lock:
                        mine = self._mine(event)
                        if not mine and event.get("job_id") is not None and self.cluster:
                            self._unclaimed.append(event)
                    if mine and self._report(event):
                        return
        except (ApiError, DaemonUnavailableError, ValueError) as exc:
            self.progress.line("✗", f"lost the daemon's event stream: {exc}")
        finally:
            self.started.set()
            self.ended.set()

    def _report(self, event: Mapping[str, Any]) -> bool:
        """Say what the event means; True once the job has ended."""
        described = describe(event)
        state = event.get("state")
        is_job = event.get("job_id") is not None and event.get("job_id") in self.job_ids
        if is_job and state in TERMINAL:
            # said after the job's output, which is still being copied
            self.final_line = described
            self.ended.set()
            return True
        if described:
            self.progress.line(*described)
        if is_job and state in STARTED:
            self.started.set()
        return False

    def wait_started(self) -> None:
        while not self.started.wait(0.5):
            pass


def newest_seq(client: DaemonClient) -> int:
    """An event number at or before now, so that the stream's backlog is short (0: none yet)."""
    jobs, _ = client.list_jobs(include_terminal=True, limit=1)
    if not jobs:
        return 0
    events = client.get_job(int(jobs[0]["id"])).get("events") or []
    return max((int(e.get("seq") or 0) for e in events), default=0)


def first_seq(client: DaemonClient, job_id: int) -> int:
    events = client.get_job(job_id).get("events") or []
    return max(min((int(e.get("seq") or 1) for e in events), default=1) - 1, 0)


def follow(
    client: DaemonClient,
    job_id: int,
    out: TextIO,
    err: TextIO,
    *,
    watcher: Watcher | None = None,
    tty: bool | None = None,
) -> int:
    """Show a job's progress, then its output until it ends; 0 if it succeeded, else 1."""
    if watcher is None:
        watcher = watching(client, err, first_seq(client, job_id), tty=tty, job_id=job_id)
    watcher.watch_job(job_id)
    try:
        watcher.wait_started()
        watcher.progress.stop_ticking()
        copy_log(client.job_logs(job_id, follow=True), out)
        watcher.ended.wait(_SETTLE_SECONDS)
        if watcher.final_line is not None:
            watcher.progress.line(*watcher.final_line)
    except KeyboardInterrupt:
        watcher.progress.stop_ticking()
        err.write(f"\njob {job_id} keeps running; `skyctl logs -f {job_id}` to follow it again\n")
        raise
    job = client.get_job(job_id)
    state = str(job.get("state"))
    if state not in TERMINAL:
        err.write(f"job {job_id} is {state}; its output stream ended early\n")
        return 1
    return 0 if state == "SUCCEEDED" else 1


def watching(
    client: DaemonClient,
    err: TextIO,
    since: int,
    *,
    tty: bool | None,
    job_id: int | None = None,
    cluster: str | None = None,
) -> Watcher:
    """A started Watcher of that job's (or cluster's) events; what it watches is set before
    its thread reads the first event, so that none of the backlog is skipped."""
    interactive = err.isatty() if tty is None else tty
    progress = Progress(err, interactive, "skyctl")
    progress.start_ticking()
    watcher = Watcher(client.socket_path, since, progress)
    if job_id is not None:
        watcher.job_ids.add(job_id)
    watcher.cluster = cluster
    return watcher.start()


def copy_log(chunks: Iterable[bytes], out: TextIO) -> None:
    """Logs are bytes from a user's program and need not be valid UTF-8: pass them through."""
    out.flush()
    binary = getattr(out, "buffer", None)
    for chunk in chunks:
        if binary is not None:
            binary.write(chunk)
            binary.flush()
        else:
            out.write(chunk.decode("utf-8", "replace"))
            out.flush()
