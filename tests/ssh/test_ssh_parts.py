"""Small pieces of the ssh provider and runner: paths, environment, ids, log slicing, the fake."""

from __future__ import annotations

import asyncio
import shlex
import sys
from pathlib import Path

import pytest

from skyd.errors import AuthError, ProviderError, TransientError
from skyd.model import Instance, InstanceState
from skyd.providers.ssh import SshConnections, SshTarget
from skyd.providers.ssh.claims import instance_id_for
from skyd.providers.ssh.layout import kill_command, normalize_root, run_dir
from skyd.runner.node_logs import whole_lines as _whole_lines
from skyd.runner.ssh_node import SshNode, cloud_nodes, mount_destination, node_env
from skyd.testing.ssh_server import FakeSshServer, SshFault


def _node(rank: int, ip: str) -> SshNode:
    target = SshTarget(f"h{rank}", ip, 22, "u", Path("/k"))
    return SshNode(rank, f"i{rank}", target, ip, f".skyd/runs/i{rank}")


def test_node_env_drops_local_paths_and_sets_ranks() -> None:
    nodes = [_node(1, "10.0.0.2"), _node(0, "10.0.0.1")]
    env = node_env(
        {"PATH": "/daemon/bin", "HOME": "/daemon", "SKYD_JOB_ID": "3", "X": "y"}, nodes[0], nodes
    )
    assert "PATH" not in env and "HOME" not in env
    assert env["SKYD_JOB_ID"] == "3" and env["X"] == "y"
    assert env["SKYD_NODE_RANK"] == env["SKYPILOT_NODE_RANK"] == "1"
    assert env["SKYD_NUM_NODES"] == env["SKYPILOT_NUM_NODES"] == "2"
    # rank order, one per line, as SkyPilot writes SKYPILOT_NODE_IPS
    assert env["SKYD_NODE_IPS"] == env["SKYPILOT_NODE_IPS"] == "10.0.0.1\n10.0.0.2"


def test_mount_destinations_and_remote_paths() -> None:
    assert mount_destination("~/data/x.csv", "r") == "data/x.csv"
    assert mount_destination("/scratch/x", "r") == "/scratch/x"
    assert mount_destination("cfg/a.yaml", "r") == "r/workdir/cfg/a.yaml"
    assert normalize_root("~/.skyd/") == ".skyd"
    assert run_dir("/srv/skyd", "i1") == "/srv/skyd/runs/i1"
    shim, directory = shlex.quote("it's/shim.py"), shlex.quote("it's")
    assert kill_command("python3", "it's", 2) == (
        f"if [ -f {shim} ]; then python3 -I -S {shim} kill {directory} 2 300; fi"
    )
    # after the grace, the write-back allowance (skyd's [local] cancel_write_back_seconds)
    assert kill_command("python3", "it's", 2, 45.5).endswith(f"kill {directory} 2 45.5; fi")


def test_instance_ids_are_file_safe_and_distinct() -> None:
    a = instance_id_for("box", "Job7/Attempt 1", 0)
    b = instance_id_for("box", "job7-attempt-1", 0)
    assert a.startswith("ssh-box-job7-attempt-1-") and a.endswith("-0")
    assert a != b  # same after sanitizing, told apart by the token's hash
    assert "/" not in a and " " not in a


@pytest.mark.parametrize(
    ("chunk", "final", "full", "taken"),
    [
        (b"a\nb\npart", False, False, b"a\nb\n"),
        (b"a\nb\npart", True, False, b"a\nb\npart"),
        (b"no newline yet", False, False, b""),
        (b"one enormous line", False, True, b"one enormous line"),
        (b"", True, False, b""),
    ],
)
def test_whole_lines(chunk: bytes, final: bool, full: bool, taken: bytes) -> None:
    assert _whole_lines(chunk, final=final, full=full) == taken


