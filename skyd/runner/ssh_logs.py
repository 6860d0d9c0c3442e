"""Copies new output of a node's remote job.log into the attempt's local job.log."""

from __future__ import annotations

import os
from pathlib import Path

from skyd.errors import ProviderError
from skyd.providers.ssh.connection import SshConnections
from skyd.runner.json_files import read_json, write_json
from skyd.runner.node_logs import node_output
from skyd.runner.ssh_node import SshNode
from skyd.runner.ssh_state import OFFSETS_FILE


async def pull_log(
    connections: SshConnections,
    attempt_dir: Path,
    log_path: Path,
    node: SshNode,
    *,
    final: bool,
    timeout_s: float,
    chunk_bytes: int,
) -> None:
    """Up to `chunk_bytes` past the saved offset; rank 0's as is, the others' whole lines
    prefixed with "(node N) "; the offset is saved after the bytes are on disk."""
    import asyncssh

    offsets: dict[str, int] = read_json(attempt_dir / OFFSETS_FILE) or {}
    offset = offsets.get(str(node.rank), 0)
    async with connections.sftp(node.target, timeout_s=timeout_s) as sftp:
        try:
            async with sftp.open(f"{node.remote_dir}/job.log", "rb") as fh:
                await fh.seek(offset)
                chunk: bytes = await fh.read(chunk_bytes)
        except asyncssh.SFTPNoSuchFile:
            return
        except (asyncssh.Error, OSError) as exc:
            # the connection dropped under the read (the VM went, or the link did): the
            # node did not answer this poll; its output is copied at a later one
            raise ProviderError(f"reading the job's log on {node.target.name}: {exc}") from exc
    taken, text = node_output(node.rank, chunk, final=final, full=len(chunk) >= chunk_bytes)
    if not taken:
        return
    with open(log_path, "ab") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    offsets[str(node.rank)] = offset + len(taken)
    write_json(attempt_dir / OFFSETS_FILE, offsets)
