"""Multi-node jobs as a gang on this host, through skyctl and a real daemon: N slots held
together, one process per rank with its own rank's environment and log, and one rank failing
fails the gang and kills the others."""

from __future__ import annotations

import json
from pathlib import Path

from skyctl.client import DaemonClient
from skyd.model import RunPhase
from skyd.runner.process import read_status
from skyd.runner.remote_procs import group_alive
from skyd.testing.daemon import DaemonThread, settings_for_tests, wait_until
from tests.daemon_calls import run_skyctl, wait_ended


def _submit(daemon: DaemonThread, tmp_path: Path, task: str) -> int:
    path = tmp_path / "gang.yaml"
    path.write_text(task)
    code, out, err = run_skyctl(daemon.socket_path, "submit", str(path), "--json")
    assert code == 0, err
    return int(json.loads(out)["id"])


def test_two_ranks_each_print_rank_size_and_ips(tmp_path: Path) -> None:
    settings = settings_for_tests(tmp_path)
    settings.local.slots = 2
    daemon = DaemonThread(settings).start()
    try:
        task = (
            "num_nodes: 2\n"
            "setup: echo setup-on-$SKYPILOT_NODE_RANK\n"
            "run: |\n"
            '  echo "rank=$SKYPILOT_NODE_RANK n=$SKYPILOT_NUM_NODES '
            'ips=$(echo "$SKYPILOT_NODE_IPS" | paste -sd,) skyd=$SKYD_NODE_RANK/$SKYD_NUM_NODES"\n'
        )
        job_id = _submit(daemon, tmp_path, task)
        with DaemonClient(daemon.socket_path) as client:
            job = wait_ended(client, job_id)
        assert job["state"] == "SUCCEEDED", job
        head = run_skyctl(daemon.socket_path, "logs", str(job_id))
        other = run_skyctl(daemon.socket_path, "logs", str(job_id), "--node", "1")
        beyond = run_skyctl(daemon.socket_path, "logs", str(job_id), "--node", "2")
        every = run_skyctl(daemon.socket_path, "logs", str(job_id), "--all-nodes")
        both = run_skyctl(daemon.socket_path, "logs", str(job_id), "--all-nodes", "--node", "1")
    finally:
        assert daemon.stop() == 0
    assert head[0] == 0 and other[0] == 0, (head, other)
    assert "rank=0 n=2 ips=127.0.0.1,127.0.0.1 skyd=0/2" in head[1], head[1]
    assert "rank=1" not in head[1] and "setup-on-0" in head[1]
    assert "rank=1 n=2 ips=127.0.0.1,127.0.0.1 skyd=1/2" in other[1], other[1]
    assert "setup-on-1" in other[1] and "rank=0" not in other[1]
    # every rank, as the remote runners show them: rank 1's lines prefixed "(node 1) "
    assert every[0] == 0 and "rank=0 n=2" in every[1], every
    assert "(node 1) rank=1 n=2 ips=127.0.0.1,127.0.0.1 skyd=1/2" in every[1], every[1]
    assert both[0] == 2 and "--all-nodes" in both[2], both
    # a rank the job does not have: refused, naming the field and the ranks it has
    assert beyond[0] != 0 and "node" in beyond[2] and "ranks 0 to 1" in beyond[2], beyond
    # both slots were held together and are given back
    instances = [e for e in job["events"] if "launched" in str(e.get("reason"))]
    assert instances and "local-skyd-" in str(instances[0]), instances


