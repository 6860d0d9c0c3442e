"""Remote commands whose stdout or stdin is a long byte stream (a checkpoint's tar), moved in
chunks between the SSH channel and a worker thread through an OS pipe, so the daemon holds
a chunk or two of it at a time, never the whole stream, whatever its size.

The worker (tarfile extracting or writing the stream) is blocking code, hence the thread;
the pipe is the bounded buffer between it and the event loop, and asyncssh's own flow
control (the channel window) stops the far side while the daemon reads no more. Time limits
apply to each step (a read, a write), not to the whole stream: a 30 GB checkpoint may take
long, a stalled one may not.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import IO, TYPE_CHECKING, TypeVar

from skyd.providers.ssh.connection import SshConnections, SshTarget, text_of, translate

if TYPE_CHECKING:
    import asyncssh

T = TypeVar("T")

# What one read of the channel (or of the pipe) may bring at most, and the channel's window
# (what the far side may send unasked). Reading a whole window at a time matters: asyncssh
# grants a new window as soon as it hands data on, not when the reader takes it, so a reader
# that took less than a window per read let its buffer grow without bound (a 50 MB pull held
# ~40 MB). 2 MiB is asyncssh's default window: ~20 MB/s at 100 ms round trips.
CHUNK = 2 * 1024 * 1024

# The workers' own threads: a transfer holds one for as long as it lasts (minutes for a big
# checkpoint), which must not starve the event loop's default executor that the rest of the
# daemon's blocking calls share.
_WORKERS = ThreadPoolExecutor(max_workers=64, thread_name_prefix="skyd-stream")


class StreamFailed(Exception):
    """The worker thread failed on the stream (a corrupt tar, a local file gone, a full disk)."""


async def read_stream(
    connections: SshConnections,
    target: SshTarget,
    command: str,
    consume: Callable[[IO[bytes]], T],
    *,
    timeout_s: float,
    stdin: bytes = b"",
    progress: Callable[[int], None] | None = None,
) -> tuple[int, T | None, int, str]:
    """Run `command` (fed `stdin`, a file list say) and hand its stdout, as it comes, to
    `consume(file)` in a thread. Returns (exit status, what `consume` returned — None when the
    command failed —, the bytes that came over the channel, stderr). `progress(total)` hears
    the bytes come so far after each read of the channel, so the bytes of a stream that fails
    midway are known too (they left the far side: a cloud bills them).

    A connection lost midway is a TransientError; `consume` failing is StreamFailed. Not
    retried: a stream half read must be read again whole."""
    import asyncssh

    loop = asyncio.get_running_loop()
    read_fd, write_fd = os.pipe()
    source = os.fdopen(read_fd, "rb")
    sink = os.fdopen(write_fd, "wb", buffering=0)
    transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, sink)
    pipe = asyncio.StreamWriter(transport, protocol, None, loop)
    worker = loop.run_in_executor(_WORKERS, _closing, consume, source)
    received = 0
    process: asyncssh.SSHClientProcess[bytes] | None = None
    try:
        conn = await connections.connection(target)
        process = proc = await _timed(
            conn.create_process(command, encoding=None, window=CHUNK), timeout_s
        )
        proc.stdin.write(stdin)
        proc.stdin.write_eof()
        while chunk := await _timed(proc.stdout.read(CHUNK), timeout_s):
            received += len(chunk)
            if progress is not None:
                progress(received)
            pipe.write(chunk)
            await _timed(pipe.drain(), timeout_s)  # the worker is behind: the pipe bounds it
        transport.close()  # the end of the stream, for the worker (once the pipe drained)
        done = await _timed(proc.wait(check=False), timeout_s)
    except (asyncssh.Error, OSError, EOFError, TimeoutError) as exc:
        # the worker stopped reading first (a broken pipe): its own error says why
        first = worker.done() or isinstance(exc, BrokenPipeError | ConnectionResetError)
        transport.abort()  # now, unflushed: the worker sees the stream end short of its end
        await _settle(worker)
        if first and worker.exception() is not None:
            raise StreamFailed(str(worker.exception())) from worker.exception()
        await connections.forget(target)
        raise translate(exc, target) from exc
    finally:
        if not transport.is_closing():  # cancelled midway
            transport.abort()
        if process is not None:
            await _close(process, timeout_s)
        await _settle(worker)
    code = done.exit_status if done.exit_status is not None else -1
    err = text_of(done.stderr)
    if code != 0:
        return code, None, received, err
    if worker.exception() is not None:
        raise StreamFailed(str(worker.exception())) from worker.exception()
    return code, worker.result(), received, err


async def write_stream(
    connections: SshConnections,
    target: SshTarget,
    command: str,
    produce: Callable[[IO[bytes]], None],
    *,
    timeout_s: float,
) -> tuple[int, str]:
    """Run `command` with its stdin fed, as it is made, by `produce(file)` in a thread (a tar
    written straight from disk). Returns (exit status, stderr); `produce` failing is
    StreamFailed (the command then saw a stream cut short, never the end of one)."""
    import asyncssh

    loop = asyncio.get_running_loop()
    read_fd, write_fd = os.pipe()
    sink = os.fdopen(write_fd, "wb")
    source = os.fdopen(read_fd, "rb", buffering=0)
    reader = asyncio.StreamReader(limit=CHUNK, loop=loop)
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader, loop=loop), source
    )
    worker = loop.run_in_executor(_WORKERS, _closing, produce, sink)
    process: asyncssh.SSHClientProcess[bytes] | None = None
    try:
        conn = await connections.connection(target)
        process = proc = await _timed(conn.create_process(command, encoding=None), timeout_s)
        while chunk := await _timed(reader.read(CHUNK), timeout_s):
            proc.stdin.write(chunk)
            await _timed(proc.stdin.drain(), timeout_s)  # the channel window bounds it
        await _settle(worker)
        proc.stdin.write_eof()
        done = await _timed(proc.wait(check=False), timeout_s)
        if worker.exception() is not None:  # the far side saw a tar cut short
            raise StreamFailed(str(worker.exception())) from worker.exception()
    except (asyncssh.Error, OSError, EOFError, TimeoutError) as exc:
        await connections.forget(target)
        raise translate(exc, target) from exc
    finally:
        transport.close()  # a worker still writing gets a broken pipe and stops
        if process is not None:
            await _close(process, timeout_s)
        await _settle(worker)
    code = done.exit_status if done.exit_status is not None else -1
    return code, text_of(done.stderr)


async def _close(process: asyncssh.SSHClientProcess[bytes], timeout_s: float) -> None:
    """Close the channel (a no-op once the command ended) and wait until it is closed."""
    process.close()
    with contextlib.suppress(Exception):
        await _timed(process.wait_closed(), timeout_s)


async def _timed(step: Awaitable[T], timeout_s: float) -> T:
    async with asyncio.timeout(timeout_s):
        return await step


async def _settle(worker: asyncio.Future[T]) -> None:
    """Wait for the worker thread to end (a thread cannot be cancelled; its pipe was closed,
    so it ends soon), without raising its error."""
    with contextlib.suppress(BaseException):
        await asyncio.shield(worker)


def _closing(work: Callable[[IO[bytes]], T], file: IO[bytes]) -> T:
    with file:
        return work(file)
