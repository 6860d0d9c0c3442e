"""Absolute file-mount paths for jobs on this host, at the paths the task names.

A local job's `/data` mount lives in the job's own directory (`JOB/mounts/data`), never in
the host's real `/data`. Its commands still say `/data`, as SkyPilot tasks do, so setup and
run go into a private view of the filesystem made by bubblewrap (`bwrap`, Debian's
`bubblewrap`, unprivileged through a user namespace): the host's tree bound as it is, except
that each mount path shows the job's copy. The path is never made on the host: every
directory on the way to it is a fresh one in the view, holding binds of the host's entries
beside it, so two jobs can each have their own `/data`.

A kill's SIGTERM (sent to the shim's whole process group) must reach the job and leave it
its grace: bwrap dies of it at once, and `--die-with-parent` then SIGKILLs the job before
its handler runs. So bwrap runs with SIGTERM ignored (it ends when the job does, and still
dies with its parent, and the job with it), and the job gets the default disposition back
inside the view before its shell starts (an ignored-at-start signal cannot be trapped).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping

# kernel filesystems bound as they are (a fresh /proc needs a PID namespace of its own)
_AS_IS = {"/dev": "--dev-bind", "/proc": "--bind"}


# set SIGTERM's disposition, then exec argv[1:]: ignore it in bwrap, default in the job
_SIGTERM = (
    "import os,signal,sys; signal.signal(signal.SIGTERM, signal.{}); "
    "os.execvp(sys.argv[1], sys.argv[1:])"
)


def _with_sigterm(disposition: str) -> list[str]:
    return [sys.executable, "-I", "-c", _SIGTERM.format(disposition)]


def bwrap() -> str | None:
    return shutil.which("bwrap")


def unusable(tool: str) -> str:
    """Why bwrap cannot make a view for this user here ("" when it can): it needs a user
    namespace, which some hosts forbid to unprivileged users."""
    try:
        done = subprocess.run(
            [
                *_with_sigterm("SIG_IGN"),
                tool,
                "--dev-bind",
                "/",
                "/",
                *_with_sigterm("SIG_DFL"),
                "true",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"bubblewrap cannot run here: {exc}"
    if done.returncode != 0:
        return f"bubblewrap cannot run here: {done.stderr.strip()[:200]}"
    return ""


def _ancestors(path: str) -> list[str]:
    parts = path.strip("/").split("/")
    return ["/" + "/".join(parts[:i]) for i in range(1, len(parts))]


def view_argv(binds: Mapping[str, str], tool: str = "bwrap") -> list[str]:
    """The command prefix for a view of this host with each `binds` path (absolute, on the
    job) showing its source (the job's copy): bwrap, SIGTERM ignored, with its arguments,
    then what gives the job SIGTERM back; the job's own command follows. Raises ValueError
    for a path under /dev or /proc, or one whose way down cannot be listed by this user."""
    dests = {os.path.normpath(d) for d in binds}
    for dest in dests:
        if not dest.startswith("/") or dest == "/":
            raise ValueError(f"{dest!r} is not an absolute path below /")
        if any(dest == k or dest.startswith(k + "/") for k in _AS_IS):
            raise ValueError(f"{dest} is under {dest.split('/')[1]}: not a place for a mount")
    fresh = {"/", *(a for d in dests for a in _ancestors(d))}  # made anew in the view
    argv = [*_with_sigterm("SIG_IGN"), tool, "--die-with-parent"]
    for directory in sorted(fresh, key=lambda p: (p.count("/"), p)):
        try:
            entries = sorted(os.listdir(directory))
        except FileNotFoundError:
            continue  # not on the host: the view's own empty directory
        except PermissionError as exc:
            raise ValueError(f"cannot list {directory} to show a mount below it: {exc}") from exc
        for name in entries:
            path = os.path.join(directory, name)
            if path in fresh:
                argv += ["--dir", path]
            elif path in dests:
                continue  # the job's copy goes there
            elif path in _AS_IS:
                argv += [_AS_IS[path], path, path]
            elif os.path.islink(path):
                argv += ["--symlink", os.readlink(path), path]
            else:
                argv += ["--dev-bind", path, path]  # files and directories, as they are
    for dest in sorted(fresh - {"/"}, key=lambda p: p.count("/")):
        if not os.path.exists(dest):
            argv += ["--dir", dest]
    for dest, source in sorted(binds.items()):
        argv += ["--bind", source, os.path.normpath(dest)]
    return [*argv, *_with_sigterm("SIG_DFL")]
