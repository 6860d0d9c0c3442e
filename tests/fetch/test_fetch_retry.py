"""Retry behaviour of the pricing-API JSON client: backoff, Retry-After, giving up, garbage."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import format_datetime

import aiohttp
import pytest

from skyd.catalog.fetch import CatalogFetchError, RetryPolicy
from skyd.catalog.fetch.http_json import JsonGetter, url_for_messages
from skyd.catalog.fetch.retry import parse_retry_after
from skyd.testing.pricing_servers import AzureRetailServer, FaultPlan, InstantClock

ITEMS = [{"armSkuName": "Standard_D4s_v5", "retailPrice": 0.192, "serviceName": "Virtual Machines"}]
QUERY = {"api-version": "2023-01-01-preview", "$filter": "serviceName eq 'Virtual Machines'"}


def test_backoff_grows_exponentially_up_to_the_cap() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=10.0)
    rng = random.Random(7)
    ceilings = [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    for retry, ceiling in enumerate(ceilings, start=1):
        delays = [policy.delay(retry, None, rng) for _ in range(200)]
        assert min(delays) >= 0.0 and max(delays) <= ceiling
        # Full jitter: the delays really spread over the range, not a fixed value.
        assert max(delays) - min(delays) > ceiling / 2


def test_retry_after_is_a_floor_with_a_little_jitter_on_top() -> None:
    policy = RetryPolicy(base_delay=1.0)
    rng = random.Random(1)
    delays = [policy.delay(1, 30.0, rng) for _ in range(100)]
    assert all(30.0 <= d <= 31.0 for d in delays)


def test_parse_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC).timestamp()
    assert parse_retry_after("120", now) == 120.0
    later = format_datetime(datetime(2024, 6, 1, 12, 0, 45, tzinfo=UTC), usegmt=True)
    assert parse_retry_after(later, now) == pytest.approx(45.0)
    assert parse_retry_after(None, now) is None
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after("-3", now) == 0.0


def test_messages_never_carry_the_query_string() -> None:
    assert url_for_messages("https://x.test/v1/skus?key=SECRET&pageToken=abc") == (
        "https://x.test/v1/skus"
    )


async def _get(server: AzureRetailServer, clock: InstantClock, policy: RetryPolicy) -> object:
    async with aiohttp.ClientSession() as session:
        getter = JsonGetter(session, clock, policy, random.Random(3))
        return await getter.get(server.prices_url, params=QUERY)


async def test_throttled_request_waits_as_told_then_succeeds() -> None:
    faults = FaultPlan()
    faults.throttle(times=2, status=429, retry_after="7")
    clock = InstantClock()
    async with AzureRetailServer(ITEMS, faults=faults) as server:
        document = await _get(server, clock, RetryPolicy())
    assert isinstance(document, dict) and document["Items"] == ITEMS
    assert len(server.requests) == 3
    assert len(clock.sleeps) == 2
    assert all(7.0 <= s <= 8.0 for s in clock.sleeps)


async def test_503_without_retry_after_backs_off_with_jitter() -> None:
    faults = FaultPlan()
    faults.throttle(times=3, status=503, retry_after=None)
    clock = InstantClock()
    policy = RetryPolicy(base_delay=2.0, max_delay=60.0)
    async with AzureRetailServer(ITEMS, faults=faults) as server:
        await _get(server, clock, policy)
    assert len(clock.sleeps) == 3
    for retry, slept in enumerate(clock.sleeps, start=1):
        assert 0.0 <= slept <= 2.0 * 2 ** (retry - 1)


async def test_persistent_500_gives_up_after_the_budget_with_a_clear_error() -> None:
    faults = FaultPlan()
    faults.server_error(status=500)
    clock = InstantClock()
    async with AzureRetailServer(ITEMS, faults=faults) as server:
        with pytest.raises(CatalogFetchError) as failure:
            await _get(server, clock, RetryPolicy(max_attempts=4))
    assert len(server.requests) == 4
    assert len(clock.sleeps) == 3
    message = str(failure.value)
    assert "4 attempts" in message and "HTTP 500" in message and "unchanged" in message
    assert "api-version" not in message


async def test_client_errors_are_not_retried() -> None:
    clock = InstantClock()
    async with AzureRetailServer(ITEMS) as server, aiohttp.ClientSession() as session:
        getter = JsonGetter(session, clock, RetryPolicy(), random.Random(0))
        # No api-version: the fake answers 400 like the real API.
        with pytest.raises(CatalogFetchError, match="HTTP 400") as failure:
            await getter.get(server.prices_url)
    assert len(server.requests) == 1
    assert clock.sleeps == []
    assert "api-version is required" in str(failure.value)


async def test_garbage_body_fails_at_once_naming_what_came_back() -> None:
    faults = FaultPlan()
    faults.garbage()
    clock = InstantClock()
    async with AzureRetailServer(ITEMS, faults=faults) as server:
        with pytest.raises(CatalogFetchError, match="not JSON") as failure:
            await _get(server, clock, RetryPolicy())
    assert "Standard_" in str(failure.value)
    assert len(server.requests) == 1


async def test_retry_after_beyond_the_limit_fails_instead_of_hanging() -> None:
    faults = FaultPlan()
    faults.throttle(times=1, retry_after="3600")
    clock = InstantClock()
    async with AzureRetailServer(ITEMS, faults=faults) as server:
        with pytest.raises(CatalogFetchError, match="3600 s"):
            await _get(server, clock, RetryPolicy(max_retry_after=300))
    assert clock.sleeps == []


async def test_connection_refused_is_retried_then_reported() -> None:
    clock = InstantClock()
    async with AzureRetailServer(ITEMS) as server:
        dead_url = server.prices_url
    async with aiohttp.ClientSession() as session:
        getter = JsonGetter(session, clock, RetryPolicy(max_attempts=3), random.Random(0))
        with pytest.raises(CatalogFetchError, match="3 attempts"):
            await getter.get(dead_url, params=QUERY)
    assert len(clock.sleeps) == 2


async def test_large_documents_are_decoded_intact() -> None:
    # Over DECODE_IN_THREAD_BYTES, so decoding takes the worker-thread path.
    many = [{**ITEMS[0], "meterId": f"meter-{i:08d}", "padding": "x" * 200} for i in range(6000)]
    clock = InstantClock()
    async with AzureRetailServer(many, page_size=len(many)) as server:
        document = await _get(server, clock, RetryPolicy())
    assert isinstance(document, dict)
    assert document["Items"] == many