async def test_fake_faults_are_one_shot_and_power_off_ends_processes(tmp_path: Path) -> None:
    fake = FakeSshServer(tmp_path / "m", name="m")
    await fake.start()
    conns = SshConnections(connect_timeout_s=1.0)
    target = SshTarget(
        "m", fake.host, fake.port, fake.user, fake.client_key_path, fake.known_hosts_path
    )
    try:
        fake.add_fault(SshFault("exec", "uname", stdout="Plan9\n", exit_status=0))
        assert (await conns.run(target, "uname", timeout_s=5)).stdout == "Plan9\n"
        assert (await conns.run(target, "echo $HOME", timeout_s=5)).stdout.strip() == str(fake.home)
        fake.add_fault(SshFault("reject_auth"))
        with pytest.raises(AuthError):
            await conns.run(target, "true", timeout_s=5)
        assert (await conns.run(target, "true", timeout_s=5)).exit_status == 0
        await fake.go_down("hang")
        with pytest.raises(TransientError, match="did not answer"):
            await conns.run(target, "true", timeout_s=5)
        await fake.come_back()
        sleeper = f"{sys.executable} -c 'import time; time.sleep(60)'"
        start = f"cd {fake.home} && (setsid {sleeper} >/dev/null 2>&1 &)"
        await conns.run(target, start, timeout_s=5)
        for _ in range(100):
            if fake.process_groups():
                break
            await asyncio.sleep(0.02)
        assert fake.process_groups()
    finally:
        await conns.aclose()
        await fake.aclose()
    assert fake.process_groups() == set()


def test_cloud_nodes_log_in_publicly_and_rank_privately() -> None:
    def vm(iid: str, public: str | None, private: str | None) -> Instance:
        return Instance(
            iid,
            "aws",
            "aws",
            "us-east-1",
            "use1-az1",
            "p4d",
            False,
            InstanceState.RUNNING,
            public_ip=public,
            private_ip=private,
        )

    nodes = cloud_nodes(
        [vm("i-1", "3.3.3.3", "10.0.0.1"), vm("i-2", None, "10.0.0.2")],
        user="ubuntu",
        key_path=Path("/k"),
    )
    assert [(n.rank, n.target.host, n.ip, n.remote_dir) for n in nodes] == [
        (0, "3.3.3.3", "10.0.0.1", ".skyd/runs/i-1"),
        (1, "10.0.0.2", "10.0.0.2", ".skyd/runs/i-2"),
    ]
    with pytest.raises(ProviderError, match="i-3 has no IP address yet"):
        cloud_nodes([vm("i-3", None, None)], user="u", key_path=Path("/k"))


async def test_missing_key_or_unknown_host_key_is_an_auth_error(
    tmp_path: Path, box_a: FakeSshServer, connections: SshConnections
) -> None:
    base = SshTarget(
        "box-a", box_a.host, box_a.port, box_a.user, box_a.client_key_path, box_a.known_hosts_path
    )
    no_key = SshTarget(
        base.name, base.host, base.port, base.user, tmp_path / "nope", base.known_hosts
    )
    with pytest.raises(AuthError, match="cannot load the private key"):
        await connections.run(no_key, "true", timeout_s=5)
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    stranger = SshTarget(base.name, base.host, base.port, base.user, base.key_path, empty)
    with pytest.raises(AuthError, match="host key not listed"):
        await connections.run(stranger, "true", timeout_s=5)
    assert (await connections.run(base, "echo ok", timeout_s=5)).stdout == "ok\n"


async def test_a_broken_sftp_link_is_a_transient_error_and_reopens(tmp_path: Path) -> None:
    """SFTP's "connection not open" / "connection lost" under a session mean the cached
    connection is dead: a TransientError naming the host, and the next call connects
    afresh instead of reusing the dead link (asyncssh raises them as SFTPError subclasses,
    which otherwise pass through as the remote file's own errors)."""
    import asyncssh

    fake = FakeSshServer(tmp_path / "m", name="m")
    await fake.start()
    conns = SshConnections(connect_timeout_s=1.0)
    target = SshTarget(
        "m", fake.host, fake.port, fake.user, fake.client_key_path, fake.known_hosts_path
    )
    try:
        first = await conns.connection(target)
        with pytest.raises(TransientError, match="m"):
            async with conns.sftp(target, timeout_s=5):
                raise asyncssh.SFTPNoConnection("Connection not open")
        assert await conns.connection(target) is not first
        async with conns.sftp(target, timeout_s=5) as sftp:
            assert await sftp.exists(str(fake.home))
    finally:
        await conns.aclose()
        await fake.stop()
