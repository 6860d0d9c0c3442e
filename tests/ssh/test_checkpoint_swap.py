"""The swap that puts a pulled checkpoint in place never leaves the local path missing or
half made: a reader looking at every step of real pulls (from a real OpenSSH server) sees
the old copy or the new one, whole; a reader holding a version keeps it across a swap; and
a daemon killed at any step of a swap leaves, after `recover`, one whole copy and nothing
else beside it."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from skyd.providers.ssh import SshConnections
from skyd.providers.ssh.connection import SshTarget
from skyd.runner import checkpoint_pull
from tests.ssh.test_checkpoint_pull import (
    LAID_OUT,
    MB,
    T0,
    conns,
    contents,
    left_beside,
    pull,
    target,
    write,
)
from tests.ssh.test_ssh_openssh import openssh  # noqa: F401  (the real sshd fixture)

__all__ = ["conns", "target"]  # fixtures, used by name

# the filesystem steps a swap is made of (and a pull's staging around it)
STEPS = ("rename", "replace", "symlink", "unlink", "rmdir", "mkdir")


class Killed(Exception):
    pass


def on_every_step(monkeypatch: pytest.MonkeyPatch, hook: Callable[[str], None]) -> None:
    """Call `hook(step)` before and after each filesystem step (and the directory
    exchange, a libc call), in whatever thread the step runs."""

    def wrapped(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def step(*args: Any, **kwargs: Any) -> Any:
            hook(f"before {name}")
            done = real(*args, **kwargs)
            hook(f"after {name}")
            return done

        return step

    for name in STEPS:
        monkeypatch.setattr(os, name, wrapped(name, getattr(os, name)))
    monkeypatch.setattr(shutil, "rmtree", wrapped("rmtree", shutil.rmtree))
    exchange = getattr(checkpoint_pull, "_replace_directory", None)
    if exchange is not None:
        monkeypatch.setattr(checkpoint_pull, "_replace_directory", wrapped("exchange", exchange))


async def test_a_reader_never_finds_the_checkpoint_missing_or_half_made(
    tmp_path: Path, conns: SshConnections, target: SshTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    remote, local = tmp_path / "node" / "checkpoints", tmp_path / "home" / "checkpoints"
    local.mkdir(parents=True)  # a plain directory, as the scheduler makes it for each job
    (local / "step").write_bytes(b"0")
    copies = [contents(local)]
    seen: list[int] = []

    def reader(step: str) -> None:
        assert local.is_dir(), f"{step}: the checkpoint is missing"
        now = contents(local)
        assert now in copies[-2:], f"{step}: neither the old copy nor the new one: {now}"
        seen.append(copies.index(now))

    write(remote / "ckpt-a.pt", MB, T0)
    write(remote / "step", 1, T0)
    for version in range(1, 4):  # over the plain directory, then over a link, twice
        write(remote / "step", 1, T0 + version)
        if version == 3:
            (remote / "ckpt-a.pt").unlink()
        expected = contents(remote)
        copies.append(expected)
        with monkeypatch.context() as patch:
            on_every_step(patch, reader)
            await pull(conns, target, remote, local)
        assert contents(local) == expected
        assert left_beside(local) == LAID_OUT
    # the reader looked at every step: each swap showed the old copy, then the new one
    assert seen == sorted(seen) and set(seen) == {0, 1, 2, 3}, seen
    assert len(seen) > 40


async def test_a_version_being_read_is_kept_across_a_swap(
    tmp_path: Path, conns: SshConnections, target: SshTarget
) -> None:
    remote, local = tmp_path / "node" / "checkpoints", tmp_path / "home" / "checkpoints"
    first = write(remote / "ckpt-a.pt", MB, T0)
    await pull(conns, target, remote, local)
    with checkpoint_pull.reading(local) as version:
        second = write(remote / "ckpt-a.pt", MB, T0 + 1)
        await pull(conns, target, remote, local)
        checkpoint_pull.recover(local)  # a resume's recover does not take it either
        assert contents(version) == {"ckpt-a.pt": first}  # whole while it is read
        assert contents(local) == {"ckpt-a.pt": second}
    write(remote / "ckpt-b.pt", 10, T0 + 2)
    await pull(conns, target, remote, local)  # the next swap removes it
    assert not version.exists() and left_beside(local) == LAID_OUT


def staged_swap(local: Path, step: str) -> None:
    """Swap a new copy ({"step": "8"}) over `local`, as a pull does once its staging is
    made."""
    staging = checkpoint_pull.staging_path(local)
    staging.mkdir()
    (staging / "step").write_text(step)
    remote = {"step": checkpoint_pull.Entry("f", f"1 {T0}.0")}
    checkpoint_pull.swap(local, staging, remote)


def count_steps(tmp_path: Path, linked: bool) -> int:
    local = tmp_path / "count" / "checkpoints"
    local.mkdir(parents=True)
    (local / "step").write_text("7")
    if linked:
        staged_swap(local, "7")
    steps: list[str] = []
    with pytest.MonkeyPatch.context() as patch:
        on_every_step(patch, steps.append)
        staged_swap(local, "8")
    return len(steps)


@pytest.mark.parametrize("linked", [False, True], ids=["over-a-directory", "over-a-link"])
def test_a_daemon_killed_at_any_step_of_a_swap_keeps_one_whole_copy(
    tmp_path: Path, linked: bool
) -> None:
    total = count_steps(tmp_path, linked)
    assert total > 10
    for kill_at in range(total):
        local = tmp_path / str(kill_at) / "checkpoints"
        local.mkdir(parents=True)
        (local / "step").write_text("7")
        if linked:
            staged_swap(local, "7")
        steps: list[str] = []

        def die(step: str, steps: list[str] = steps, kill_at: int = kill_at) -> None:
            steps.append(step)
            if len(steps) > kill_at:
                raise Killed(step)

        with pytest.MonkeyPatch.context() as patch, pytest.raises(Killed):
            on_every_step(patch, die)
            staged_swap(local, "8")
        checkpoint_pull.recover(local)
        assert contents(local) in ({"step": b"7"}, {"step": b"8"}), steps[-1]
        beside = set(left_beside(local) if local.is_symlink() else local.parent.iterdir())
        # the copy (and the version it links to), its lock and manifest: nothing else
        assert beside <= {*LAID_OUT, *(local.parent / n for n in LAID_OUT)}, (steps[-1], beside)
