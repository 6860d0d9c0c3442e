"""What a live market source is: something the poller asks, on a schedule, for observations."""

from __future__ import annotations

from typing import Protocol

from skyd.errors import SkydError
from skyd.store.market import Observation


class SourceUnavailableError(SkydError):
    """The source cannot work here at all (no credentials, no network): say so once, stop."""

    code = "market_source_unavailable"


class MarketSource(Protocol):
    name: str
    interval_seconds: float

    async def fetch(self) -> list[Observation]:
        """Current values. Raise SourceUnavailableError when the source can never work here,
        anything else for a failure worth retrying with backoff."""
        ...

    async def aclose(self) -> None: ...
