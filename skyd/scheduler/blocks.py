"""Scopes (cloud, region, zone, offering) skyd skips for a while after they failed a launch."""

from __future__ import annotations

from skyd.errors import AuthError, CapacityError, ProviderError, QuotaError

# How long a failed scope (zone, region, cloud) is skipped before it is tried again.
BLOCK_SECONDS: dict[type[ProviderError], float] = {
    CapacityError: 600.0,
    QuotaError: 3600.0,
    AuthError: 3600.0,
}
PREEMPTION_BLOCK = 300.0  # seconds a preempted zone/region is avoided by FAILOVER strategies


class ScopeBlocks:
    """scope → blocked until (seconds on the scheduler's clock). Pure: time is passed in."""

    def __init__(self) -> None:
        self.until: dict[str, float] = {}

    def block(self, scope: str, until: float) -> None:
        self.until[scope] = until

    def block_after(self, error: ProviderError, scope: str, now: float) -> None:
        """Skip `scope` for as long as this kind of failure (capacity, quota, auth) warrants."""
        self.until[scope] = now + BLOCK_SECONDS[type(error)]

    def active(self, now: float) -> frozenset[str]:
        """The scopes still blocked at `now`; expired ones are forgotten."""
        for scope in [s for s, t in self.until.items() if t <= now]:
            del self.until[scope]
        return frozenset(self.until)
