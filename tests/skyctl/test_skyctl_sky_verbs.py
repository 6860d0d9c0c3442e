"""SkyPilot's verbs in skyctl against a real daemon: status, show-gpus, cost-report, jobs …,
--version, and `submit --follow` streaming progress and output to its end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from skyctl.__main__ import main as skyctl
from skyd.testing.daemon import DaemonThread
from tests.daemon_calls import run_skyctl

TASK = """\
name: greet
setup: echo setting up
run: |
  echo hello from the job
  echo second line
"""


@pytest.fixture
def task_file(tmp_path: Path) -> Path:
    path = tmp_path / "greet.yaml"
    path.write_text(TASK)
    return path


def test_version_flag_needs_no_daemon(capsys: pytest.CaptureFixture[str]) -> None:
    assert skyctl(["--socket", "/nonexistent.sock", "--version"]) == 0
    assert capsys.readouterr().out.startswith("skyctl ")


def test_submit_follow_streams_progress_then_output_and_exits_with_the_job(
    daemon: DaemonThread, task_file: Path, tmp_path: Path
) -> None:
    code, out, err = run_skyctl(daemon.socket_path, "submit", "--follow", str(task_file))
    assert code == 0, err
    assert "hello from the job\nsecond line\n" in out
    progress = err.splitlines()
    assert progress[0].startswith("job ") and progress[0].endswith(" submitted")
    assert any(line.startswith("skyctl: Launching on local") for line in progress), err
    assert any("Running" in line for line in progress)
    assert progress[-1] == "skyctl: Succeeded: run exited with code 0"
    assert "\x1b[" not in err  # not a terminal: plain lines only
    failing = tmp_path / "fail.yaml"
    failing.write_text("name: fails\nrun: echo oops; exit 3\n")
    code, out, err = run_skyctl(
        daemon.socket_path, "jobs", "launch", str(failing)
    )  # follows by default
    assert code == 1 and "oops" in out
    assert err.splitlines()[-1].startswith("skyctl: Failed: ")


def test_jobs_aliases_reach_the_same_commands(daemon: DaemonThread, task_file: Path) -> None:
    code, out, _ = run_skyctl(daemon.socket_path, "jobs", "launch", "-d", "--json", str(task_file))
    assert code == 0
    job_id = json.loads(out)["id"]
    code, out, _ = run_skyctl(daemon.socket_path, "jobs", "queue", "--all", "--json")
    assert job_id in [job["id"] for job in json.loads(out)]
    code, out, _ = run_skyctl(daemon.socket_path, "jobs", "logs", "--follow", str(job_id))
    assert "hello from the job" in out
    code, out, _ = run_skyctl(daemon.socket_path, "jobs", "cancel", str(job_id))
    assert out.startswith(f"job {job_id}: ")
    code, out, _ = run_skyctl(daemon.socket_path, "jobs", "launch", "-d", "--", "echo", "one-liner")
    assert code == 0 and out.strip().isdigit()


def test_status_shows_clusters_and_managed_jobs(daemon: DaemonThread, task_file: Path) -> None:
    run_skyctl(daemon.socket_path, "submit", "--follow", str(task_file))
    code, out, _ = run_skyctl(daemon.socket_path, "status", "--all")
    assert code == 0
    assert out.startswith("Clusters\n")
    jobs = out.split("Managed jobs\n")[1].splitlines()
    assert jobs[0].split()[:4] == ["ID", "NAME", "USER", "STATE"]
    assert "greet" in jobs[1] and "SUCCEEDED" in jobs[1]
    code, out, _ = run_skyctl(daemon.socket_path, "status", "--json")
    assert set(json.loads(out)) == {"clusters", "jobs"}


def test_show_gpus_summary_and_one_accelerator(daemon: DaemonThread) -> None:
    code, out, _ = run_skyctl(daemon.socket_path, "show-gpus")
    lines = out.splitlines()
    assert code == 0
    assert lines[0].split()[:3] == ["GPU", "QTY", "CLOUD"]
    assert "ON-DEMAND" in lines[0] and "SPOT" in lines[0]
    assert any(line.startswith("A100 ") for line in lines)
    assert max(len(line) for line in lines) <= 100
    code, out, _ = run_skyctl(daemon.socket_path, "show-gpus", "V100", "--json")
    rows = json.loads(out)
    assert rows and all(row["accelerator"] == "V100" for row in rows)
    regions = {(row["count"], row["cloud"], row["region"]) for row in rows}
    assert len(regions) == len(rows) > 1  # one row per count, cloud and region
    priced = [row for row in rows if row["on_demand"] and row["spot"]]
    assert priced and all(r["spot"]["hourly_price"] > 0 for r in priced)
    code, out, _ = run_skyctl(daemon.socket_path, "show-gpus", "V100:1", "--cloud", "aws")
    assert (
        code == 0 and "$" in out and all(line.split()[2] == "aws" for line in out.splitlines()[1:])
    )


def test_cost_report_is_costs_by_job(daemon: DaemonThread) -> None:
    code, out, _ = run_skyctl(daemon.socket_path, "cost-report")
    assert code == 0 and out.startswith("Spend by job")


def test_launch_and_exec_follow_the_job_like_sky_launch(
    daemon: DaemonThread, task_file: Path
) -> None:
    code, out, err = run_skyctl(daemon.socket_path, "launch", "-c", "dev", str(task_file))
    assert code == 0, err
    assert "hello from the job" in out
    lines = err.splitlines()
    # the cluster's state once the launch request returned: the watcher, started before the
    # request, may already have printed the cluster's first events (as on a busy machine)
    [state_line] = [i for i, line in enumerate(lines) if line.startswith("cluster dev is ")]
    assert any(line.startswith("skyctl: Cluster dev: ") for line in lines), err
    assert state_line < len(lines) - 1 and lines[-1] == "skyctl: Succeeded: run exited with code 0"
    code, out, err = run_skyctl(
        daemon.socket_path, "exec", "dev", "--", "sh", "-c", "echo on $SKYD_CLUSTER"
    )
    assert code == 0 and "on dev" in out
    assert err.splitlines()[0].startswith("job ") and "queued on dev" in err
    code, out, _ = run_skyctl(daemon.socket_path, "exec", "dev", "-d", "--", "true")
    assert code == 0 and out.strip().isdigit()
    assert run_skyctl(daemon.socket_path, "down", "dev", "--yes", "--force")[0] == 0
