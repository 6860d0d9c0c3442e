"""Real skyd daemons for tests: in a background thread (fast) or as a separate process (for
kill -9, SIGTERM and sd_notify). Both serve the real API on a real Unix socket."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Collection, Coroutine, Mapping
from pathlib import Path
from typing import Any, TypeVar

from skyctl.client import DaemonClient
from skyd.clock import Clock
from skyd.config import Settings
from skyd.daemon import Daemon
from skyd.providers.base import Provider

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T | None],
    *,
    timeout: float = 20.0,
    interval: float = 0.05,
    error: Callable[[], object] | None = None,
) -> T:
    """Poll a condition on real processes until it holds (a bounded wait, not an ordering sleep)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            detail = f": {error()}" if error is not None else ""
            raise TimeoutError(f"condition not met within {timeout}s{detail}")
        time.sleep(interval)


def settings_for_tests(root: Path, **overrides: object) -> Settings:
    settings = Settings(state_dir=root / "state", socket_path=root / "skyd.sock")
    settings.scheduler_tick_seconds = 0.1
    settings.shutdown_budget_seconds = 5.0
    settings.local.cancel_grace_seconds = 2.0
    settings.local.gpus = 0
    for key, value in overrides.items():
        setattr(settings, key, value)
    return settings


def kill_leftover_jobs(state_dir: Path) -> None:
    """Jobs outlive their daemon by design; a test must not leave them running."""
    for status in state_dir.glob("jobs/*/attempt-*/status.json"):
        try:
            pid = int(json.loads(status.read_text())["pid"])
        except (OSError, ValueError, KeyError):
            continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


class DaemonThread:
    """A Daemon running its own event loop in a thread of the test process."""

    def __init__(self, settings: Settings, *, clock: Clock | None = None) -> None:
        self.settings = settings
        self.daemon = Daemon(settings, clock=clock)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._main, name="skyd-daemon", daemon=True)
        self._started = threading.Event()
        self.exit_code: int | None = None
        self.error: BaseException | None = None

    @property
    def socket_path(self) -> str:
        return str(self.settings.socket_path)

    def _main(self) -> None:
        async def go() -> int:
            self._loop = asyncio.get_running_loop()
            ready = asyncio.create_task(self.daemon.ready.wait())
            ready.add_done_callback(lambda _t: self._started.set())
            return await self.daemon.run()

        try:
            self.exit_code = asyncio.run(go())
        except BaseException as exc:
            self.error = exc
        finally:
            self._started.set()

    def start(self) -> DaemonThread:
        self._thread.start()
        self._started.wait(30)
        if self.error is not None:
            raise self.error
        return self

    def run_on_loop(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run `coro` on the daemon's event loop (e.g. advance its injected VirtualClock)."""
        if self._loop is None:
            coro.close()
            raise RuntimeError("the daemon's loop is not running")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def stop(self) -> int | None:
        if self._loop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self.daemon.request_stop)
        self._thread.join(30)
        kill_leftover_jobs(self.settings.state_dir)
        if self.error is not None:
            raise self.error
        return self.exit_code


@contextlib.asynccontextmanager
async def daemon_thread(settings: Settings) -> AsyncIterator[DaemonThread]:
    """A DaemonThread started and stopped off the test's event loop (its fakes serve on it)."""
    daemon = DaemonThread(settings)
    await asyncio.to_thread(daemon.start)
    try:
        yield daemon
    finally:
        await asyncio.to_thread(daemon.stop)


async def run_job(
    settings: Settings, task: str, workdir: Path, *, until: Collection[str], wait_s: float
) -> dict[str, Any]:
    """Start a daemon, submit `task`, wait for the job to reach a state in `until`, stop the
    daemon: the job as the API last showed it (events included)."""
    async with daemon_thread(settings) as daemon:
        with DaemonClient(daemon.socket_path) as client:
            return await submit_and_wait(client, task, workdir, until=until, wait_s=wait_s)


async def submit_and_wait(
    client: DaemonClient, task: str, workdir: Path, *, until: Collection[str], wait_s: float
) -> dict[str, Any]:
    """Submit `task` through `client`, then the job as the API shows it once its state is in
    `until` (events included)."""
    job = await asyncio.to_thread(client.submit_task, task, str(workdir), None)
    return await job_when(client, int(job["id"]), until, wait_s=wait_s)


async def job_when(
    client: DaemonClient,
    job_id: int,
    states: Collection[str],
    *,
    wait_s: float,
    interval: float = 0.05,
) -> dict[str, Any]:
    """The job as the API shows it once its state is one of `states` (polled off the loop)."""

    def reached() -> dict[str, Any] | None:
        job = client.get_job(job_id)
        return job if job["state"] in states else None

    return await asyncio.to_thread(
        wait_until,
        reached,
        timeout=wait_s,
        interval=interval,
        error=lambda: client.get_job(job_id)["state"],
    )


async def job_log(
    client: DaemonClient, job_id: int, *, node: int = 0, all_nodes: bool = False
) -> str:
    """The job's log so far (rank `node`'s, or every node's), read off the test's loop."""
    chunks = await asyncio.to_thread(
        lambda: list(client.job_logs(job_id, follow=False, node=node, all_nodes=all_nodes))
    )
    return b"".join(chunks).decode()


def socket_accepts(path: Path) -> bool:
    """Whether something accepts connections on the Unix socket `path` (a daemon up)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


class DaemonProcess:
    """`skyd run` as a child process."""

    def __init__(self, root: Path, *, env: dict[str, str] | None = None) -> None:
        self.root = root
        self.state_dir = root / "state"
        self.socket_path = root / "skyd.sock"
        self.config = root / "skyd.toml"
        self.config.write_text(
            "scheduler_tick_seconds = 0.1\nshutdown_budget_seconds = 5.0\n"
            "[local]\ngpus = 0\ncancel_grace_seconds = 2.0\n"
        )
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = root / "daemon.log"

    def start(self) -> DaemonProcess:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "skyd",
                    "run",
                    "--state-dir",
                    str(self.state_dir),
                    "--socket",
                    str(self.socket_path),
                    "--config",
                    str(self.config),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
            )
        return self._await_socket()

    def _await_socket(self) -> DaemonProcess:
        proc = self.proc
        assert proc is not None
        # a stale socket file may be left by a killed predecessor: wait until one answers
        wait_until(lambda: socket_accepts(self.socket_path) or proc.poll() is not None)
        if proc.poll() is not None:
            raise RuntimeError(f"skyd exited early: {self.log_path.read_text()[-2000:]}")
        return self

    def close(self) -> None:
        """Make sure no daemon outlives its test."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        kill_leftover_jobs(self.state_dir)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)


@contextlib.asynccontextmanager
async def daemon_with(
    settings: Settings, providers: Mapping[str, Provider]
) -> AsyncIterator[DaemonThread]:
    """A daemon (in a thread) on `providers` (e.g. a CloudWorld's, reaching its fake APIs
    and VMs), stopped on the way out."""
    daemon = DaemonThread(settings)
    daemon.daemon = Daemon(settings, providers=providers)
    await asyncio.to_thread(daemon.start)
    try:
        yield daemon
    finally:
        await asyncio.to_thread(daemon.stop)
