"""Runs a job attempt as a detached shim process on this host and reads back how it is doing."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skyd.model import RunPhase, RunStatus
from skyd.runner.remote_procs import group_alive, kill_members, write_kill_bounds
from skyd.runner.remote_procs import remove as remove_container


def _launch_shim(
    attempt_dir: Path, command: RunCommand, lock_fd: int, err_fd: int
) -> subprocess.CompletedProcess[bytes]:
    """Run the shim's launcher (on a worker thread); closes both descriptors when done."""
    try:
        with open(err_fd, "ab") as err:
            return subprocess.run(
                [sys.executable, "-m", "skyd.runner.shim", "--detach", str(attempt_dir)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err,
                pass_fds=(lock_fd,),  # the shim inherits the held lock
                user=command.uid,
                group=command.gid,
                extra_groups=[] if command.uid is not None else None,
                check=False,
            )
    finally:
        os.close(lock_fd)


def shim_alive(attempt_dir: Path) -> bool:
    """True while a shim holds the attempt's lock (the lock dies with the process)."""
    try:
        fd = os.open(attempt_dir / "shim.lock", os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def read_status(attempt_dir: Path) -> RunStatus:
    alive = shim_alive(attempt_dir)
    try:
        data: dict[str, Any] | None = json.loads((attempt_dir / "status.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        data = None
    return RunStatus.from_shim(data, alive)


@dataclass(frozen=True, slots=True)
class RunCommand:
    """What one attempt runs, and where."""

    setup: str | None
    run: str | None
    cwd: Path
    env: Mapping[str, str]
    log_path: Path
    workdir_source: Path | None = None
    file_mounts: Mapping[str, str] | None = None
    # buckets fetched before setup (see skyd.runner.buckets): url, bucket, prefix, mode, target
    storage_mounts: Sequence[Mapping[str, Any]] = ()
    workdir_git: Mapping[str, Any] | None = None  # {url, ref}: cloned as the workdir
    # image_id: docker:IMAGE — {"image", "gpus"}: setup and run go inside that container
    # (remote_shim); a runner that cannot do that refuses the attempt, never runs it bare
    container: Mapping[str, Any] | None = None
    uid: int | None = None  # run as this user (when the daemon is root)
    gid: int | None = None
    # the CPUs setup and run are pinned to (a local task's `cpus:` slots); None: all
    cpu_affinity: tuple[int, ...] | None = None
    # absolute mount path → where the job's copy is: shown at that path (path_binds)
    path_binds: Mapping[str, str] | None = None


class ProcessRunner:
    """Starts shims for attempts and reaps the ones this daemon process spawned."""

    def __init__(
        self, on_exit: asyncio.Event | None = None, *, write_back_s: float = 300.0
    ) -> None:
        self._on_exit = on_exit
        # a killed attempt's shim writes the job's buckets back after the grace, this long
        self._write_back = write_back_s
        self._pidfds: set[int] = set()

    async def start(self, attempt_dir: Path, command: RunCommand) -> int:
        """Start the attempt's shim unless one already ran; returns its pid (0 if it had)."""
        attempt_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        attempt_dir.chmod(0o700)
        lock_fd = os.open(attempt_dir / "shim.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return 0  # a shim of this attempt is alive: never run an attempt twice
            if (attempt_dir / "status.json").exists():
                return 0
            launch = {
                "setup": command.setup,
                "run": command.run,
                "cwd": str(command.cwd),
                "env": dict(command.env),
                "log_path": str(command.log_path),
                "workdir_source": str(command.workdir_source) if command.workdir_source else None,
                "file_mounts": dict(command.file_mounts or {}),
                "storage_mounts": [dict(mount) for mount in command.storage_mounts],
                "workdir_git": dict(command.workdir_git) if command.workdir_git else None,
                "cpu_affinity": list(command.cpu_affinity) if command.cpu_affinity else None,
                "path_binds": dict(command.path_binds or {}),
            }
            if command.container is not None:
                # run inside it (skyd.runner.shim): the job's directory and checkpoints bound
                env = command.env
                name = f"{env.get('SKYPILOT_TASK_ID', 'skyd')}-{env.get('SKYD_NODE_RANK', '0')}"
                binds = [env["SKYD_CHECKPOINT_DIR"]] if env.get("SKYD_CHECKPOINT_DIR") else []
                container: dict[str, Any] = {**command.container, "name": name, "binds": binds}
                if command.cpu_affinity:  # the engine starts it: pin it there too
                    container["cpuset"] = ",".join(map(str, command.cpu_affinity))
                launch["container"] = container
            _write_private(attempt_dir / "launch.json", json.dumps(launch), command.uid)
            err_fd = os.open(
                attempt_dir / "shim.err", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600
            )
            # The launcher forks the shim off and exits: the shim (in its own session, so
            # cancel can kill its whole group) is never this daemon's child. Forked and
            # awaited on a worker thread — on the loop, the fork of a large daemon and
            # asyncio's per-child watcher thread held every request for tens of ms — which
            # owns both descriptors from here: a cancelled start cannot close the lock
            # under a fork still to happen.
            owned, lock_fd = lock_fd, -1
            launcher = await asyncio.to_thread(_launch_shim, attempt_dir, command, owned, err_fd)
            output = launcher.stdout
        finally:
            if lock_fd >= 0:
                os.close(lock_fd)  # the shim's copy keeps the lock for as long as it lives
        if launcher.returncode != 0 or not output.strip().isdigit():
            raise RuntimeError(
                f"the job runner did not start (exit {launcher.returncode}); "
                f"see {attempt_dir / 'shim.err'}"
            )
        pid = int(output.strip())
        # the shim's pid is its process group: kept here too, so a kill that comes before
        # the shim wrote its first status (a gang's rank failing at once) still finds it
        (attempt_dir / "shim.pid").write_text(str(pid))
        self._watch_exit(pid)
        return pid

    def _watch_exit(self, pid: int) -> None:
        """Wake the scheduler the moment the shim exits (a pidfd needs no parenthood)."""
        if self._on_exit is None or not hasattr(os, "pidfd_open"):
            return  # the scheduler's tick notices the end instead
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            return
        loop = asyncio.get_running_loop()
        on_exit = self._on_exit

        def exited() -> None:
            loop.remove_reader(pidfd)
            os.close(pidfd)
            self._pidfds.discard(pidfd)
            on_exit.set()

        self._pidfds.add(pidfd)
        loop.add_reader(pidfd, exited)

    async def kill(self, attempt_dir: Path, grace_seconds: float) -> None:
        """SIGTERM the attempt's whole process group, SIGKILL the job's processes left after
        the grace, then wait (at most `write_back_s`) while the shim writes the job's
        buckets back and records the kill; SIGKILL it after that."""
        pgid = read_status(attempt_dir).pid
        if pgid is None and shim_alive(attempt_dir):
            with contextlib.suppress(OSError, ValueError):
                pgid = int((attempt_dir / "shim.pid").read_text())
        if pgid is None:
            return
        with contextlib.suppress(OSError):
            write_kill_bounds(str(attempt_dir), grace_seconds, self._write_back)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGTERM)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_seconds
        # real processes give no exit event for a whole group: poll, bounded by the grace
        while loop.time() < deadline and group_alive(pgid, but=pgid):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        if group_alive(pgid, but=pgid):
            kill_members(pgid, but=pgid)  # the job's processes; the shim writes back first
        try:
            launch = json.loads((attempt_dir / "launch.json").read_text())
        except (OSError, ValueError):
            launch = None
        launch = launch if isinstance(launch, dict) else {}
        # no buckets: nothing to write back, the shim only records the kill
        deadline = loop.time() + (self._write_back + 10.0 if launch.get("storage_mounts") else 2.0)
        while loop.time() < deadline and group_alive(pgid):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
        ended = read_status(attempt_dir).phase in (RunPhase.DONE, RunPhase.KILLED)
        if isinstance(launch.get("container"), dict) and not ended:
            # a shim killed before it recorded its end may not have removed the task's
            # container, left running (the remote killer removes it too); a shim that
            # recorded one removed it first. In a thread: the engine's client may take a while
            await asyncio.to_thread(remove_container, launch)

    async def aclose(self) -> None:
        """Stop watching; the jobs themselves keep running (the next daemon adopts them)."""
        loop = asyncio.get_running_loop()
        for pidfd in list(self._pidfds):
            loop.remove_reader(pidfd)
            os.close(pidfd)
        self._pidfds.clear()


def _write_private(path: Path, text: str, uid: int | None) -> None:
    """Write a file only its reader may see: launch.json holds the job's envs and secrets.
    The shim runs as the job's owner, so the file is handed to that user (still 0600)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        os.fchmod(fd, 0o600)  # an older file from a crashed start may have had other bits
        if uid is not None:
            os.fchown(fd, uid, -1)
        handle.write(text)
