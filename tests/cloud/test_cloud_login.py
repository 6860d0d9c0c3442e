"""The pieces of the cloud login path: trust on first use then a pinned host key, and the
tar stream's excludes (.skyignore over .gitignore, nested .gitignore files)."""

from __future__ import annotations

import dataclasses
import io
import tarfile
from pathlib import Path

import pytest

from skyd.providers.ssh.connection import HostKeyChangedError, SshConnections, SshTarget
from skyd.runner import sync
from skyd.testing.fake_vm import FakeVmHost, write_key_pair


async def test_first_contact_pins_the_key_and_a_changed_key_is_refused(tmp_path: Path) -> None:
    key = tmp_path / "id"
    public = write_key_pair(key)
    host = FakeVmHost()
    conns = SshConnections(connect_timeout_s=10)
    try:
        vm = host.boot("vm-a", {"ubuntu": [public]})
        host.finish_boot("vm-a")
        target = SshTarget("vm-a", vm.address, vm.port, "ubuntu", key)
        pinned = await conns.first_contact(target)
        assert pinned.split() == vm.host_public_key.split()[:2]
        ok = await conns.run(dataclasses.replace(target, host_key=pinned), "echo hi", timeout_s=10)
        assert ok.stdout == "hi\n"
        other = host.create("vm-b").host_public_key  # another machine's key
        await conns.aclose()
        with pytest.raises(HostKeyChangedError, match="not the one skyd launched"):
            forged = " ".join(other.split()[:2])
            await conns.run(dataclasses.replace(target, host_key=forged), "true", timeout_s=10)
    finally:
        await conns.aclose()
        host.close()


def _names(data: bytes) -> set[str]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name for m in tar.getmembers()}


def test_gitignore_excludes_apply_per_directory(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "build").mkdir(parents=True)
    (src / "build" / "a.o").write_text("x")
    (src / "pkg" / "cache").mkdir(parents=True)
    (src / "pkg" / "cache" / "c").write_text("x")
    (src / "pkg" / "mod.py").write_text("x")
    (src / "keep.log").write_text("x")
    (src / "drop.log").write_text("x")
    (src / ".gitignore").write_text("build/\n*.log\n!keep.log\n")
    (src / "pkg" / ".gitignore").write_text("cache/\n")
    names = _names(sync.pack(src, "workdir"))
    assert names == {
        "workdir",
        "workdir/.gitignore",
        "workdir/keep.log",
        "workdir/pkg",
        "workdir/pkg/.gitignore",
        "workdir/pkg/mod.py",
    }


def test_skyignore_replaces_gitignore(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "build").mkdir(parents=True)
    (src / "build" / "a.o").write_text("x")
    (src / "data.bin").write_text("x")
    (src / ".gitignore").write_text("build/\n")
    (src / ".skyignore").write_text("*.bin\n")
    names = _names(sync.pack(src, "w"))
    assert "w/build/a.o" in names and "w/data.bin" not in names
