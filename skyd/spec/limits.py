"""Size and content limits on what a task may ask the runner to execute, with the reason for each.

A job's scripts, arguments and environment reach the kernel through execve(2), which
refuses any single string longer than MAX_ARG_STRLEN (32 pages: 128 KiB with its NUL) and
any string containing NUL at all (it ends the string early). Checking at submit turns
"accepted, then FAILED: runner disappeared" into a refusal that says what to change.
"""

from __future__ import annotations

import os
from pathlib import Path

from skyd.skyignore import ignore_rules

MAX_STRING_BYTES = 128 * 1024 - 1  # one script, argument or KEY=VALUE (MAX_ARG_STRLEN)
MAX_ENVIRONMENT_BYTES = 1024 * 1024  # all of envs together; ARG_MAX is 2 MiB with the args
MAX_COMMAND_ARGS = 10_000
MAX_COMMAND_BYTES = 1024 * 1024
# No provider here can launch more; a gang-scheduling check against capacity comes later.
MAX_NUM_NODES = 512
DEFAULT_MAX_WORKDIR_BYTES = 1024**3


def text_problem(text: str, *, what: str) -> str | None:
    """Why `text` cannot be handed to execve, if it cannot."""
    if "\x00" in text:
        return f"{what} contains a NUL byte (\\0), which no program can receive; remove it"
    size = len(text.encode("utf-8", errors="surrogateescape"))
    if size > MAX_STRING_BYTES:
        return (
            f"{what} is {size:,} bytes; the kernel passes at most {MAX_STRING_BYTES:,} bytes "
            "per argument or variable: put the data in a file (workdir or file_mounts) instead"
        )
    return None


def human_bytes(size: int) -> str:
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"


def directory_size(directory: Path, *, stop_after: int) -> int:
    """Bytes the workdir copy would hold (symlinks as links, .skyignore'd files left out);
    counting stops once it passes `stop_after`, so `/` costs no more than the limit."""
    rules = ignore_rules(directory)
    total = 0
    for root, dirs, files in os.walk(directory):
        relative = os.path.relpath(root, directory)
        if rules is not None:
            prefix = "" if relative == "." else relative + "/"
            dirs[:] = [d for d in dirs if not rules.match_file(prefix + d + "/")]
            files = [f for f in files if not rules.match_file(prefix + f)]
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue
            if total > stop_after:
                return total
    return total
