"""What the remote shim starts and stops beside the job: the task's container and the job's
process group.

The container (image_id: docker:IMAGE): the docker or podman commands the shim (and
skyd.runner.local_container on this host) starts, runs in and removes it with. The group:
its live processes, and a SIGKILL for all of them but the wrapper (a kill's end of the
grace). Shipped beside remote_shim.py, so stdlib only, for any python3 >= 3.7.

A kill's SIGTERM reaches the group on the host, where a phase in the container is only its
`docker exec` client: the client does not forward it (moby/moby#9098) and dies, while the
process inside runs on until the container is removed, which SIGKILLs it. So each phase's
client runs under `relay` (python3 remote_procs.py relay …): in the job's group, so a kill
waits for it as for the job, it outlives the SIGTERM and forwards it into the container, to
the process group of the phase's shell (which records its pid), then ends when the phase
does, with its exit code. The client itself is in a session of its own, out of the group.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator

# One long-lived container per node and attempt, started before setup; setup and run are
# `exec`s in it, so what setup installs is there for run. The home (workdir, checkpoints,
# ~/ mounts) and absolute file-mount paths are bound at the same paths, the host network is
# shared (ports, other nodes), and only the job's env goes in (`-e KEY`, values from the
# exec's own environment, so none is on a command line).
# The phase's shell records its pid ($2) first: a kill signals its process group in there
# (an image user who may not write there only loses that, silently).
IN_CONTAINER_SHELL = (
    '{ echo $$ > "$2"; } 2>/dev/null; '
    'command -v bash >/dev/null 2>&1 && exec bash -c "$1"; exec sh -c "$1"'
)
# SIGTERM to the recorded shell's group (runc makes an exec'd process a session leader),
# else to the shell; waits briefly for a phase that has only just started to record it.
FORWARD_TERM = (
    'i=0; while [ ! -s "$1" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; '
    'p=$(cat "$1") && { kill -TERM -"$p" 2>/dev/null || kill -TERM "$p"; }'
)


KILL_FILE = "kill.json"  # the killer's grace and write-back allowance, for the wrapper
GRACE_S = 5.0
WRITE_BACK_S = 300.0


def write_kill_bounds(attempt_dir: str, grace: float, write_back: float) -> None:
    """Tell the wrapper how long the killer waits: the grace, then the write-back."""
    tmp = os.path.join(attempt_dir, KILL_FILE + ".tmp")
    with open(tmp, "w") as fh:
        json.dump({"grace": grace, "write_back": write_back}, fh)
    os.chmod(tmp, 0o644)  # the wrapper may run as the job's owner: not private
    os.replace(tmp, os.path.join(attempt_dir, KILL_FILE))


def kill_bounds(attempt_dir: str) -> tuple[float, float]:
    """The grace and write-back allowance the killer gave (KILL_FILE), else the defaults."""
    data: object = None
    with contextlib.suppress(OSError, ValueError), open(os.path.join(attempt_dir, KILL_FILE)) as fh:
        data = json.load(fh)
    if not isinstance(data, dict):
        return GRACE_S, WRITE_BACK_S
    return float(data.get("grace", GRACE_S)), float(data.get("write_back", WRITE_BACK_S))


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
    """The phase: its `exec` client under `relay`. Start it with SIGTERM blocked (the relay
    unblocks it once its handler is set), so a kill at any moment is forwarded."""
    # beside the workdir, in the bound directory, one phase at a time
    pidfile = os.path.join(os.path.dirname(os.path.abspath(cwd)), ".skyd-phase.pid")
    argv = [engine, "exec", "-w", cwd]
    for key in keys:
        argv += ["-e", key]
    shell = ["sh", "-c", IN_CONTAINER_SHELL, "skyd", f"umask {umask:03o}; {command}", pidfile]
    here = os.path.abspath(__file__)
    return [sys.executable, "-I", here, "relay", engine, name, pidfile, *argv, name, *shell]


@contextlib.contextmanager
def term_blocked(block: bool = True) -> Iterator[None]:
    """SIGTERM held back while a phase's relay is started (it inherits the mask): delivered
    to this process after, and to the relay once its handler is set."""
    if not block:
        yield
        return
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})


def _forward_term(engine: str, name: str, pidfile: str) -> None:
    argv = [engine, "exec", "-w", os.path.dirname(pidfile), name, "sh", "-c", FORWARD_TERM]
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run(
            [*argv, "skyd", pidfile],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=30,
        )


def relay(engine: str, name: str, pidfile: str, argv: list[str]) -> int:
    """Run the `exec` client `argv` in a session of its own and return its exit code; a
    SIGTERM is forwarded into container `name` once (none started yet: end at once)."""
    with contextlib.suppress(OSError):
        os.unlink(pidfile)  # the last phase's
    started: list[subprocess.Popen[bytes]] = []

    def on_term(signum: int, _frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if not started:
            os._exit(128 + signum)
        _forward_term(engine, name, pidfile)

    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    signal.signal(signal.SIGTERM, on_term)
    try:
        started.append(
            subprocess.Popen(
                argv,
                start_new_session=True,
                preexec_fn=lambda: signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM}),
            )
        )
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})  # a pending one runs now
    return started[0].wait()


def remove(launch: dict[str, object]) -> None:
    spec = launch.get("container")
    engine = find_engine()
    if not isinstance(spec, dict) or engine is None:
        return
    # In a session of its own: a killer's sweep of the wrapper's group after the grace
    # (kill_members) would otherwise SIGKILL the client mid-call and leave the container
    # running (a local killer does not remove it again).
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run(
            [engine, "rm", "-f", str(spec["name"])],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
            start_new_session=True,
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


if __name__ == "__main__":
    if sys.argv[1:2] != ["relay"] or len(sys.argv) < 6:
        sys.stderr.write("usage: remote_procs.py relay ENGINE NAME PIDFILE ARGV...\n")
        sys.exit(2)
    sys.exit(relay(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]))
