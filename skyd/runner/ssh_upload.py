"""Puts an SSH attempt's files on a node: the shim, the workdir, file mounts, checkpoints."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from skyd.errors import ProviderError
from skyd.providers.ssh.connection import SshConnections
from skyd.providers.ssh.layout import SHIM_NAME
from skyd.providers.ssh.streams import StreamFailed, write_stream
from skyd.runner import (
    checkpoint_pull,
    fuse_meter,
    remote_buckets,
    remote_procs,
    remote_shim,
    sync,
)
from skyd.runner.process import RunCommand
from skyd.runner.ssh_node import SshNode, mount_destination

if TYPE_CHECKING:
    import asyncssh

# beside the shim on the node: remote_shim runs it by its own directory
BUCKETS_HELPER = "remote_buckets.py"
FUSE_METER = "fuse_meter.py"  # imported by remote_buckets.py from its own directory
PROCS_HELPER = "remote_procs.py"  # imported by the shim from its own directory


async def upload_all(
    connections: SshConnections,
    node: SshNode,
    command: RunCommand,
    launch: Mapping[str, Any],
    *,
    timeout_s: float,
) -> None:
    """Everything the node's shim needs, launch.json last (its presence means all is there)."""
    directory = node.remote_dir
    async with connections.sftp(node.target, timeout_s=timeout_s) as sftp:
        await sftp.makedirs(f"{directory}/workdir", exist_ok=True)
        await sftp.makedirs(f"{directory}/checkpoints", exist_ok=True)
        # the shim's helper first: a shim is never there without it
        await write_remote(sftp, f"{directory}/{PROCS_HELPER}", _source(remote_procs))
        await write_remote(sftp, f"{directory}/{SHIM_NAME}", _shim_source())
        if launch.get("storage_mounts"):
            await write_remote(sftp, f"{directory}/{BUCKETS_HELPER}", _buckets_source())
            await write_remote(sftp, f"{directory}/{FUSE_METER}", _meter_source())
    # trees go as one tar stream each (excludes from .skyignore / .gitignore applied)
    if command.workdir_source is not None:
        await send_tree(
            connections, node, command.workdir_source, f"{directory}/workdir", True, timeout_s
        )
    for dest, src in (command.file_mounts or {}).items():
        await send_tree(
            connections, node, Path(src), mount_destination(dest, directory), False, timeout_s
        )
    checkpoint = command.env.get("SKYD_CHECKPOINT_DIR")
    if checkpoint and node.rank == 0:
        # a daemon killed mid-swap of a pull left the last complete copy aside: put it back
        await asyncio.to_thread(checkpoint_pull.recover, Path(checkpoint))
    if checkpoint and node.rank == 0 and Path(checkpoint).is_dir():
        # what the last attempt saved (pulled back while it ran) is where it resumes from:
        # the version the path names now, kept whole while it is sent even if a pull swaps
        # a new one in meanwhile, and sent as a directory, not as the link to it
        local = Path(checkpoint)
        with checkpoint_pull.reading(local) as version:
            before = await asyncio.to_thread(checkpoint_pull.local_stats, version)
            remote = f"{directory}/checkpoints"
            await send_tree(connections, node, version, remote, False, timeout_s)
        await checkpoint_pull.seed(
            connections, node.target, remote, local, before, timeout_s=timeout_s
        )
    async with connections.sftp(node.target, timeout_s=timeout_s) as sftp:
        # last: a launch.json on the node means everything it names is there
        await write_remote(sftp, f"{directory}/launch.json", json.dumps(launch).encode())


async def send_tree(
    connections: SshConnections,
    node: SshNode,
    source: Path,
    dest: str,
    excludes: bool,
    timeout_s: float,
) -> None:
    """`source` (file or tree) lands at `dest` on the node, in one tar stream written from
    disk as it is sent (a checkpoint of any size costs the daemon a bounded buffer)."""
    parent, _, name = dest.rstrip("/").rpartition("/")
    try:
        code, err = await write_stream(
            connections,
            node.target,
            sync.unpack_command(parent),
            lambda out: sync.write_tar(out, source, name, excludes=excludes),
            timeout_s=timeout_s,
        )
    except StreamFailed as exc:  # a local source unreadable (the caller says which job)
        raise OSError(f"{source}: {exc}") from exc
    if code != 0:
        raise ProviderError(
            f"could not unpack {source} into {dest} on {node.target.name} (tar exited "
            f"{code}): {err.strip()[:300]}"
        )


def _shim_source() -> bytes:
    return Path(remote_shim.__file__).read_bytes()


def _buckets_source() -> bytes:
    return Path(remote_buckets.__file__).read_bytes()


def _source(module: ModuleType) -> bytes:
    return Path(str(module.__file__)).read_bytes()


def _meter_source() -> bytes:
    return Path(fuse_meter.__file__).read_bytes()


async def write_remote(sftp: asyncssh.SFTPClient, path: str, data: bytes) -> None:
    """Write a file only its owner can read (launch.json holds the task's env values),
    whole or not at all: written beside, then renamed over. A daemon killed mid-write used
    to leave a truncated shim.py, which a restarted daemon then ran: it printed nothing and
    the job failed with "the remote shim gave no answer"."""
    import asyncssh  # imported when SSH is in use (it is slow to import)

    partial = f"{path}.partial"
    async with sftp.open(partial, "wb", asyncssh.SFTPAttrs(permissions=0o600)) as fh:
        await fh.write(data)
    await sftp.chmod(partial, 0o600)  # an existing file keeps its mode on open
    await sftp.posix_rename(partial, path)


async def upload(sftp: asyncssh.SFTPClient, source: Path, dest: str) -> None:
    """Copy a local file or tree to `dest`, keeping modes; symlinks are recreated as links."""
    if not source.is_dir():
        parent = dest.rpartition("/")[0]
        if parent:
            await sftp.makedirs(parent, exist_ok=True)
        await sftp.put(str(source), dest, preserve=True)
        return
    await sftp.makedirs(dest, exist_ok=True)
    for root, dirs, files in os.walk(source):
        rel = Path(root).relative_to(source)
        remote_root = dest if str(rel) == "." else f"{dest}/{rel.as_posix()}"
        for name in list(dirs):
            local = Path(root) / name
            if local.is_symlink():
                dirs.remove(name)  # not followed: recreated as a link below
                await _link(sftp, local, f"{remote_root}/{name}")
            else:
                await sftp.makedirs(f"{remote_root}/{name}", exist_ok=True)
        for name in files:
            local = Path(root) / name
            if local.is_symlink():
                await _link(sftp, local, f"{remote_root}/{name}")
            else:
                await sftp.put(str(local), f"{remote_root}/{name}", preserve=True)


async def _link(sftp: asyncssh.SFTPClient, local: Path, remote: str) -> None:
    import asyncssh

    with contextlib.suppress(asyncssh.SFTPNoSuchFile):
        await sftp.remove(remote)
    await sftp.symlink(os.readlink(local), remote)
