"""Where skyd keeps things on a remote machine, and the shell commands reaching the remote shim."""

from __future__ import annotations

import shlex

SHIM_NAME = "shim.py"
DRAIN_FILE = "drain"  # an admin touches REMOTE_ROOT/drain to stop new launches on a host


def normalize_root(remote_root: str) -> str:
    """`~/x` → `x`: SFTP and a non-interactive shell both start in the home directory,
    and a quoted `~` would not be expanded."""
    root = remote_root
    while root.startswith("~/"):
        root = root[2:]
    return root.rstrip("/") or "."


def run_dir(remote_root: str, instance_id: str) -> str:
    """The remote directory of everything one instance (node) of one attempt runs."""
    return f"{normalize_root(remote_root)}/runs/{instance_id}"


def shim_command(python: str, directory: str, verb: str, *args: str) -> str:
    shim = f"{directory}/{SHIM_NAME}"
    # -I -S: no site-packages or PYTHON* variables of the remote account; faster, and the
    # shim needs nothing beyond the standard library.
    words = [python, "-I", "-S", shim, verb, directory, *args]
    return " ".join(shlex.quote(w) for w in words)


def kill_command(python: str, directory: str, grace_s: float, write_back_s: float = 300.0) -> str:
    """Kill the attempt's group if a shim was ever shipped there; succeed quietly otherwise.
    After the grace the wrapper has `write_back_s` to write the job's buckets back."""
    shim = shlex.quote(f"{directory}/{SHIM_NAME}")
    verb = shim_command(python, directory, "kill", f"{grace_s:g}", f"{write_back_s:g}")
    return f"if [ -f {shim} ]; then {verb}; fi"


def probe_command(remote_root: str) -> str:
    """Cheap liveness + drain check: prints `skyd-probe ok` or `skyd-probe drained`."""
    drain = shlex.quote(f"{normalize_root(remote_root)}/{DRAIN_FILE}")
    return f"if [ -e {drain} ]; then echo skyd-probe drained; else echo skyd-probe ok; fi"
