"""`image_id: docker:` on this host: the local shim's container, started and removed with the
same commands the remote shim uses on VMs (skyd.runner.remote_procs): one container per
attempt and node, the job's directory and checkpoints bound at their own paths, the host
network, setup and run as `exec`s with the job's env by name."""

from __future__ import annotations

import os
import subprocess
from typing import Any, TextIO

from skyd.runner import remote_procs


def _engine() -> str:
    engine = remote_procs.find_engine()
    if engine is None:
        raise OSError("no docker or podman on PATH")
    return engine


def start(container: dict[str, Any], cwd: str, env: dict[str, str], log: TextIO) -> int:
    """Start the container (its output in the job's log); its exit code (0: started)."""
    try:
        engine = _engine()
    except OSError as exc:
        log.write(f"--- skyd: image_id docker:{container.get('image')}: {exc}; not run bare ---\n")
        return 127
    job_dir = os.path.dirname(os.path.abspath(cwd))  # workdir and mounts live in it
    argv = remote_procs.start_argv(engine, container, job_dir)
    log.write(f"--- skyd: container {container.get('image')} started with {engine} ---\n")
    log.flush()
    code = subprocess.run(argv, env=env, stdout=log, stderr=subprocess.STDOUT, check=False)
    if code.returncode != 0:
        log.write(f"--- skyd: {engine} could not start {container.get('image')} ---\n")
    return code.returncode


def exec_argv(
    container: dict[str, Any], cwd: str, keys: list[str], command: str, umask: int
) -> list[str]:
    return remote_procs.exec_argv(
        _engine(), str(container["name"]), cwd, keys, command, umask if umask >= 0 else 0o022
    )


def remove(container: dict[str, Any]) -> None:
    remote_procs.remove({"container": container})
