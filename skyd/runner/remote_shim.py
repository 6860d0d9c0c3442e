"""The job wrapper shipped to a remote machine over SFTP: starts, reports on and kills one attempt.

Stdlib only and self-contained, because it runs with whatever python3 the machine has.
Usage (DIR is the attempt's remote directory, holding launch.json):

    python3 remote_shim.py start DIR    detach a wrapper that runs setup then run in its own
                                        session; prints one JSON line {"started": pid | null}
    python3 remote_shim.py status DIR   prints {"status": <status.json or null>,
                                        "alive": bool, "log_size": int}
    python3 remote_shim.py kill DIR G [W]  SIGTERM the wrapper's process group, SIGKILL the
                                        job's processes left after G seconds, then give the
                                        wrapper up to W seconds to write the buckets back
                                        (default 300); prints {"killed": pgid | null}

The wrapper holds an flock on DIR/shim.lock for as long as it lives (the lock dies with
the process), so "lock held" means exactly "the wrapper lives": a restarted daemon tells
a running attempt from a lost one without trusting pids. status.json is replaced
atomically; all output of setup and run is appended to DIR/job.log.

A killed attempt's buckets are written back as an ended one's are: the SIGTERM reaches the
job's processes (they may save on it), the wrapper waits for them (the killer SIGKILLs what
is left after the grace, never the wrapper), then runs `remote_buckets.py stopped` (finish
without purging: a moved job goes on) in a session of its own, bounded by W, before it
records "killed". The killer waits for the wrapper as long, then stops any rclone mount
left; what was not written back in time is said in the job log.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import TextIO

if __package__:
    from skyd.runner import remote_procs
else:  # on the node: shipped beside this file (-I leaves this directory off sys.path)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import remote_procs  # type: ignore[import-not-found,no-redef,unused-ignore]

GRACE_S = remote_procs.GRACE_S
WRITE_BACK_S = remote_procs.WRITE_BACK_S


def _write_status(attempt_dir: str, status: dict[str, object]) -> None:
    tmp = os.path.join(attempt_dir, "status.json.tmp")
    with open(tmp, "w") as fh:
        json.dump(status, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, os.path.join(attempt_dir, "status.json"))


def _read_status(attempt_dir: str) -> dict[str, object] | None:
    try:
        with open(os.path.join(attempt_dir, "status.json")) as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _alive(attempt_dir: str) -> bool:
    try:
        fd = os.open(os.path.join(attempt_dir, "shim.lock"), os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
    return False


def _shell() -> str:
    return shutil.which("bash") or "/bin/sh"


def _run_phase(
    argv: list[str], cwd: str, env: dict[str, str], log: TextIO, label: str, relay: bool = False
) -> int:
    log.write(f"--- skyd: {label} started at {time.strftime('%Y-%m-%d %H:%M:%S')} ---\n")
    log.flush()
    with remote_procs.term_blocked(relay):  # a relay forwards a kill's SIGTERM: exec_argv
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    return proc.wait()


def _host_argv(command: str, umask: int) -> list[str]:
    # the job gets the login's umask back (skyd's own files here are private); set in the
    # shell rather than with Popen(umask=) so any python3 >= 3.6 on the machine will do
    return [_shell(), "-c", f"umask {umask:03o}; {command}"]


def _buckets(
    attempt_dir: str, action: str, env: dict[str, str], log: TextIO, bound: float | None = None
) -> int | None:
    """remote_buckets.py (shipped beside this file) mounts or copies the buckets; None when
    it ran past `bound` seconds and was stopped. Its own session: the SIGKILL a kill sends
    the job's group after the grace must not cut a write-back short."""
    log.flush()
    helper = os.path.join(os.path.dirname(os.path.abspath(__file__)), "remote_buckets.py")
    argv = [sys.executable, helper, action, attempt_dir]
    own = action != "fetch"  # a fetch stops with the job
    proc = subprocess.Popen(
        argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=own
    )
    try:
        return proc.wait(bound)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return None


