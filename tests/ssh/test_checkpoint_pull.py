"""Checkpoint pulls against a real OpenSSH server on loopback: only new or changed files cross
(and are counted), deleted ones disappear, memory stays bounded whatever the checkpoint's size
(both ways), and a pull cut short leaves the previous complete copy; and (on the in-process
fake, as the egress crash tests) a pull cut short after its bytes crossed is still metered."""

from __future__ import annotations

import os
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from skyd.errors import ProviderError
from skyd.providers.ssh import SshConnections
from skyd.providers.ssh import streams as streams_module
from skyd.providers.ssh.connection import SshTarget
from skyd.runner import checkpoint_pull
from skyd.runner.pulls import CheckpointPull
from skyd.runner.ssh import SshRunner
from skyd.runner.ssh_node import SshNode
from skyd.runner.ssh_state import CHECKPOINT_FILE, UNMETERED_FILE
from skyd.runner.ssh_upload import send_tree
from skyd.testing.ssh_server import FakeSshServer
from tests.ssh.ssh_helpers import ProviderFactory
from tests.ssh.test_egress_crash import SIZE, ended_attempt
from tests.ssh.test_ssh_openssh import openssh  # noqa: F401  (the real sshd fixture)

MB = 1_000_000
TAR_SLACK = 20_480  # headers, end marker, padding to tar's 10240-byte records
T0 = 1_780_000_000  # mtimes are set, not read from a clock
BUDGET = 16 * MB  # what a pull or an upload may hold of a 64 MB checkpoint


@pytest.fixture
def target(openssh: dict[str, str]) -> SshTarget:  # noqa: F811
    return SshTarget(
        "openssh",
        "127.0.0.1",
        int(openssh["SKYD_SSHD_PORT"]),
        openssh["SKYD_SSHD_USER"],
        Path(openssh["SKYD_SSHD_KEY"]),
        Path(openssh["SKYD_SSHD_KNOWN_HOSTS"]),
    )


@pytest.fixture
async def conns() -> AsyncIterator[SshConnections]:
    made = SshConnections(connect_timeout_s=5.0)
    yield made
    await made.aclose()


def write(path: Path, nbytes: int, mtime: int) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = os.urandom(nbytes)
    path.write_bytes(data)
    os.utime(path, (mtime, mtime))
    return data


async def pull(conns: SshConnections, target: SshTarget, remote: Path, local: Path) -> int:
    staged: list[int] = []
    moved = await checkpoint_pull.pull(
        conns, target, str(remote), local, timeout_s=30.0, staged=staged.append
    )
    assert staged == ([moved] if moved else [])  # told before the swap, once
    return moved


# beside a local copy: its lock, its manifest, the version directory it links to, the link
LAID_OUT = [".checkpoints.lock", ".checkpoints.pulled.json", "VERSION", "checkpoints"]


def left_beside(local: Path) -> list[str]:
    """What is in the local copy's directory, the version `local` links to named VERSION."""
    assert local.is_symlink()
    version = checkpoint_pull.current(local)
    return sorted("VERSION" if p == version else p.name for p in local.parent.iterdir())


