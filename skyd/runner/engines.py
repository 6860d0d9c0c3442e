"""Whether this host can run a task's container: a docker or podman client whose engine
answers (`info`), so `image_id: docker:` jobs may run on `local`; otherwise they are refused."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import threading
from collections.abc import Callable


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


def probe_in_background(
    loop: asyncio.AbstractEventLoop, probe: Callable[[], str | None] = working_engine
) -> asyncio.Future[str | None]:
    """Run `probe` (up to 15 s per client) on a thread of its own and answer on `loop`: the
    daemon starts without waiting, and only what needs the answer awaits it. A daemon
    thread, not the loop's executor: a daemon stopped mid-probe does not wait for it."""
    answer: asyncio.Future[str | None] = loop.create_future()

    def settle(engine: str | None, error: BaseException | None) -> None:
        if answer.done():
            return
        if error is not None:
            answer.set_exception(error)
        else:
            answer.set_result(engine)

    def run() -> None:
        try:
            engine, error = probe(), None
        except Exception as exc:  # a broken probe is an answer too: no engine
            engine, error = None, exc
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(settle, engine, error)

    threading.Thread(target=run, name="engine-probe", daemon=True).start()
    return answer