def _not_written_back(attempt_dir: str, launch: dict[str, object]) -> list[str]:
    """The buckets a job writes to (MOUNT, MOUNT_CACHED) with no write-back recorded."""
    done: set[str] = set()
    with (
        contextlib.suppress(OSError, ValueError, TypeError, AttributeError),
        open(os.path.join(attempt_dir, "bucket-transfers.json")) as fh,
    ):
        done = {str(e.get("dest")) for e in json.load(fh) if e.get("direction") == "out"}
    mounts = [m for m in list(launch.get("storage_mounts") or []) if isinstance(m, dict)]  # type: ignore[call-overload]
    return [
        str(m.get("url"))
        for m in mounts
        if m.get("mode") in ("MOUNT", "MOUNT_CACHED")
        and str(m.get("dest", m.get("target"))) not in done
    ]


def _wrapper(attempt_dir: str, launch: dict[str, object]) -> None:
    """Runs in the detached child: setup, then run, recording each step."""
    job_umask = os.umask(0o077)  # job.log and status only for the login skyd uses
    env = dict(os.environ)
    env.update({str(k): str(v) for k, v in dict(launch.get("env") or {}).items()})  # type: ignore[call-overload]
    cwd = os.path.abspath(str(launch["cwd"]))
    for name, path in dict(launch.get("abs_env") or {}).items():  # type: ignore[call-overload]
        env.setdefault(str(name), os.path.abspath(str(path)))
    os.makedirs(cwd, exist_ok=True)
    status: dict[str, object] = {
        "pid": os.getpid(),
        "phase": "setup",
        "setup_exit": None,
        "run_exit": None,
        "started_at": time.time(),
        "run_started_at": None,
        "ended_at": None,
    }

    def on_term(signum: int, _frame: object) -> None:
        # the job's processes got it too: let them stop (and save), then write back
        status.setdefault("term", signum)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # the SSH session ending must not stop the job
    _write_status(attempt_dir, status)
    container = launch.get("container")
    with open(os.path.join(attempt_dir, "job.log"), "a", buffering=1) as log:
        buckets = bool(launch.get("storage_mounts"))
        if buckets and _buckets(attempt_dir, "fetch", env, log) != 0:
            # the mounts made so far go; a half-fetched copy is never written back over
            # the bucket's objects
            _buckets(attempt_dir, "unmount", env, log, remote_procs.kill_bounds(attempt_dir)[1])
            if "term" in status:
                _killed(attempt_dir, status, launch, log)
            log.write("--- skyd: could not mount or copy the job's buckets ---\n")
            status.update(phase="done", setup_exit=126, ended_at=time.time())
            _write_status(attempt_dir, status)
            return

        def finish_buckets() -> None:
            # before the attempt is reported done: the daemon may give the VM back then
            if not buckets:
                return
            killed = "term" in status  # then the job may go on elsewhere: no purge
            bound = remote_procs.kill_bounds(attempt_dir)[1] if killed else None
            code = _buckets(attempt_dir, "stopped" if killed else "finish", env, log, bound)
            if code is None:
                left = ", ".join(_not_written_back(attempt_dir, launch)) or "none"
                log.write(
                    f"--- skyd: writing back to the buckets was stopped after {bound:g} s (the "
                    f"job was killed); not written back: {left} ---\n"
                )
            elif code != 0:
                # the job's result stands; what was not written back is in the log
                log.write("--- skyd: could not write back to or clean up the buckets ---\n")

        phase = (
            _in_container(container, cwd, env, log, job_umask, launch)
            if isinstance(container, dict)
            else _on_host(cwd, env, log, job_umask)
        )
        try:
            _setup_then_run(launch, status, attempt_dir, log, phase, finish_buckets)
        finally:
            remote_procs.remove(launch)


def _on_host(cwd: str, env: dict[str, str], log: TextIO, umask: int) -> Callable[[str, str], int]:
    return lambda command, label: _run_phase(_host_argv(command, umask), cwd, env, log, label)


