"""The cluster API over a real Unix socket with the real local provider, as root and nobody."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.clusters.cluster_server import ClusterServer, request, request_as

NOBODY = 65534
TASK = "name: notebook\nresources:\n  autostop: 30\nsetup: echo setting up\nrun: echo hello\n"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as a second user")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ClusterServer]:
    # the other uid must reach the socket: a directory it can traverse
    public = Path(tempfile.mkdtemp(prefix="skyd-clusters-"))
    public.chmod(0o755)
    try:
        with ClusterServer(tmp_path, public / "skyd.sock") as running:
            yield running
    finally:
        shutil.rmtree(public, ignore_errors=True)


def launch(server: ClusterServer, name: str = "dev") -> dict[str, object]:
    status, body = request(
        server.socket_path,
        "POST",
        "/v1/clusters",
        {"name": name, "task_yaml": TASK, "base_dir": "/tmp", "source": "nb.yaml"},
    )
    assert status == 201, body
    assert isinstance(body, dict)
    return body


def test_launch_list_exec_show_and_down_on_the_local_provider(server: ClusterServer) -> None:
    sock = server.socket_path
    launched = launch(server)
    cluster = launched["cluster"]
    assert isinstance(cluster, dict)
    assert cluster["state"] == "UP" and cluster["provider"] == "local"
    assert cluster["autostop"] == {"idle_minutes": 30, "down": False}
    assert server.local is not None and server.local.held() == cluster["instances"]
    first = launched["job"]
    assert isinstance(first, dict) and first["state"] == "PENDING" and first["name"] == "notebook"

    status, job = request(
        sock, "POST", "/v1/clusters/dev/exec", {"command": ["nvidia-smi"], "base_dir": "/tmp"}
    )
    assert status == 201 and job["name"] == "nvidia-smi"
    status, listing = request(sock, "GET", "/v1/clusters")
    assert status == 200
    [row] = listing["clusters"]
    assert row["name"] == "dev" and row["active_jobs"] == [first["id"], job["id"]]
    status, shown = request(sock, "GET", "/v1/clusters/dev")
    assert [j["id"] for j in shown["jobs"]] == [first["id"], job["id"]]
    assert [e["kind"] for e in shown["events"]][:3] == [
        "cluster_created",
        "cluster_placed",
        "cluster_launched",
    ]

    status, refused = request(sock, "POST", "/v1/clusters/dev/down", {})
    assert status == 409 and refused["code"] == "conflict" and "--force" in refused["message"]
    status, gone = request(sock, "POST", "/v1/clusters/dev/down", {"force": True})
    assert status == 200 and gone["state"] == "DOWN" and gone["active_jobs"] == []
    assert server.local.held() == []
    assert request(sock, "GET", "/v1/clusters")[1] == {"clusters": []}
    status, history = request(sock, "GET", "/v1/clusters?all=1")
    assert [c["state"] for c in history["clusters"]] == ["DOWN"]
    launch(server)  # the name is free again


def test_others_may_look_but_not_touch(server: ClusterServer) -> None:
    sock = server.socket_path
    launch(server)
    assert request_as(NOBODY, sock, "GET", "/v1/clusters")[0] == 200
    for verb, body in [
        ("stop", {}),
        ("start", None),
        ("down", {"force": True}),
        ("autostop", {"idle_minutes": 1}),
        ("exec", {"command": ["rm", "-rf", "~"], "base_dir": "/tmp"}),
    ]:
        status, answer = request_as(NOBODY, sock, "POST", f"/v1/clusters/dev/{verb}", body)
        assert status == 403, (verb, answer)
        assert answer["code"] == "permission_denied" and "belongs to" in answer["message"]
    status, shown = request(sock, "GET", "/v1/clusters/dev")
    assert shown["state"] == "UP" and len(shown["jobs"]) == 1
    assert shown["autostop"] == {"idle_minutes": 30, "down": False}


def test_autostop_is_set_and_cancelled_and_bad_input_is_named(server: ClusterServer) -> None:
    sock = server.socket_path
    launch(server)
    target = "/v1/clusters/dev/autostop"
    status, cluster = request(sock, "POST", target, {"idle_minutes": 10, "down": True})
    assert status == 200 and cluster["autostop"] == {"idle_minutes": 10, "down": True}
    status, cluster = request(sock, "POST", target, {"cancel": True})
    assert status == 200 and cluster["autostop"] is None
    for body, words in [
        ({}, "either idle_minutes"),
        ({"idle_minutes": 5, "cancel": True}, "not both"),
        ({"idle_minutes": "soon"}, "idle_minutes"),
        ({"idle_minutes": 5, "when": "now"}, "when"),
    ]:
        status, answer = request(sock, "POST", target, body)
        assert status == 400 and words in answer["message"], (body, answer)
    status, answer = request(sock, "POST", target, {"idle_minutes": -3})
    assert status == 400 and answer["field"] == "idle_minutes"
    status, answer = request(sock, "POST", "/v1/clusters/nope/stop", {})
    assert status == 404 and "no cluster named 'nope'" in answer["message"]
    status, answer = request(
        sock, "POST", "/v1/clusters", {"name": "Bad Name", "command": ["x"], "base_dir": "/"}
    )
    assert status == 400 and answer["field"] == "name"


def test_stopping_a_local_cluster_says_it_cannot_and_what_to_do(server: ClusterServer) -> None:
    sock = server.socket_path
    launched = launch(server)
    job = launched["job"]
    assert isinstance(job, dict)
    status, answer = request(sock, "POST", "/v1/clusters/dev/stop", {})
    assert status == 409 and f"active jobs ({job['id']})" in answer["message"]
    status, answer = request(sock, "POST", "/v1/clusters/dev/stop", {"force": True})
    assert status == 409
    assert "cannot stop" in answer["message"] and "skyctl down dev" in answer["message"]
    assert request(sock, "GET", "/v1/clusters/dev")[1]["state"] == "UP"
