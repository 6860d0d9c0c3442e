"""What the remote shim starts and stops beside the job: the task's container and the job's
process group.

The container (image_id: docker:IMAGE): the docker or podman commands the shim (and
skyd.runner.local_container on this host) starts, runs in and removes it with. The group:
its live processes, and a SIGKILL for all of them but the wrapper (a kill's end of the
grace). Shipped beside remote_shim.py, so stdlib only, for any python3 >= 3.6.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess

# One long-lived container per node and attempt, started before setup; setup and run are
# `exec`s in it, so what setup installs is there for run. The home (workdir, checkpoints,
# ~/ mounts) and absolute file-mount paths are bound at the same paths, the host network is
# shared (ports, other nodes), and only the job's env goes in (`-e KEY`, values from the
# exec's own environment, so none is on a command line).
IN_CONTAINER_SHELL = 'command -v bash >/dev/null 2>&1 && exec bash -c "$1"; exec sh -c "$1"'


def find_engine() -> str | None:
    """docker if the machine has it, else podman (whichever the image has installed)."""
    for name in ("docker", "podman"):
        if shutil.which(name):
            return name
    return None


def start_argv(engine: str, spec: dict[str, object], home: str) -> list[str]:
    argv = [engine, "run", "-d", "--name", str(spec["name"]), "--network", "host"]
    if spec.get("gpus"):
        # docker's NVIDIA runtime flag; podman reaches GPUs through CDI device names
        argv += ["--gpus", "all"] if engine == "docker" else ["--device", "nvidia.com/gpu=all"]
    if spec.get("cpuset"):
        argv += ["--cpuset-cpus", str(spec["cpuset"])]
    for path in [home, *[str(b) for b in list(spec.get("binds") or [])]]:  # type: ignore[call-overload]
        argv += ["-v", f"{path}:{path}"]
    return [*argv, "--entrypoint", "sleep", str(spec["image"]), "infinity"]


def exec_argv(
    engine: str, name: str, cwd: str, keys: list[str], command: str, umask: int
) -> list[str]:
    argv = [engine, "exec", "-w", cwd]
    for key in keys:
        argv += ["-e", key]
    return [*argv, name, "sh", "-c", IN_CONTAINER_SHELL, "skyd", f"umask {umask:03o}; {command}"]


def remove(launch: dict[str, object]) -> None:
    spec = launch.get("container")
    engine = find_engine()
    if not isinstance(spec, dict) or engine is None:
        return
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run(
            [engine, "rm", "-f", str(spec["name"])],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
        )


def members(pgid: int, but: int = 0) -> list[int] | None:
    """The live (non-zombie) processes of the group but `but`, None without /proc: an
    orphaned zombie waits for an init that may never reap it (containers), and must not
    stretch the grace."""
    if not os.path.isdir("/proc/self"):
        return None
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == but:
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                raw = fh.read()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            found.append(int(entry))
    return found


def group_alive(pgid: int, but: int = 0) -> bool:
    """Whether a live process (other than `but`) is left in the group."""
    found = members(pgid, but)
    if found is not None:
        return bool(found)
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not but  # no /proc: the wrapper `but` cannot be told from the rest


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read()
    except OSError:
        return b""


def kill_members(pgid: int, but: int) -> None:
    """SIGKILL the group's processes but the wrapper `but` (a few rounds: one may fork).
    A copy of the wrapper is spared: its write-back helper, forked and not yet in a session
    of its own."""
    wrapper = _cmdline(but)
    for _ in range(3):
        for pid in members(pgid, but) or []:
            if wrapper and _cmdline(pid) == wrapper:
                continue
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