def _in_container(
    container: dict[str, object],
    cwd: str,
    env: dict[str, str],
    log: TextIO,
    umask: int,
    launch: dict[str, object],
) -> Callable[[str, str], int] | int:
    """Start the task's container and return how to run a phase in it, or the exit code
    that ends the attempt before setup (127 with the reason logged when the machine has no
    engine: the task is never run on the bare host)."""
    engine = remote_procs.find_engine()
    image = container.get("image")
    if engine is None:
        log.write(
            f"--- skyd: image_id docker:{image} needs docker or podman on this machine and "
            "neither is installed; the task is not run on the bare host ---\n"
        )
        return 127
    home = os.path.abspath(env.get("HOME") or os.path.expanduser("~"))
    started = _run_phase(
        remote_procs.start_argv(engine, container, home), cwd, env, log, f"container {image}"
    )
    if started != 0:
        log.write(f"--- skyd: {engine} could not start {image} (exit {started}) ---\n")
        return started
    keys = sorted({*dict(launch.get("env") or {}), *dict(launch.get("abs_env") or {}), "HOME"})  # type: ignore[call-overload]
    name = str(container["name"])

    def phase(command: str, label: str) -> int:
        argv = remote_procs.exec_argv(engine, name, cwd, keys, command, umask)
        return _run_phase(argv, cwd, env, log, label, relay=True)

    return phase


def _killed(
    attempt_dir: str, status: dict[str, object], launch: dict[str, object], log: TextIO
) -> None:
    """Record the kill and leave (the job's processes are gone, the buckets written back)."""
    signum = int(status.pop("term"))  # type: ignore[call-overload]
    remote_procs.remove(launch)
    log.write(f"--- skyd: killed (signal {signum}) ---\n")
    log.flush()
    status.update(phase="killed", ended_at=time.time())
    _write_status(attempt_dir, status)
    os._exit(128 + signum)


def _stop(
    attempt_dir: str,
    status: dict[str, object],
    launch: dict[str, object],
    log: TextIO,
    before_done: Callable[[], None],
) -> None:
    """After a SIGTERM: wait for the job's processes (what they write as they stop goes
    back too), then write the buckets back and record the kill."""
    own = os.getpid()
    # the killer SIGKILLs them after the grace; a killer that died before is stood in for
    deadline = time.monotonic() + remote_procs.kill_bounds(attempt_dir)[0] + 2.0
    while time.monotonic() < deadline and remote_procs.group_alive(own, but=own):
        time.sleep(0.05)
    remote_procs.kill_members(own, but=own)
    remote_procs.remove(launch)  # nothing in it writes any more
    before_done()
    _killed(attempt_dir, status, launch, log)


def _setup_then_run(
    launch: dict[str, object],
    status: dict[str, object],
    attempt_dir: str,
    log: TextIO,
    phase: Callable[[str, str], int] | int,
    before_done: Callable[[], None],
) -> None:
    def stop_if_killed() -> None:
        if "term" in status:
            _stop(attempt_dir, status, launch, log, before_done)

    setup = launch.get("setup")
    stop_if_killed()
    if isinstance(phase, int) or setup:
        # a container that could not start fails the attempt as a failed setup would
        rc = phase if isinstance(phase, int) else phase(str(setup), "setup")
        status["setup_exit"] = rc
        stop_if_killed()
        if rc != 0:
            log.write(f"--- skyd: setup exited with code {rc} ---\n")
            before_done()
            status.update(phase="done", ended_at=time.time())
            _write_status(attempt_dir, status)
            return
    else:
        status["setup_exit"] = 0
    stop_if_killed()
    status.update(phase="run", run_started_at=time.time())
    _write_status(attempt_dir, status)
    assert not isinstance(phase, int)  # returned above
    rc = phase(str(launch.get("run") or "true"), "run")
    log.write(f"--- skyd: run exited with code {rc} ---\n")
    status["run_exit"] = rc
    stop_if_killed()
    before_done()
    status.update(phase="done", run_exit=rc, ended_at=time.time())
    _write_status(attempt_dir, status)


