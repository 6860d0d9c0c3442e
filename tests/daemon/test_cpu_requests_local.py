"""`cpus: N` on this host is a request for N CPUs out of its slots, not an instance type of
exactly N vCPUs (tested through skyctl and a real daemon): two `cpus: 1` jobs share a
2-slot host at the same time, each pinned to a CPU of its own, and `optimize` says why no
cloud type was chosen."""

from __future__ import annotations

import json
import os
from pathlib import Path

from skyctl.client import DaemonClient
from skyd.testing.daemon import DaemonThread, settings_for_tests, wait_until
from tests.daemon_calls import run_skyctl, wait_ended


def test_two_one_cpu_jobs_share_a_two_slot_host_each_on_its_own_cpu(tmp_path: Path) -> None:
    settings = settings_for_tests(tmp_path)
    settings.local.slots = 2
    meet = tmp_path / "meet"
    meet.mkdir()
    # each job says it is here and waits (bounded) for the other: both succeed only if
    # they ran at the same time
    task = (
        "resources:\n  cpus: 1\n"
        "run: |\n"
        f"  touch {meet}/$SKYD_JOB_ID\n"
        f"  for i in $(seq 600); do [ $(ls {meet} | wc -l) -ge 2 ] && break; sleep 0.1; done\n"
        f"  [ $(ls {meet} | wc -l) -ge 2 ] || {{ echo alone; exit 3; }}\n"
        '  echo "nproc=$(nproc)"\n'
        "  grep Cpus_allowed_list /proc/self/status\n"
    )
    (tmp_path / "one.yaml").write_text(task)
    daemon = DaemonThread(settings).start()
    try:
        ids = []
        for _ in range(2):
            code, out, err = run_skyctl(
                daemon.socket_path, "submit", str(tmp_path / "one.yaml"), "--json"
            )
            assert code == 0, err
            ids.append(int(json.loads(out)["id"]))
        with DaemonClient(daemon.socket_path) as client:
            jobs = [wait_ended(client, i, timeout=90) for i in ids]
            logs = [b"".join(client.job_logs(i, follow=False)).decode() for i in ids]
        # both slots given back once the jobs ended
        wait_until(lambda: not list((settings.state_dir / "local-slots").glob("local-*")) or None)
    finally:
        assert daemon.stop() == 0
    assert [j["state"] for j in jobs] == ["SUCCEEDED", "SUCCEEDED"], (jobs, logs)
    assert all((j["placement"] or {})["provider"] == "local" for j in jobs)
    assert all("nproc=1" in log for log in logs), logs
    allowed = [
        next(line.split(":")[1].strip() for line in log.splitlines() if "Cpus_allowed" in line)
        for log in logs
    ]
    # slots 0 and 1 are CPUs 0 and 1 (modulo this host's count)
    assert sorted(allowed) == sorted({str(s % (os.cpu_count() or 1)) for s in (0, 1)}) or (
        (os.cpu_count() or 1) == 1 and allowed == ["0", "0"]
    ), allowed


def test_optimize_places_one_cpu_on_local_and_says_why_not_on_clouds(tmp_path: Path) -> None:
    daemon = DaemonThread(settings_for_tests(tmp_path)).start()
    try:
        (tmp_path / "t.yaml").write_text("resources:\n  cpus: 1\nrun: echo hi\n")
        text = run_skyctl(daemon.socket_path, "optimize", str(tmp_path / "t.yaml"))
        as_json = run_skyctl(daemon.socket_path, "optimize", str(tmp_path / "t.yaml"), "--json")
        (tmp_path / "exact.yaml").write_text("resources:\n  cloud: aws\n  cpus: 1\nrun: echo hi\n")
        pinned = run_skyctl(daemon.socket_path, "optimize", str(tmp_path / "exact.yaml"), "--json")
    finally:
        assert daemon.stop() == 0
    assert text[0] == 0 and as_json[0] == 0, (text, as_json)
    payload = json.loads(as_json[1])
    assert payload["chosen"]["cloud"] == "local"
    counts = payload["excluded_counts"]
    assert counts.get("resources_mismatch", 0) > 0, counts
    aws = next(c for c in payload["candidates"] if c["cloud"] == "aws")
    assert aws["excluded"] == "resources_mismatch"
    assert "exactly the cpus/memory asked" in aws["note"], aws
    assert f"Not chosen: {counts['resources_mismatch']} resources_mismatch" in text[1]
    assert "a cloud instance type must have exactly the amount asked" in text[1], text[1]
    # on a cloud it stays SkyPilot's exact type: no AWS type has exactly 1 vCPU
    assert pinned[0] != 0 and json.loads(pinned[1])["chosen"] is None, pinned


