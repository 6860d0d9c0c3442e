"""SkyPilot task files through the real skyctl and a real daemon: every error with the real file
name, the same exit status with and without --json, paths from the working directory, overrides,
secrets that run but are never shown, and what a bare host must refuse."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from skyctl.client import ApiError, DaemonClient
from skyd.testing.daemon import DaemonThread
from tests.daemon_calls import run_skyctl, wait_ended


def test_optimize_reports_every_error_with_the_file_name_and_one_exit_status(
    daemon: DaemonThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "examples").mkdir()
    bad = tmp_path / "examples" / "bad.yaml"
    bad.write_text("resources:\n  accelerators: A1000\n  cpus: many\nnum_nodes: 0\nrun: x\n")
    monkeypatch.chdir(tmp_path)
    code, _out, err = run_skyctl(daemon.socket_path, "optimize", "examples/bad.yaml")
    lines = err.splitlines()
    assert code == 1 and len(lines) == 3, err
    assert all(line.startswith("skyctl: error: examples/bad.yaml:") for line in lines)
    assert "did you mean 'A100'" in err
    json_code, _json_out, json_err = run_skyctl(
        daemon.socket_path, "optimize", "examples/bad.yaml", "--json"
    )
    assert json_code == code and json_err == err


def test_relative_paths_resolve_against_the_working_directory(
    daemon: DaemonThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "examples" / "y").mkdir(parents=True)
    (tmp_path / "examples" / "x.yaml").write_text("workdir: examples/y\nrun: ls\n")
    monkeypatch.chdir(tmp_path)
    code, out, err = run_skyctl(daemon.socket_path, "optimize", "examples/x.yaml", "--json")
    assert code == 0, err
    answer = json.loads(out)
    assert answer["warnings"] == []
    assert answer["task"]["workdir"] == str(tmp_path / "examples" / "y")


def test_env_overrides_and_secrets_reach_the_job_but_are_never_shown(
    daemon: DaemonThread, client: DaemonClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    task = tmp_path / "task.yaml"
    task.write_text(
        "envs:\n  MODEL:\nsecrets:\n  HF_TOKEN: null\n"
        'run: test "$MODEL" = llama && test "$HF_TOKEN" = hf_s3cret && echo ok\n'
    )
    monkeypatch.chdir(tmp_path)
    code, _, err = run_skyctl(daemon.socket_path, "submit", "task.yaml")
    assert code == 1 and "--env MODEL=VALUE" in err and "--secret HF_TOKEN=VALUE" in err
    monkeypatch.setenv("HF_TOKEN", "hf_s3cret")
    code, out, err = run_skyctl(
        daemon.socket_path, "submit", "task.yaml", "--env", "MODEL=llama", "--secret", "HF_TOKEN"
    )
    assert code == 0, err
    job = wait_ended(client, int(out))
    assert job["state"] == "SUCCEEDED", job
    code, shown, _ = run_skyctl(daemon.socket_path, "show", out.strip())
    assert "llama" in shown and "<redacted>" in shown and "hf_s3cret" not in shown
    code, shown_json, _ = run_skyctl(daemon.socket_path, "show", out.strip(), "--json")
    assert "hf_s3cret" not in shown_json
    assert json.loads(shown_json)["task"]["secrets"] == ["HF_TOKEN"]


def test_a_docker_image_is_never_run_on_the_bare_host(client: DaemonClient, tmp_path: Path) -> None:
    with pytest.raises(ApiError) as caught:
        client.submit_task(
            "resources: {image_id: 'docker:alpine:3.20'}\nrun: echo hi\n", str(tmp_path), None
        )
    assert caught.value.status == 422
    assert caught.value.code == "infeasible"
    # the reason says why: local runs plain processes, and the image is never run bare
    assert "image_id docker:alpine:3.20 needs a provider that runs containers" in str(caught.value)
    assert "never runs it on the bare host" in str(caught.value)
    assert "this host has no container engine that answers" in str(caught.value)
    assert client.list_jobs(include_terminal=True)[0] == []  # nothing was submitted


def test_absurd_submissions_are_refused_before_anything_runs(
    client: DaemonClient, tmp_path: Path
) -> None:
    for body in (
        {"command": ["echo", "x" * 5_000_000], "base_dir": str(tmp_path)},
        {"command": ["echo"] + ["a"] * 100_000, "base_dir": str(tmp_path)},
        {"command": ["echo", "a\x00b"], "base_dir": str(tmp_path)},
        {"task_yaml": "run: x\n", "base_dir": str(tmp_path) + "\x00"},
        {"task_yaml": "num_nodes: 1000000000\nrun: x\n", "base_dir": str(tmp_path)},
        {"task_yaml": "file_mounts: {'../../../../x': /etc/hostname}\nrun: x\n", "base_dir": "/"},
    ):
        with pytest.raises(ApiError) as caught:
            client.request("POST", "/v1/jobs", body=body)
        assert caught.value.status == 400, body
    page, _ = client.list_jobs(include_terminal=True)
    assert page == []


def test_overrides_on_optimize_pick_the_cloud_and_gpus(
    daemon: DaemonThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "t.yaml").write_text("resources: {accelerators: V100}\nrun: x\n")
    monkeypatch.chdir(tmp_path)
    code, out, err = run_skyctl(
        daemon.socket_path,
        "optimize",
        "t.yaml",
        "--json",
        "--gpus",
        "A100:8",
        "--infra",
        "gcp",
        "--use-spot",
    )
    assert code == 0, err
    placed = json.loads(out)["if_all_providers_enabled"]
    assert placed["cloud"] == "gcp" and placed["spot"] is True
    code, _, err = run_skyctl(
        daemon.socket_path, "optimize", "t.yaml", "--region", "us-east-9", "--cloud", "aws"
    )
    assert code == 1 and "--region: resources.region: 'us-east-9'" in err
    assert "did you mean 'us-east-2' or 'us-east-1'" in err


def test_the_runners_launch_file_holding_secrets_is_private(
    daemon: DaemonThread, client: DaemonClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "t.yaml").write_text("secrets: {TOKEN: null}\nrun: echo done\n")
    monkeypatch.chdir(tmp_path)
    code, out, err = run_skyctl(daemon.socket_path, "submit", "t.yaml", "--secret", "TOKEN=abc123")
    assert code == 0, err
    assert wait_ended(client, int(out))["state"] == "SUCCEEDED"
    (launch,) = daemon.settings.jobs_dir.glob(f"{out.strip()}/attempt-*/launch.json")
    assert launch.stat().st_mode & 0o077 == 0


def test_bucket_mounts_are_planned_and_shown(
    daemon: DaemonThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "t.yaml").write_text("file_mounts:\n  /data: s3://lab-data/train\nrun: ls /data\n")
    monkeypatch.chdir(tmp_path)
    code, out, err = run_skyctl(daemon.socket_path, "optimize", "t.yaml", "--json")
    assert code == 0, err
    shown = json.loads(out)["task"]["storage_mounts"]["/data"]
    assert shown == {"url": "s3://lab-data/train", "mode": "COPY", "persistent": True}


def test_dryrun_shows_the_plan_and_submits_nothing(
    daemon: DaemonThread, client: DaemonClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "t.yaml").write_text("run: echo hi\n")
    monkeypatch.chdir(tmp_path)
    code, out, err = run_skyctl(daemon.socket_path, "submit", "--dryrun", "t.yaml")
    assert code == 0, err
    assert "Chosen:" in out and "local" in out
    assert client.list_jobs(include_terminal=True)[0] == []


def test_the_workdir_cap_comes_from_the_config(tmp_path: Path) -> None:
    from skyd.testing.daemon import settings_for_tests

    work = tmp_path / "work"
    work.mkdir()
    (work / "big.bin").write_bytes(b"x" * 10_000)
    daemon = DaemonThread(settings_for_tests(tmp_path, max_workdir_bytes=4096)).start()
    try:
        with DaemonClient(daemon.socket_path) as client:
            with pytest.raises(ApiError) as caught:
                client.submit_task("workdir: work\nrun: ls\n", str(tmp_path), None, source="t.yaml")
            assert "more than 4.0 KiB" in caught.value.message
            assert ".skyignore" in caught.value.message
    finally:
        assert daemon.stop() == 0


def test_a_git_workdir_is_cloned_at_its_ref(
    daemon: DaemonThread, client: DaemonClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess

    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    (repo / "train.py").write_text("print('v1')\n")
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "v1"], check=True)
    subprocess.run([*git, "tag", "v1"], check=True)
    (repo / "train.py").write_text("print('v2')\n")
    subprocess.run([*git, "commit", "-qam", "v2"], check=True)
    (tmp_path / "t.yaml").write_text(
        f"workdir:\n  url: file://{repo}\n  ref: v1\nrun: python3 train.py\n"
    )
    monkeypatch.chdir(tmp_path)
    code, out, err = run_skyctl(daemon.socket_path, "submit", "t.yaml")
    assert code == 0, err
    job = wait_ended(client, int(out))
    log = b"".join(client.job_logs(int(out), follow=False)).decode()
    assert job["state"] == "SUCCEEDED", log
    assert "v1" in log and "v2" not in log


def test_skyignored_files_are_not_copied_with_the_workdir(
    daemon: DaemonThread, client: DaemonClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "work"
    (work / "data").mkdir(parents=True)
    (work / "data" / "huge.bin").write_bytes(b"x" * 1000)
    (work / "ckpt.pt").write_text("old\n")
    (work / "train.py").write_text("print('hi')\n")
    (work / ".skyignore").write_text("data/\n*.pt\n")
    (tmp_path / "t.yaml").write_text(
        "workdir: work\nrun: test -f train.py && test ! -e data && test ! -e ckpt.pt\n"
    )
    monkeypatch.chdir(tmp_path)
    code, out, err = run_skyctl(daemon.socket_path, "submit", "t.yaml")
    assert code == 0, err
    assert wait_ended(client, int(out))["state"] == "SUCCEEDED"


def test_ports_and_tiers_on_local_are_shown_as_not_applicable(
    daemon: DaemonThread, client: DaemonClient, tmp_path: Path
) -> None:
    job = client.submit_task(
        "resources: {ports: [8080], disk_tier: high, network_tier: best}\nrun: echo hi\n",
        str(tmp_path),
        None,
    )
    final = wait_ended(client, int(job["id"]))
    assert final["state"] == "SUCCEEDED", final
    task = client.get_job(int(job["id"]))["task"]
    assert task["ports"] == ["8080"]
    assert task["ports_open"].startswith("not applicable on local")
    assert "endpoints" not in task
    assert task["disk"].startswith("not applicable on local")
    assert task["network"].startswith("the cluster's own network")
    code, shown, _ = run_skyctl(daemon.socket_path, "show", str(job["id"]))
    assert code == 0
    assert "ports open" in shown and "not applicable on local" in shown
