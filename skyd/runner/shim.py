"""The per-attempt job wrapper: runs setup then run, and records each phase and exit status durably.

It is started in its own session (so cancel can kill the whole process group) and
outlives the daemon. The daemon locks DIR/shim.lock before spawning it and hands
the locked descriptor over, so "the lock is held" means exactly "the shim lives":
a daemon killed with -9 and restarted reads DIR/status.json and probes the lock to
pick the job up again. Usage: python -m skyd.runner.shim DIR, where DIR/launch.json
says what to run.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from skyd.runner import local_container as container_argv
from skyd.runner import path_binds, remote_procs


def write_status(attempt_dir: Path, status: dict[str, Any]) -> None:
    """Atomic replace + fsync, so a reader never sees a half-written status."""
    tmp = attempt_dir / "status.json.tmp"
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as fh:
        json.dump(status, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, attempt_dir / "status.json")


def _prepare(launch: dict[str, Any]) -> None:
    """Snapshot the workdir and file mounts into the job's directory, with the owner's rights."""
    cwd = Path(launch["cwd"])
    cwd.mkdir(parents=True, exist_ok=True)
    source = launch.get("workdir_source")
    git = launch.get("workdir_git")
    marker = cwd / ".skyd-synced"
    if source and not marker.exists():  # recoveries keep the first snapshot
        from skyd.skyignore import copytree_ignore

        ignore = copytree_ignore(Path(source))  # what the size check left out is not copied
        shutil.copytree(source, cwd, dirs_exist_ok=True, symlinks=True, ignore=ignore)
        marker.touch()
    if git and not marker.exists():
        _clone(git, cwd, launch["env"])
        marker.touch()
    for dest, src in launch.get("file_mounts", {}).items():
        target = Path(dest)
        if Path(src).is_dir():
            shutil.copytree(src, target, dirs_exist_ok=True, symlinks=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)


def _clone(git: dict[str, Any], cwd: Path, env: dict[str, str]) -> None:
    """SkyPilot's git workdir: fetch just `ref` (a branch, tag or commit) and check it out,
    with the job's own environment (its HOME's keys and credential helpers)."""
    ref = git.get("ref") or "HEAD"
    for argv in (
        ["git", "init", "-q", str(cwd)],
        ["git", "-C", str(cwd), "fetch", "-q", "--depth", "1", "--", git["url"], ref],
        ["git", "-C", str(cwd), "checkout", "-q", "FETCH_HEAD"],
    ):
        done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise OSError(f"git workdir {git['url']}@{ref}: {done.stderr.strip()}")


def _run_phase(
    command: str,
    *,
    cwd: str,
    env: dict[str, str],
    log: Any,
    label: str,
    umask: int = -1,
    container: dict[str, Any] | None = None,
    view: list[str] | None = None,
) -> int:
    log.write(f"--- skyd: {label} started at {time.strftime('%Y-%m-%d %H:%M:%S')} ---\n")
    log.flush()
    argv = [*(view or []), "/bin/bash", "-c", command]
    if container is not None:
        # inside the task's image: only the job's own env goes in (the image keeps its PATH)
        keys = sorted(k for k in env if k not in ("PATH", "HOME"))
        argv = container_argv.exec_argv(container, cwd, keys, command, umask)
    with remote_procs.term_blocked(container is not None):  # see exec_argv
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            umask=umask,
        )
    return proc.wait()


def _path_view(launch: dict[str, Any], log: Any) -> list[str] | None:
    """The bwrap prefix that shows each absolute mount at its own path (skyd.runner.path_binds),
    or None: no such mount, or (said in the log) no bubblewrap to show them there."""
    binds: dict[str, str] = dict(launch.get("path_binds") or {})
    if not binds:
        return None
    for source in binds.values():
        if not os.path.exists(source):
            os.makedirs(source, exist_ok=True)  # an empty bucket or folder: still a mount
    tool = path_binds.bwrap()
    why = "bubblewrap (bwrap) is not installed on this host"
    if tool is not None:
        try:
            view = path_binds.view_argv(binds, tool)
            why = path_binds.unusable(tool)  # e.g. user namespaces are not allowed here
            if not why:
                return view
        except (OSError, ValueError) as exc:
            why = str(exc)
    for dest, source in sorted(binds.items()):
        log.write(f"--- skyd: {dest} is at {source}, not at {dest}: {why} ---\n")
    return None


def main(argv: list[str]) -> int:
    attempt_dir = Path(argv[0])
    # skyd's own files (status, log, the workdir snapshot) are private; the job's processes
    # get the umask the shim started with, as they would have without skyd
    job_umask = os.umask(0o077)
    launch = json.loads((attempt_dir / "launch.json").read_text())
    env = dict(launch["env"])
    if launch.get("cpu_affinity"):
        # the task's `cpus:` on this host: setup, run and all they start inherit it
        os.sched_setaffinity(0, launch["cpu_affinity"])
    status: dict[str, Any] = {
        "pid": os.getpid(),
        "phase": "setup",
        "setup_exit": None,
        "run_exit": None,
        "started_at": time.time(),
        "run_started_at": None,
        "ended_at": None,
    }

    # A cancel sends SIGTERM to the whole group; the children get it too. The shim lets them
    # stop (they may save on it), writes the buckets back (stopped), then records the kill.
    def on_term(signum: int, _frame: object) -> None:
        status.setdefault("term", signum)

    signal.signal(signal.SIGTERM, on_term)
    write_status(attempt_dir, status)
    container = launch.get("container")
    buckets = list(launch.get("storage_mounts") or [])
    with open(launch["log_path"], "a", buffering=1) as log:
        try:
            _prepare(launch)
            if buckets:
                from skyd.runner.buckets import fetch  # boto3 only for jobs with buckets

                log.write(fetch(buckets, env, attempt_dir))
        except Exception as exc:  # OSError, or any bucket client's error
            log.write(f"--- skyd: could not sync workdir/file_mounts: {exc} ---\n")
            status.update(phase="done", setup_exit=126, ended_at=time.time())
            write_status(attempt_dir, status)
            return 0

        def stop_if_killed() -> None:
            if "term" in status:
                stopped(attempt_dir, launch, status, log)

        stop_if_killed()
        view = None if container is not None else _path_view(launch, log)
        if container is not None:
            started = container_argv.start(container, launch["cwd"], env, log)
            if started != 0:
                status.update(phase="done", setup_exit=started, ended_at=time.time())
                write_status(attempt_dir, status)
                return 0
        if launch.get("setup"):
            rc = _run_phase(
                launch["setup"],
                cwd=launch["cwd"],
                env=env,
                log=log,
                label="setup",
                umask=job_umask,
                container=container,
                view=view,
            )
            status["setup_exit"] = rc
            stop_if_killed()
            if rc != 0:
                log.write(f"--- skyd: setup exited with code {rc} ---\n")
                status.update(phase="done", ended_at=time.time())
                write_status(attempt_dir, status)
                if container is not None:
                    container_argv.remove(container)
                return 0
        else:
            status["setup_exit"] = 0
        stop_if_killed()
        status.update(phase="run", run_started_at=time.time())
        write_status(attempt_dir, status)
        rc = _run_phase(
            launch["run"] or "true",
            cwd=launch["cwd"],
            env=env,
            log=log,
            label="run",
            umask=job_umask,
            container=container,
            view=view,
        )
        status["run_exit"] = rc
        stop_if_killed()
        if container is not None:
            container_argv.remove(container)
        log.write(f"--- skyd: run exited with code {rc} ---\n")
        if buckets:
            try:
                from skyd.runner.buckets import push_back

                log.write(push_back(buckets, env, attempt_dir))
            except Exception as exc:  # the job's result stands; say what failed
                log.write(f"--- skyd: could not write back to the bucket: {exc} ---\n")
    status.update(phase="done", run_exit=rc, ended_at=time.time())
    write_status(attempt_dir, status)
    return 0


def stopped(attempt_dir: Path, launch: dict[str, Any], status: dict[str, Any], log: Any) -> None:
    """After a SIGTERM: wait for the job's processes (the killer SIGKILLs what is left after
    the grace), write the buckets back within the killer's allowance, record the kill."""
    grace, write_back = remote_procs.kill_bounds(str(attempt_dir))
    own = os.getpid()
    deadline = time.monotonic() + grace + 2.0  # a killer that died before is stood in for
    while time.monotonic() < deadline and remote_procs.group_alive(own, own):
        time.sleep(0.05)
    remote_procs.kill_members(own, own)
    if launch.get("container"):
        container_argv.remove(launch["container"])
    buckets = list(launch.get("storage_mounts") or [])
    if buckets:
        done: list[str] = []

        def write_back_all() -> None:
            from skyd.runner.buckets import push_back

            try:  # no purge: a moved job goes on elsewhere with its buckets
                done.append(push_back(buckets, launch["env"], attempt_dir, purge=False))
            except Exception as exc:  # the kill stands; say what failed
                done.append(f"--- skyd: could not write back to the bucket: {exc} ---\n")

        worker = threading.Thread(target=write_back_all, daemon=True)
        worker.start()
        worker.join(write_back)
        if done:
            log.write(done[0])
        else:
            urls = [str(m["url"]) for m in buckets if m.get("mode") in ("MOUNT", "MOUNT_CACHED")]
            log.write(
                f"--- skyd: writing back to the buckets was stopped after {write_back:g} s (the "
                f"job was killed); not written back: {', '.join(urls) or 'none'} ---\n"
            )
    signum = int(status.pop("term"))
    log.write(f"--- skyd: killed (signal {signum}) ---\n")
    log.flush()
    status.update(phase="killed", ended_at=time.time())
    write_status(attempt_dir, status)
    os._exit(128 + signum)


def detach_and_run(argv: list[str]) -> int:
    """Fork: the parent prints the child's pid and exits at once; the child starts its own
    session (its process group is the job's) and runs the attempt. So the job is never the
    daemon's child: it outlives any daemon, and no daemon has to reap it."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid > 0:
        os.close(write_end)
        os.read(read_end, 1)  # wait until the child has its own session
        print(pid, flush=True)
        return 0
    os.close(read_end)
    # let go of the launcher's stdout pipe, or the daemon would wait for the job to end
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 1)
    os.close(devnull)
    os.setsid()
    os.write(write_end, b"1")
    os.close(write_end)
    try:
        code = main(argv)
    except BaseException:
        code = 1
    os._exit(code)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--detach"]:
        sys.exit(detach_and_run(sys.argv[2:]))
    sys.exit(main(sys.argv[1:]))
