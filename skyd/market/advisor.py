"""The AWS Spot Instance Advisor feed: interruption-frequency buckets per region and type."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from skyd.clock import Clock
from skyd.market.sources import SourceUnavailableError
from skyd.model import Offer
from skyd.optimizer import advisor_bucket_preemptions_per_hour
from skyd.store.market import Observation


class SpotAdvisorSource:
    """Reads the advisor's JSON (a file; the shipped snapshot by default) and turns each
    (region, instance type) bucket into a preemption rate for every matching AWS offering."""

    name = "aws-spot-advisor"

    def __init__(
        self, path: Path, offers: Sequence[Offer], clock: Clock, interval_seconds: float = 3600.0
    ) -> None:
        self.path = path
        self.interval_seconds = interval_seconds
        self._offers = [o for o in offers if o.cloud == "aws" and o.spot_price_micros is not None]
        self._clock = clock

    async def fetch(self) -> list[Observation]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            raise SourceUnavailableError(f"spot advisor file {self.path} does not exist") from None
        advisor = data["spot_advisor"]
        now = self._clock.now()
        found: list[Observation] = []
        for offer in self._offers:
            entry = advisor.get(offer.region, {}).get("Linux", {}).get(offer.instance_type)
            if entry is None:
                continue
            rate = advisor_bucket_preemptions_per_hour(int(entry["r"]))
            found.append(
                Observation(scope=offer.key, at=now, source=self.name, preemptions_per_hour=rate)
            )
        return found

    async def aclose(self) -> None:
        return None