def contents(directory: Path) -> dict[str, bytes]:
    return {
        p.relative_to(directory).as_posix(): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


async def test_only_new_and_changed_files_cross_and_deleted_ones_disappear(
    tmp_path: Path, conns: SshConnections, target: SshTarget
) -> None:
    remote, local = tmp_path / "node" / "checkpoints", tmp_path / "home" / "checkpoints"
    a = write(remote / "ckpt-a.pt", 3 * MB, T0)
    first = await pull(conns, target, remote, local)
    assert 3 * MB < first < 3 * MB + TAR_SLACK
    assert contents(local) == {"ckpt-a.pt": a}

    b = write(remote / "sub" / "ckpt-b.pt", MB, T0 + 10)
    second = await pull(conns, target, remote, local)
    assert MB < second < MB + TAR_SLACK  # ckpt-a did not cross again
    assert contents(local) == {"ckpt-a.pt": a, "sub/ckpt-b.pt": b}

    (remote / "ckpt-a.pt").unlink()
    assert await pull(conns, target, remote, local) == 0  # nothing to move, one to drop
    assert contents(local) == {"sub/ckpt-b.pt": b}

    b2 = write(remote / "sub" / "ckpt-b.pt", MB, T0 + 20)  # same size, rewritten
    assert MB < await pull(conns, target, remote, local) < MB + TAR_SLACK
    assert contents(local) == {"sub/ckpt-b.pt": b2}

    # a local copy touched since the pull is not trusted: it is fetched again
    (local / "sub" / "ckpt-b.pt").write_bytes(b"x" * MB)
    assert MB < await pull(conns, target, remote, local) < MB + TAR_SLACK
    assert contents(local) == {"sub/ckpt-b.pt": b2}
    assert left_beside(local) == LAID_OUT  # no staging or old copy left behind


async def test_a_pull_holds_a_bounded_buffer_whatever_the_checkpoint_size(
    tmp_path: Path, conns: SshConnections, target: SshTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    remote, local = tmp_path / "node" / "checkpoints", tmp_path / "home" / "checkpoints"
    size = 64 * MB
    write(remote / "model.pt", size, T0)
    conn = await conns.connection(target)
    reads: list[int] = []
    real_create = conn.create_process

    async def spied_create(*args: Any, **kwargs: Any) -> Any:
        process = await real_create(*args, **kwargs)
        real_read = process.stdout.read

        async def read(n: int = -1) -> bytes:
            assert 0 < n <= streams_module.CHUNK  # never "everything at once"
            data: bytes = await real_read(n)
            reads.append(len(data))
            return data

        monkeypatch.setattr(process.stdout, "read", read)
        return process

    monkeypatch.setattr(conn, "create_process", spied_create)
    tracemalloc.start()
    try:
        moved = await pull(conns, target, remote, local)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sum(reads) == moved and size < moved < size + TAR_SLACK
    assert max(reads) <= streams_module.CHUNK and len(reads) > size // streams_module.CHUNK
    print(f"pull of {moved} bytes: peak traced memory {peak} bytes")
    # a few windows and chunks (asyncssh's, the pipe's, tarfile's), whatever the size: ~9 MB
    # for 20, 64 or 100 MB
    assert peak < BUDGET
    assert (local / "model.pt").stat().st_size == size


async def test_the_resume_upload_streams_from_disk(
    tmp_path: Path, conns: SshConnections, target: SshTarget
) -> None:
    local = tmp_path / "home" / "checkpoints"
    size = 64 * MB
    data = write(local / "model.pt", size, T0)
    node = SshNode(0, "vm-1", target, "127.0.0.1", str(tmp_path / "node"))
    tracemalloc.start()
    try:
        await send_tree(conns, node, local, f"{node.remote_dir}/checkpoints", False, 30.0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    print(f"upload of {size} bytes: peak traced memory {peak} bytes")
    assert peak < BUDGET  # ~11 MB for 64 or 100 MB
    assert (tmp_path / "node" / "checkpoints" / "model.pt").read_bytes() == data


async def test_a_pull_cut_short_leaves_the_previous_complete_copy(
    tmp_path: Path, conns: SshConnections, target: SshTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    remote, local = tmp_path / "node" / "checkpoints", tmp_path / "home" / "checkpoints"
    a = write(remote / "ckpt-a.pt", MB, T0)
    await pull(conns, target, remote, local)
    write(remote / "ckpt-a.pt", MB, T0 + 10)  # both change: the pull will be a mix if torn
    write(remote / "ckpt-b.pt", 8 * MB, T0 + 10)
    conn = await conns.connection(target)
    real_create = conn.create_process
    dropped_after: list[int] = []

    async def dropping_create(*args: Any, **kwargs: Any) -> Any:
        process = await real_create(*args, **kwargs)
        real_read = process.stdout.read
        got = 0

        async def read(n: int = -1) -> bytes:
            nonlocal got
            data: bytes = await real_read(n)
            got += len(data)
            if got > 2 * MB and not dropped_after:
                dropped_after.append(got)
                conn.abort()  # the link drops, some of the stream already home
            return data

        monkeypatch.setattr(process.stdout, "read", read)
        return process

    monkeypatch.setattr(conn, "create_process", dropping_create)
    with pytest.raises(ProviderError):
        await pull(conns, target, remote, local)
    assert dropped_after and dropped_after[0] < 9 * MB
    assert contents(local) == {"ckpt-a.pt": a}  # the previous copy, whole, nothing new
    assert left_beside(local) == LAID_OUT
    # the next pull (a new connection) completes it
    assert 9 * MB < await pull(conns, target, remote, local) < 9 * MB + TAR_SLACK
    assert contents(local) == contents(remote)


def test_a_daemon_killed_between_the_two_renames_finds_its_previous_copy(
    tmp_path: Path,
) -> None:
    local = tmp_path / "checkpoints"
    local.mkdir()
    (local / "step").write_text("7")
    # killed after the first rename of a swap, before the second
    local.rename(checkpoint_pull.old_path(local))
    staging = checkpoint_pull.staging_path(local)
    staging.mkdir()
    (staging / "step").write_text("8")
    checkpoint_pull.recover(local)
    assert contents(local) == {"step": b"7"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoints"]


async def test_a_pull_cut_short_before_its_swap_is_reported_after_a_restart(
    tmp_path: Path,
    box_a: FakeSshServer,
    make_provider: ProviderFactory,
    runner: SshRunner,
    connections: SshConnections,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Its bytes crossed before the daemon died: the restarted one reports them (then pulls
    again under the same key, which the meter charges once) instead of forgetting them."""
    attempt, local, _job = await ended_attempt(tmp_path, box_a, make_provider, runner)
    told: list[CheckpointPull] = []

    class Killed(Exception):
        pass

    def die(*args: object) -> None:
        raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(checkpoint_pull, "swap", die)
        with pytest.raises(Killed):
            await SshRunner(connections, meter=told.append).pull_checkpoints(attempt)
    assert told == [] and not (local / "model.bin").exists()  # not swapped in, not metered

    restarted = SshRunner(connections, meter=told.append)
    assert await restarted.pull_checkpoints(attempt)
    assert (local / "model.bin").stat().st_size == SIZE
    assert len(told) == 2 and told[0].key == told[1].key and told[0].nbytes > SIZE
    assert (attempt / CHECKPOINT_FILE).exists() and not (attempt / UNMETERED_FILE).exists()
    assert not await restarted.pull_checkpoints(attempt)
    assert len(told) == 2
