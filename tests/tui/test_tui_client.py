"""The dashboard's async API client against a real daemon: the two kinds of failure it reports,
and a missing route told apart from a missing thing."""

from __future__ import annotations

from pathlib import Path

import pytest

from skyctl.client import DaemonClient
from skyd.testing.daemon import DaemonThread
from tui.client import (
    ApiError,
    DaemonApi,
    DaemonUnavailableError,
    EndpointMissingError,
    _Utf8Stream,
)


async def test_a_route_the_daemon_lacks_is_endpoint_missing_but_an_unknown_job_is_not(
    daemon: DaemonThread,
) -> None:
    api = DaemonApi(daemon.socket_path)
    try:
        with pytest.raises(EndpointMissingError):
            await api.optional("/v1/no-such-feature")
        with pytest.raises(ApiError) as unknown:
            await api.optional("/v1/jobs/424242")
        assert not isinstance(unknown.value, EndpointMissingError)
        assert unknown.value.status == 404 and "424242" in unknown.value.message
        health = await api.health()
        assert health["ok"] is True
    finally:
        await api.aclose()


async def test_jobs_are_listed_across_pages_and_logs_stream_to_the_end(
    daemon: DaemonThread, client: DaemonClient
) -> None:
    ids = [int(client.submit_command(["echo", f"n{i}"], "/tmp", f"j{i}")["id"]) for i in range(3)]
    api = DaemonApi(daemon.socket_path)
    try:
        listed = await api.list_jobs(include_finished=True, limit=2)  # two pages
        assert sorted(int(j["id"]) for j in listed) == ids
        newest = await api.list_jobs(include_finished=True, limit=2, most=2)
        assert [int(j["id"]) for j in newest] == [ids[2], ids[1]]
        for i, job_id in enumerate(ids):
            # each stream follows its job until the job ends, then closes
            chunks = [chunk async for chunk in api.log_chunks(job_id)]
            text = "".join(c.text for c in chunks)
            assert f"n{i}" in text
            assert chunks[-1].offset == len(text.encode())
            # resuming at an offset gives the rest only
            rest = [c async for c in api.log_chunks(job_id, offset=chunks[-1].offset - 3)]
            assert "".join(c.text for c in rest) == text[-3:]
    finally:
        await api.aclose()


async def test_no_daemon_is_daemon_unavailable_with_the_reason(tmp_path: Path) -> None:
    api = DaemonApi(str(tmp_path / "nobody.sock"))
    try:
        with pytest.raises(DaemonUnavailableError) as missing:
            await api.health()
        assert "No such file" in missing.value.reason
        with pytest.raises(DaemonUnavailableError):
            async for _ in api.events(0):
                pass
    finally:
        await api.aclose()


def test_a_character_split_across_chunks_is_held_back_until_complete() -> None:
    stream = _Utf8Stream()
    assert stream.feed(b"a\xc3") == "a"
    assert stream.pending == 1  # a resume must start at that character's first byte
    assert stream.feed(b"\xa9b") == "éb"
    assert stream.pending == 0