def test_one_rank_failing_fails_the_gang_and_kills_the_others(tmp_path: Path) -> None:
    settings = settings_for_tests(tmp_path)
    settings.local.slots = 3
    daemon = DaemonThread(settings).start()
    try:
        task = (
            "num_nodes: 3\n"
            "run: |\n"
            '  if [ "$SKYPILOT_NODE_RANK" = 1 ]; then echo rank1-fails; exit 1; fi\n'
            "  echo waiting-$SKYPILOT_NODE_RANK; sleep 120\n"
        )
        job_id = _submit(daemon, tmp_path, task)
        with DaemonClient(daemon.socket_path) as client:
            job = wait_ended(client, job_id)
            slots = list((settings.state_dir / "local-slots").glob("*.json"))
    finally:
        assert daemon.stop() == 0
    assert job["state"] == "FAILED", job
    assert "node 1: run exited with code 1" in str(job["events"]), job
    attempt = settings.jobs_dir / str(job_id) / "attempt-1"
    for rank_dir in (attempt, attempt / "node-2"):
        # killed (SIGTERM recorded; "lost" if it came before the shim could record it),
        # and nothing of the rank's process group is left
        status = read_status(rank_dir)
        assert status.phase in (RunPhase.KILLED, RunPhase.LOST), (rank_dir, status)
        assert not group_alive(int((rank_dir / "shim.pid").read_text())), rank_dir
    failed = json.loads((attempt / "node-1" / "status.json").read_text())
    assert failed["phase"] == "done" and failed["run_exit"] == 1
    assert slots == [], slots


def test_gangs_no_provider_can_hold_are_refused_at_submit(tmp_path: Path) -> None:
    settings = settings_for_tests(tmp_path)
    settings.local.slots = 2
    daemon = DaemonThread(settings).start()
    results = {}
    try:
        for value in ("3", "0", "-1", "1.5", "two", "1000000000"):
            path = tmp_path / "gang.yaml"
            path.write_text(f"num_nodes: {value}\nrun: echo hi\n")
            results[value] = run_skyctl(daemon.socket_path, "submit", str(path))
        optimize = run_skyctl(daemon.socket_path, "optimize", str(path), "--json")
        path.write_text("num_nodes: 3\nrun: echo hi\n")
        explained = json.loads(run_skyctl(daemon.socket_path, "optimize", str(path), "--json")[1])
        with DaemonClient(daemon.socket_path) as client:
            listed = client.request("GET", "/v1/jobs")
    finally:
        assert daemon.stop() == 0
    code, _out, err = results["3"]
    assert code != 0 and "num_nodes: 3" in err and "at most 2, on local (localhost)" in err, err
    for value in ("0", "-1", "1.5", "two", "1000000000"):
        code, _out, err = results[value]
        assert code != 0 and "num_nodes: " in err and value in err, (value, err)
    assert optimize[0] != 0
    local = [c for c in explained["candidates"] if c["cloud"] == "local"]
    assert [c["excluded"] for c in local] == ["too_few_nodes"], local
    assert isinstance(listed, dict) and listed["jobs"] == [], listed  # nothing was stored


def test_cancelling_a_gang_stops_every_rank(tmp_path: Path) -> None:
    settings = settings_for_tests(tmp_path)
    settings.local.slots = 2
    daemon = DaemonThread(settings).start()
    try:
        job_id = _submit(
            daemon, tmp_path, "num_nodes: 2\nrun: echo up-$SKYPILOT_NODE_RANK; sleep 120\n"
        )
        with DaemonClient(daemon.socket_path) as client:
            wait_until(lambda: client.get_job(job_id)["state"] == "RUNNING", timeout=60)
            logs = settings.jobs_dir / str(job_id)
            wait_until(
                lambda: "up-1" in (logs / "job.node-1.log").read_text(errors="replace"),
                timeout=30,
            )
            code, _out, err = run_skyctl(daemon.socket_path, "cancel", str(job_id))
            job = wait_ended(client, job_id)
            slots = list((settings.state_dir / "local-slots").glob("*.json"))
    finally:
        assert daemon.stop() == 0
    assert code == 0, err
    assert job["state"] == "CANCELLED", job
    attempt = settings.jobs_dir / str(job_id) / "attempt-1"
    for rank_dir in (attempt, attempt / "node-1"):
        assert not group_alive(int((rank_dir / "shim.pid").read_text())), rank_dir
    assert slots == []
