"""Whether this host can run a task's container: a docker or podman client whose engine
answers (`info`), so `image_id: docker:` jobs may run on `local`; otherwise they are refused."""

from __future__ import annotations

import shutil
import subprocess


def working_engine() -> str | None:
    """docker, else podman, if its engine answers now (a client alone is not enough)."""
    for name in ("docker", "podman"):
        if shutil.which(name) is None:
            continue
        try:
            done = subprocess.run(
                [name, "info", "--format", "{{.ServerVersion}}"],
                capture_output=True,
                timeout=15,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0:
            return name
    return None
