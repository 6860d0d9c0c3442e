"""Copies new output of a node's remote job.log into the attempt's local job.log, and meters
the bytes it read (they left the node: a cloud bills them as egress).

Metering is batched: each node's reads since its last charge are kept beside its log offset
in OFFSETS_FILE as one range (first offset read, last offset read, bytes read), written in
the same atomic write as the offset, and `meter_logs` hands each range to the meter as one
transfer keyed by (attempt, node, range). A read repeated after a restart (the daemon died
between appending and saving the offset) was not recorded the first time, so it is charged
once; a range charged but not yet cleared when the daemon died (or whose report failed
after its charge) is reported again unchanged, under the same key, which the meter ignores.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from skyd.errors import ProviderError
from skyd.providers.ssh.connection import SshConnections
from skyd.runner.json_files import read_json, write_json
from skyd.runner.node_logs import node_output
from skyd.runner.pulls import CheckpointPull
from skyd.runner.ssh_node import SshNode
from skyd.runner.ssh_state import OFFSETS_FILE

# OFFSETS_FILE's entries of the reads not yet metered: each node's open range, {rank: [from,
# to, bytes]}, which new reads extend, and the ranges closed for the meter, [[rank, from, to,
# bytes], ...], which never change
UNMETERED_READS = "unmetered_reads"
CLOSED_READS = "closed_reads"


async def pull_log(
    connections: SshConnections,
    attempt_dir: Path,
    log_path: Path,
    node: SshNode,
    *,
    final: bool,
    timeout_s: float,
    chunk_bytes: int,
    metered: bool = False,
) -> int:
    """Up to `chunk_bytes` past the saved offset; rank 0's as is, the others' whole lines
    prefixed with "(node N) "; the offset is saved after the bytes are on disk, with the
    read added to the node's unmetered range when `metered`. Returns the remote log's
    offset the read reached."""
    import asyncssh

    rank = str(node.rank)
    offset = int((read_json(attempt_dir / OFFSETS_FILE) or {}).get(rank, 0))
    async with connections.sftp(node.target, timeout_s=timeout_s) as sftp:
        try:
            async with sftp.open(f"{node.remote_dir}/job.log", "rb") as fh:
                await fh.seek(offset)
                chunk: bytes = await fh.read(chunk_bytes)
        except asyncssh.SFTPNoSuchFile:
            return offset
        except (asyncssh.Error, OSError) as exc:
            # the connection dropped under the read (the VM went, or the link did): the
            # node did not answer this poll; its output is copied at a later one
            raise ProviderError(f"reading the job's log on {node.target.name}: {exc}") from exc
    # read again after the wait: other nodes' pulls of this attempt save the same file
    offsets: dict[str, Any] = read_json(attempt_dir / OFFSETS_FILE) or {}
    if not chunk or int(offsets.get(rank, 0)) != offset:
        return offset + len(chunk)  # nothing new, or a concurrent poll took this output
    taken, text = node_output(node.rank, chunk, final=final, full=len(chunk) >= chunk_bytes)
    if taken:
        with open(log_path, "ab") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        offsets[rank] = offset + len(taken)
    if metered:
        # every byte read crossed, taken or not (a partial line is read again later)
        reads: dict[str, list[int]] = offsets.setdefault(UNMETERED_READS, {})
        start, _, nbytes = reads.get(rank, [offset, offset, 0])
        reads[rank] = [start, offset + len(chunk), nbytes + len(chunk)]
    if taken or metered:
        write_json(attempt_dir / OFFSETS_FILE, offsets)
    return offset + len(chunk)


def meter_logs(
    attempt_dir: Path,
    nodes: Sequence[SshNode],
    provider: str | None,
    report: Callable[[CheckpointPull], bool],
) -> bool:
    """Hand each node's unmetered log reads to `report`, one transfer per node and range.
    The open ranges are closed first (saved with their keys fixed, new reads start new
    ranges), so a range whose report failed, though it may have been charged, is reported
    again as it was, never grown. Returns whether every range was taken."""
    path = attempt_dir / OFFSETS_FILE
    offsets: dict[str, Any] = read_json(path) or {}
    reads: dict[str, list[int]] = offsets.pop(UNMETERED_READS, None) or {}
    closed: list[list[int]] = offsets.get(CLOSED_READS) or []
    if reads:
        closed += [[int(rank), *span] for rank, span in sorted(reads.items())]
        offsets[CLOSED_READS] = closed
        write_json(path, offsets)
    if not closed:
        return True
    by_rank = {n.rank: n for n in nodes}
    left = []
    for rank, start, end, nbytes in closed:
        node = by_rank.get(rank)
        key = f"log:{attempt_dir}:{rank}:{start}-{end}"
        if node is not None and not report(
            CheckpointPull(attempt_dir, provider, node.instance_id, nbytes, key)
        ):
            left.append([rank, start, end, nbytes])
    offsets[CLOSED_READS] = left
    write_json(path, offsets)
    return not left
