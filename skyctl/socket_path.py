"""Where skyctl looks for the daemon's Unix socket when no --socket is given."""

from __future__ import annotations

import os
from collections.abc import Mapping

SYSTEM_SOCKET = "/run/skyd/skyd.sock"


def resolve_socket_path(explicit: str | None, environ: Mapping[str, str]) -> str:
    """`--socket`, else `SKYD_SOCKET`, else the user socket if it exists, else the system one."""
    if explicit:
        return explicit
    from_env = environ.get("SKYD_SOCKET")
    if from_env:
        return from_env
    runtime_dir = environ.get("XDG_RUNTIME_DIR")
    if runtime_dir:
        user_socket = os.path.join(runtime_dir, "skyd", "skyd.sock")
        if os.path.exists(user_socket):
            return user_socket
    return SYSTEM_SOCKET
