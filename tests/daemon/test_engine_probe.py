"""The container-engine probe (`docker info`, up to 15 s per client) runs in the background:
the daemon answers before it has, and only a docker submit waits for its answer."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from skyd.daemon import Daemon
from skyd.testing.daemon import DaemonThread, kill_leftover_jobs, settings_for_tests, wait_until
from skyd.testing.unix_http import request


def test_health_answers_while_the_engine_probe_is_pending(tmp_path: Path) -> None:
    asked, release = threading.Event(), threading.Event()

    def slow_probe() -> str | None:
        asked.set()
        release.wait(60)  # an engine that takes its time to answer
        return "docker"

    settings = settings_for_tests(tmp_path)
    daemon = DaemonThread(settings)
    daemon.daemon = Daemon(settings, engine_probe=slow_probe)
    daemon.start()
    answers: dict[str, Any] = {}
    try:
        assert asked.wait(30)
        status, body, _ = request(settings.socket_path, "GET", "/v1/health")
        assert status == 200 and not release.is_set(), body

        def submit() -> None:
            task = "resources: {image_id: 'docker:python:3.12-slim'}\nrun: 'true'\n"
            answers["submit"] = request(
                settings.socket_path,
                "POST",
                "/v1/jobs",
                {"task_yaml": task, "base_dir": str(tmp_path)},
            )

        submitter = threading.Thread(target=submit)
        submitter.start()
        scheduler = daemon.daemon.scheduler
        assert scheduler is not None
        wait_until(lambda: scheduler.market.waiting_for_engine == 1)  # the submit waits for it
        release.set()
        submitter.join(60)
    finally:
        release.set()
        assert daemon.stop() == 0
        kill_leftover_jobs(settings.state_dir)
    # admitted on the probe's answer (an engine): before it, local runs no containers and
    # the job would have been refused
    status, body, _ = answers["submit"]
    assert status == 201, body
