"""How a node's new output joins the attempt's log: rank 0 as is, others as "(node N)" lines."""

from __future__ import annotations


def whole_lines(chunk: bytes, *, final: bool, full: bool) -> bytes:
    """The prefix of `chunk` made of complete lines: a partial last line waits for the rest,
    unless the node has ended (nothing more will come) or one line fills a whole chunk."""
    if final and not full:
        return chunk
    end = chunk.rfind(b"\n")
    if end < 0:
        return chunk if full else b""
    return chunk[: end + 1]


def node_output(rank: int, chunk: bytes, *, final: bool, full: bool = False) -> tuple[bytes, bytes]:
    """What of `chunk` (rank's output past its offset) is taken now, and the text appended
    for it; `full` says the chunk is as long as one read may be."""
    if rank == 0:
        return chunk, chunk
    taken = whole_lines(chunk, final=final, full=full)
    return taken, b"".join(b"(node %d) %s\n" % (rank, line) for line in taken.splitlines())
