"""GET a JSON document from a pricing API with timeouts, retries and errors that say what failed."""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from skyd.catalog.fetch.errors import CatalogFetchError
from skyd.catalog.fetch.retry import RetryPolicy, parse_retry_after
from skyd.clock import Clock

log = logging.getLogger(__name__)

# Throttling and server-side hiccups; anything else (400, 401, 404, …) will not
# improve by asking again.
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})

# Bigger documents (an AWS offer file is hundreds of MB) are decoded off the event
# loop so a fetch inside the daemon never stalls its other tasks.
DECODE_IN_THREAD_BYTES = 1 << 20

DEFAULT_TIMEOUT = aiohttp.ClientTimeout(total=120, sock_connect=15, sock_read=60)


def url_for_messages(url: str) -> str:
    """The URL without its query, so API keys and page tokens never reach logs or errors."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


class JsonGetter:
    """Fetches JSON documents over one aiohttp session, retrying what is worth retrying."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        clock: Clock,
        policy: RetryPolicy | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._session = session
        self._clock = clock
        self._policy = policy or RetryPolicy()
        self._rng = rng or random.Random()

    async def get(
        self,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """The decoded JSON body of a 200 answer; CatalogFetchError once retries run out."""
        where = url_for_messages(url)
        last_failure = ""
        for attempt in range(1, self._policy.max_attempts + 1):
            retry_after: float | None = None
            try:
                async with self._session.get(url, params=params, headers=headers) as response:
                    if response.status == 200:
                        body = await response.read()
                        if len(body) > DECODE_IN_THREAD_BYTES:
                            return await asyncio.to_thread(decode_json, body, where)
                        return decode_json(body, where)
                    if response.status not in RETRYABLE_STATUSES:
                        detail = (await response.text(errors="replace"))[:300]
                        raise CatalogFetchError(
                            f"{where} answered HTTP {response.status}: {detail.strip()}"
                            + _hint_for_status(response.status)
                        )
                    retry_after = parse_retry_after(
                        response.headers.get("Retry-After"), self._clock.now()
                    )
                    last_failure = f"HTTP {response.status}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                last_failure = f"{type(exc).__name__}: {exc}"
            if attempt == self._policy.max_attempts:
                break
            if retry_after is not None and retry_after > self._policy.max_retry_after:
                raise CatalogFetchError(
                    f"{where} asked us to come back in {retry_after:.0f} s ({last_failure}), "
                    f"longer than the {self._policy.max_retry_after:.0f} s we wait; "
                    "try the fetch again later"
                )
            delay = self._policy.delay(attempt, retry_after, self._rng)
            log.warning(
                "%s: %s, retry %d/%d in %.1f s",
                where,
                last_failure,
                attempt,
                self._policy.max_attempts - 1,
                delay,
            )
            await self._clock.sleep(delay)
        raise CatalogFetchError(
            f"{where} still failing after {self._policy.max_attempts} attempts "
            f"(last: {last_failure}); the existing catalog was left unchanged"
        )


def decode_json(body: bytes, where: str) -> Any:
    try:
        return json.loads(body)
    except ValueError as exc:
        snippet = body[:80].decode("utf-8", errors="replace")
        raise CatalogFetchError(
            f"{where} answered HTTP 200 with a body that is not JSON ({exc}); "
            f"it starts with {snippet!r}"
        ) from None


def _hint_for_status(status: int) -> str:
    if status in (401, 403):
        return " (check the credentials or API key for this cloud)"
    if status == 404:
        return " (check the endpoint URL)"
    return ""