def test_optimize_says_what_the_tiers_become_where_the_task_would_run(tmp_path: Path) -> None:
    daemon = DaemonThread(settings_for_tests(tmp_path)).start()
    shown = {}
    try:
        for where in (
            "",
            "cloud: gcp\n  instance_type: g2-standard-32\n  ",
            "cloud: gcp\n  instance_type: n2-standard-8\n  ",
        ):
            tier = "network_tier: best" if "g2-" not in where else "network_tier: standard"
            (tmp_path / "t.yaml").write_text(
                f"resources:\n  {where}disk_tier: high\n  {tier}\nrun: echo hi\n"
            )
            text = run_skyctl(daemon.socket_path, "optimize", str(tmp_path / "t.yaml"))
            as_json = run_skyctl(daemon.socket_path, "optimize", str(tmp_path / "t.yaml"), "--json")
            assert text[0] == 0 or where, text  # gcp is not enabled here
            assert as_json[1], (text, as_json)
            shown[where or "local"] = (text[1], json.loads(as_json[1]))
    finally:
        assert daemon.stop() == 0
    local_text, local = shown["local"][0], shown["local"][1]["task"]
    assert local["network_tier"] == "best"
    # a lab pool keeps its own network: not left out, and said so
    assert local["network"].startswith("the cluster's own network"), local
    assert local["disk"].startswith("not applicable on local"), local
    assert "network_tier best there: the cluster's own network" in local_text, local_text
    gcp_text, gcp_json = next(v for k, v in shown.items() if "g2-standard-32" in k)
    gcp = gcp_json["task"]
    # gcp would be chosen with its provider enabled: its disk is mapped
    assert gcp["disk"] == "pd-ssd" and gcp["network"].startswith("standard"), gcp
    assert "disk_tier high there: pd-ssd" in gcp_text, gcp_text
    # n2-standard-8 has no Tier_1 networking (30+ vCPUs only): left out, with the reason
    small_text, small = next(v for k, v in shown.items() if "n2-standard-8" in k)
    assert small["chosen"] is None and "if_all_providers_enabled" not in small, small
    assert small["excluded_counts"] == {"no_faster_network": len(small["candidates"])}, small
    assert "no_faster_network (network_tier: best, and skyd cannot give" in small_text


def test_a_two_cpu_job_waits_for_both_slots_without_blocking_local(tmp_path: Path) -> None:
    settings = settings_for_tests(tmp_path)
    settings.local.slots = 2
    go = tmp_path / "go"
    hold = f"resources:\n  cpus: 1\nrun: while [ ! -e {go} ]; do sleep 0.05; done\n"
    (tmp_path / "hold.yaml").write_text(hold)
    (tmp_path / "two.yaml").write_text("resources:\n  cpus: 2\nrun: nproc\n")
    (tmp_path / "one.yaml").write_text("resources:\n  cpus: 1\nrun: echo small\n")
    daemon = DaemonThread(settings).start()

    def submit(name: str) -> int:
        code, out, err = run_skyctl(daemon.socket_path, "submit", str(tmp_path / name), "--json")
        assert code == 0, err
        return int(json.loads(out)["id"])

    try:
        with DaemonClient(daemon.socket_path) as client:
            holder = submit("hold.yaml")
            wait_until(lambda: client.get_job(holder)["state"] == "RUNNING" or None)
            two = submit("two.yaml")
            waiting = wait_until(
                lambda: [
                    e
                    for e in client.get_job(two)["events"]
                    if e["kind"] == "waiting" and "1 of 2 slots free" in str(e["reason"])
                ],
                error=lambda: client.get_job(two),
            )
            # local is not blocked by it: a 1-CPU job still starts in the free slot
            small = wait_ended(client, submit("one.yaml"), timeout=90)
            go.touch()
            done = wait_ended(client, two, timeout=90)
            log = b"".join(client.job_logs(two, follow=False)).decode()
            events = client.get_job(two)["events"]
    finally:
        assert daemon.stop() == 0
    assert waiting and small["state"] == "SUCCEEDED", small
    assert done["state"] == "SUCCEEDED" and "\n2\n" in f"\n{log}", (done, log)
    assert not [e for e in events if e.get("kind") == "launch_failed"], events
