"""The `[ssh]` hosts entry a test daemon's settings give for a lab machine (a FakeSshServer)."""

from __future__ import annotations

import sys
from typing import Any

from skyd.testing.ssh_server import FakeSshServer


def ssh_host_entry(box: FakeSshServer, *, max_jobs: int) -> dict[str, Any]:
    """Log in as the box's user with its client key; 8 CPUs, 32 GiB, `max_jobs` at once."""
    return {
        "name": box.name,
        "host": box.host,
        "port": box.port,
        "user": box.user,
        "key_path": str(box.client_key_path),
        "known_hosts": str(box.known_hosts_path),
        "cpus": 8,
        "memory_gib": 32,
        "max_jobs": max_jobs,
        "python": sys.executable,
    }