def start(attempt_dir: str) -> dict[str, object]:
    lock_fd = os.open(os.path.join(attempt_dir, "shim.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return {"started": None, "reason": "already running"}
    if _read_status(attempt_dir) is not None:
        return {"started": None, "reason": "already ran"}
    with open(os.path.join(attempt_dir, "launch.json")) as fh:
        launch = json.load(fh)
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(ready_r)
        os.setsid()  # own session and process group: kill reaches setup, run and children
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)  # release the SSH channel so the start command returns
        code = 0
        try:
            os.write(ready_w, b"1")
            os.close(ready_w)
            _wrapper(attempt_dir, launch)
        except BaseException:
            code = 1
        os._exit(code)
    os.close(ready_w)
    os.read(ready_r, 1)  # the child has its own session before we report it started
    os.close(ready_r)
    os.close(lock_fd)  # the child's copy keeps the lock
    return {"started": pid}


def status(attempt_dir: str) -> dict[str, object]:
    try:
        log_size = os.path.getsize(os.path.join(attempt_dir, "job.log"))
    except OSError:
        log_size = 0
    mounts = None
    path = os.path.join(attempt_dir, "mounts.json")  # remote_buckets.py: how each got there
    with contextlib.suppress(OSError, ValueError), open(path) as fh:
        mounts = json.load(fh)
    transfers = None
    path = os.path.join(attempt_dir, "bucket-transfers.json")  # remote_buckets.py: bytes moved
    with contextlib.suppress(OSError, ValueError), open(path) as fh:
        transfers = json.load(fh)
    return {
        "status": _read_status(attempt_dir),
        "alive": _alive(attempt_dir),
        "log_size": log_size,
        "mounts": mounts,
        "transfers": transfers,
    }


def _stop_mounts(attempt_dir: str) -> None:
    """SIGTERM the rclone mounts (own sessions, remote_buckets.py) a wrapper killed in its
    write-back left behind; a pid reused since is told by its command line."""
    pids: dict[str, int] = {}
    with contextlib.suppress(OSError, ValueError), open(f"{attempt_dir}/rclone-pids.json") as fh:
        pids = json.load(fh)
    for target, pid in pids.items():
        try:
            with open(f"/proc/{int(pid)}/cmdline", "rb") as fh:
                words = fh.read().split(b"\0")
        except (OSError, ValueError):
            continue
        if b"mount" in words and os.fsencode(target) in words:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(pid), signal.SIGTERM)


def kill(attempt_dir: str, grace: float, write_back: float = WRITE_BACK_S) -> dict[str, object]:
    data = _read_status(attempt_dir)
    pgid = data.get("pid") if data else None
    finished = data is not None and data.get("phase") in ("done", "killed")
    # A finished wrapper's group is gone; its pid may belong to someone else by now.
    if not isinstance(pgid, int) or pgid <= 1 or finished:
        return {"killed": None}
    with contextlib.suppress(OSError):  # read by the wrapper's SIGTERM handling
        remote_procs.write_kill_bounds(attempt_dir, grace, write_back)
    try:
        os.killpg(pgid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return {"killed": None}
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and remote_procs.group_alive(pgid, but=pgid):
        time.sleep(0.05)
    # the job's processes left after the grace; the wrapper writes the buckets back, within
    # its allowance (it stops the write-back itself then), and a margin to record the kill
    if remote_procs.group_alive(pgid, but=pgid):
        remote_procs.kill_members(pgid, but=pgid)
    launch: dict[str, object] = {}
    with contextlib.suppress(OSError, ValueError), open(f"{attempt_dir}/launch.json") as fh:
        launch = json.load(fh)
    # no buckets: nothing to write back, the wrapper only records the kill
    deadline = time.monotonic() + (write_back + 10.0 if launch.get("storage_mounts") else 2.0)
    while time.monotonic() < deadline and _alive(attempt_dir):
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    _stop_mounts(attempt_dir)
    # A wrapper that had no time to record its end (killed hard, or stopped) is recorded
    # as killed here, so the daemon reads "killed", not "lost", after a cancel.
    settle = time.monotonic() + 2.0
    while _alive(attempt_dir) and time.monotonic() < settle:
        time.sleep(0.02)
    # a wrapper killed before it could remove its container leaves it running: remove it
    remote_procs.remove(launch)
    data = _read_status(attempt_dir)
    if data is not None and data.get("phase") in ("setup", "run") and not _alive(attempt_dir):
        data.update(phase="killed", ended_at=time.time())
        _write_status(attempt_dir, data)
    return {"killed": pgid}


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in ("start", "status", "kill"):
        sys.stderr.write("usage: remote_shim.py start|status|kill DIR [GRACE [WRITE_BACK]]\n")
        return 2
    verb, attempt_dir = argv[0], argv[1]
    if verb == "start":
        result = start(attempt_dir)
    elif verb == "status":
        result = status(attempt_dir)
    else:
        grace = float(argv[2]) if len(argv) > 2 else GRACE_S
        result = kill(attempt_dir, grace, float(argv[3]) if len(argv) > 3 else WRITE_BACK_S)
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
