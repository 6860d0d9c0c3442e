"""The last resort of a graceful stop: past its budget, the process leaves anyway (exit 0).

A stop can overrun for reasons no task controls (a cloud call that ignores cancellation, a
worker thread the interpreter waits for at exit). The daemon's state is crash-safe by
design (the store is the truth; a restarted daemon reconciles), so leaving is safe, and a
service manager that sent SIGTERM gets its answer in time instead of escalating to SIGKILL.
Only `skyd run` arms it: a daemon hosted in a test's thread must not end the test process.
"""

from __future__ import annotations

import logging
import os
import threading

log = logging.getLogger("skyd.daemon")


class ExitWatchdog:
    def __init__(self, budget_seconds: float, grace_seconds: float = 0.5) -> None:
        self.after_seconds = budget_seconds + grace_seconds
        self._timer: threading.Timer | None = None

    def arm(self) -> None:
        """Start counting (at the stop signal); arming twice keeps the first count."""
        if self._timer is not None:
            return
        # a thread, not a loop callback: it must fire even if the event loop is stuck
        self._timer = threading.Timer(self.after_seconds, self._force)
        self._timer.daemon = True
        self._timer.start()

    def disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _force(self) -> None:
        log.warning(
            "shutdown budget exceeded; exiting now (jobs keep running, the next start reconciles)",
            extra={"after_seconds": self.after_seconds},
        )
        for handler in logging.getLogger().handlers:
            handler.flush()
        os._exit(0)
