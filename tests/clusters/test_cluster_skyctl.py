"""skyctl's cluster commands against the real cluster routes on a Unix socket (local provider)."""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from skyctl import cluster_commands as cc
from skyctl.client import ApiError, DaemonClient
from skyctl.messages import UsageError
from tests.clusters.cluster_server import ClusterServer

Handler = Callable[[argparse.Namespace, DaemonClient, io.StringIO, io.StringIO], int]
COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Handler]] = {
    "launch": (cc.launch_arguments, cc.launch),
    "exec": (cc.exec_arguments, cc.exec_),
    "clusters": (cc.clusters_arguments, cc.clusters),
    "stop": (cc.stop_arguments, cc.stop),
    "start": (cc.start_arguments, cc.start),
    "down": (cc.stop_arguments, cc.down),
    "autostop": (cc.autostop_arguments, cc.autostop),
}


class TerminalInput(io.StringIO):
    """Standard input as a person at a terminal would type it."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ClusterServer]:
    short = Path(tempfile.mkdtemp(prefix="skyctl-cl-"))  # socket paths must stay short
    try:
        with ClusterServer(tmp_path, short / "skyd.sock") as running:
            yield running
    finally:
        shutil.rmtree(short, ignore_errors=True)


def skyctl(server: ClusterServer, *argv: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="skyctl")
    subs = parser.add_subparsers(dest="command")
    for name, (arguments, handler) in COMMANDS.items():
        sub = subs.add_parser(name)
        arguments(sub)
        sub.set_defaults(handler=handler)
    args = parser.parse_args(argv)
    out, err = io.StringIO(), io.StringIO()
    with DaemonClient(str(server.socket_path)) as client:
        status = args.handler(args, client, out, err)
    return status, out.getvalue(), err.getvalue()


@pytest.fixture
def task_file(tmp_path: Path) -> Path:
    path = tmp_path / "dev.yaml"
    path.write_text(
        "name: dev-setup\nresources:\n  autostop: 20\nsetup: echo hi\nrun: echo hello\n"
    )
    return path


def test_launch_exec_list_autostop_and_down(
    server: ClusterServer, task_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    status, out, _ = skyctl(server, "launch", "-c", "dev", "-d", str(task_file))
    assert status == 0
    assert out.startswith("cluster dev is UP (local/local)\njob 1 queued on it")

    # one .yaml argument is a task file; anything else is a command
    status, out, _ = skyctl(server, "exec", "dev", str(task_file), "--json")
    assert status == 0 and json.loads(out)["name"] == "dev-setup"
    status, out, _ = skyctl(server, "exec", "-d", "dev", "--", "python", "-u", "x.py")
    assert status == 0 and out.strip() == "3"

    status, out, _ = skyctl(server, "clusters")
    header, row = out.splitlines()
    assert header.split() == [
        "NAME", "STATE", "OWNER", "WHERE", "RESOURCES", "$/HR", "AUTOSTOP", "JOBS", "SINCE",
    ]  # fmt: skip
    assert row.split()[:8] == ["dev", "UP", "root", "local/local", "localhost", "$0.00", "20m", "3"]

    status, out, _ = skyctl(server, "autostop", "dev", "-i", "45", "--down")
    assert status == 0 and out == "cluster dev is UP; autostop: 45m (down)\n"
    status, out, _ = skyctl(server, "autostop", "dev", "--cancel")
    assert out == "cluster dev is UP; autostop: off\n"

    with pytest.raises(ApiError, match="--force"):
        skyctl(server, "down", "dev", "--yes")
    # at a terminal, `down` asks first; "n" changes nothing
    monkeypatch.setattr(sys, "stdin", TerminalInput("n\n"))
    status, _, err = skyctl(server, "down", "dev", "--force")
    assert status == 1 and "Tear down cluster dev?" in err and "not confirmed" in err
    assert server.local is not None and len(server.local.held()) == 1
    monkeypatch.setattr(sys, "stdin", TerminalInput("y\n"))
    status, out, _ = skyctl(server, "down", "dev", "--force")
    assert status == 0 and out == "cluster dev is DOWN\n"
    assert server.local.held() == []
    status, out, _ = skyctl(server, "clusters", "--all", "--json")
    assert [c["state"] for c in json.loads(out)["clusters"]] == ["DOWN"]
    status, out, _ = skyctl(server, "clusters")
    assert out.startswith("no clusters")


def test_yes_skips_the_question_at_a_terminal(
    server: ClusterServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    status, _, _ = _launch_command(server, "-i", "7", "--down", "--json")
    assert status == 0
    status, out, _ = skyctl(server, "clusters", "--json")
    assert json.loads(out)["clusters"][0]["autostop"] == {"idle_minutes": 7, "down": True}
    monkeypatch.setattr(sys, "stdin", TerminalInput(""))  # nobody would answer
    status, out, err = skyctl(server, "down", "dev", "--force", "--yes")
    assert status == 0 and err == "" and out == "cluster dev is DOWN\n"


def _launch_command(server: ClusterServer, *options: str) -> tuple[int, str, str]:
    path = Path(tempfile.mkdtemp()) / "t.yaml"
    path.write_text("run: sleep 1\n")
    try:
        return skyctl(server, "launch", "-c", "dev", str(path), *options)
    finally:
        shutil.rmtree(path.parent)


def test_usage_errors_are_named(server: ClusterServer) -> None:
    with pytest.raises(UsageError, match="either -i MINUTES or --cancel"):
        skyctl(server, "autostop", "dev")
    with pytest.raises(UsageError, match="not with --cancel"):
        skyctl(server, "autostop", "dev", "--cancel", "--down")
    with pytest.raises(UsageError, match="-- and a command"):
        skyctl(server, "exec", "dev")
    with pytest.raises(UsageError, match="give a task file"):
        skyctl(server, "launch", "-c", "dev")
    with pytest.raises(SystemExit):
        skyctl(server, "autostop", "dev", "-i", "-5")
    with pytest.raises(UsageError, match="--down goes with -i"):
        skyctl(server, "launch", "-c", "dev", "--down", "-")
    with pytest.raises(ApiError, match="no cluster named 'dev'"):
        skyctl(server, "stop", "dev", "--yes")
    assert os.path.exists(server.socket_path)


def test_launch_takes_a_task_with_only_setup_and_overrides(
    server: ClusterServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    task = tmp_path / "setup_only.yaml"
    task.write_text("name: env-only\nenvs:\n  TOKEN:\nsetup: echo installing\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ApiError, match="--env TOKEN=VALUE"):
        skyctl(server, "launch", "-c", "box", "-d", "setup_only.yaml")
    status, out, _ = skyctl(
        server, "launch", "-c", "box", "-d", "setup_only.yaml", "--env", "TOKEN=t"
    )
    assert status == 0 and out.startswith("cluster box is UP")
