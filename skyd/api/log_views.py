"""Which bytes `GET /v1/jobs/{id}/logs` sends: one node's output, or every node's, from files.

Where the lines are: a gang on this host writes one file per rank (job.log for rank 0 and
skyd's own lines, job.node-K.log for rank K); remote runners (ssh, clouds, slurm, kubernetes)
copy every rank into job.log, rank K ≥ 1's lines prefixed "(node K) ". Every runner answers
alike: rank 0 by default, `node=K` for rank K (prefix dropped), `all_nodes` for every rank
with rank K's lines prefixed "(node K) ".
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

READ_LIMIT = 1 << 16


def node_prefix(rank: int) -> bytes:
    return b"(node %d) " % rank


@dataclass(frozen=True)
class LogSource:
    """One file and what of it is sent: every line as is (`pick` None, `drop` empty, `add`
    empty), only the lines starting with `pick` (prefix dropped), every line but those
    starting with one of `drop`, or every line with `add` put before it."""

    path: Path
    pick: bytes | None = None
    drop: tuple[bytes, ...] = ()
    add: bytes = b""

    @property
    def raw(self) -> bool:
        return self.pick is None and not self.drop and not self.add

    def lines_of(self, whole: bytes) -> bytes:
        """What of `whole` (complete lines, or the rest of an ended log) is sent."""
        out: list[bytes] = []
        for line in whole.splitlines(keepends=True):
            if self.pick is not None:
                if line.startswith(self.pick):
                    out.append(line[len(self.pick) :])
            elif self.drop and line.startswith(self.drop):
                continue
            else:
                out.append(self.add + line)
        return b"".join(out)


def log_sources(
    log_path: Callable[[int], Path], nodes: int, node: int, all_nodes: bool, remote: bool
) -> list[LogSource]:
    """The files (in order) that make the asked view of a job of `nodes` ranks."""
    if remote:
        job_log = log_path(0)
        if all_nodes or nodes == 1:
            return [LogSource(job_log)]
        if node:
            return [LogSource(job_log, pick=node_prefix(node))]
        return [LogSource(job_log, drop=tuple(node_prefix(r) for r in range(1, nodes)))]
    if all_nodes:
        return [LogSource(log_path(0))] + [
            LogSource(log_path(r), add=node_prefix(r)) for r in range(1, nodes)
        ]
    return [LogSource(log_path(node))]


def read_from(path: Path, offset: int, limit: int = READ_LIMIT) -> bytes:
    try:
        with open(path, "rb") as fh:
            if offset >= os.fstat(fh.fileno()).st_size:
                return b""  # nothing new (lseek refuses offsets beyond what a file can be)
            fh.seek(offset)
            return fh.read(limit)
    except FileNotFoundError:
        return b""


async def stream_sources(
    sources: list[LogSource],
    offset: int,
    follow: bool,
    ended: bool,
    write: Callable[[bytes], Awaitable[None]],
    has_ended: Callable[[], bool],
    wait: Callable[[], Awaitable[None]],
) -> None:
    """Send `sources` one after the other. `offset` is a byte position in the first file;
    a later file is sent once the one before is drained and the job has ended (or when not
    following), so a following reader sees rank 0 live and the other ranks at the end."""
    for index, source in enumerate(sources):
        position = offset if index == 0 else 0
        while True:
            chunk = read_from(source.path, position)
            if not source.raw:
                # whole lines only: a partial last line waits for its end (or for the job's)
                chunk = chunk if ended else chunk[: chunk.rfind(b"\n") + 1]
            if chunk:
                position += len(chunk)
                sent = chunk if source.raw else source.lines_of(chunk)
                if sent:
                    await write(sent)
                continue
            if not follow or ended:
                break
            if has_ended():
                ended = True  # one more read drains what was written before the end
                continue
            await wait()
