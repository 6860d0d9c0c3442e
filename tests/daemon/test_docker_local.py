"""`image_id: docker:` on `local` with a container engine on this host's PATH (the strict
docker stand-in: no real container runs here): the daemon finds the engine at start, places
the job on local, and the shim runs setup and run as `exec`s in one container with the job's
directory bound, then removes it. Without an engine the job is refused at submit (tested in
test_task_files_e2e)."""

from __future__ import annotations

import json
from pathlib import Path

from skyctl.client import DaemonClient
from skyd.testing import fake_docker
from skyd.testing.daemon import DaemonThread, settings_for_tests, wait_until


def test_a_docker_job_runs_in_its_container_on_local(tmp_path: Path, docker_on_path: Path) -> None:
    settings = settings_for_tests(tmp_path)
    daemon = DaemonThread(settings).start()
    try:
        with DaemonClient(daemon.socket_path) as client:
            task = (
                "resources: {image_id: 'docker:python:3.12-slim'}\n"
                "envs: {GREETING: from-the-image}\n"
                "setup: echo built > made-in-setup\n"
                'run: echo "$GREETING"; cat made-in-setup; echo "path=$PATH"\n'
            )
            job_id = int(client.submit_task(task, str(tmp_path), None)["id"])
            final = wait_until(
                lambda: (
                    j
                    if (j := client.get_job(job_id))["state"]
                    in ("SUCCEEDED", "FAILED", "FAILED_SETUP")
                    else None
                ),
                timeout=60,
            )
            text = b"".join(client.job_logs(job_id, follow=False)).decode()
    finally:
        assert daemon.stop() == 0
    assert final["state"] == "SUCCEEDED", (final, text)
    assert final["placement"]["provider"] == "local"
    assert "from-the-image" in text and "built" in text
    assert f"path={fake_docker.IMAGE_PATH}" in text  # the image's PATH, not the host's
    calls = [json.loads(line)["argv"] for line in docker_on_path.read_text().splitlines()]
    verbs = [argv[0] for argv in calls]
    assert verbs[0] == "info"  # the daemon asked the engine at start
    assert verbs[-4:] == ["run", "exec", "exec", "rm"], verbs
    run = calls[verbs.index("run")]
    assert run[-2:] == ["python:3.12-slim", "infinity"]
    assert "--network" in run and "--gpus" not in run
    exec_run = calls[-2]
    assert "GREETING" in exec_run and "PATH" not in exec_run[: exec_run.index("sh")]
