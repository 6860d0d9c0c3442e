"""The named spot policies, for the daemon's recovery loop and the simulator."""

from __future__ import annotations

from skyd.policy.baselines import AlwaysOnDemand, Greedy, UniformProgress
from skyd.policy.slack_reserve import SlackReserve
from skyd.policy.state import SpotPolicy


def default_policies() -> dict[str, SpotPolicy]:
    """A fresh name → policy table (policies are immutable and stateless)."""
    policies: list[SpotPolicy] = [
        AlwaysOnDemand(),
        Greedy(),
        UniformProgress(multi_zone=False),
        UniformProgress(multi_zone=True),
        SlackReserve(),
    ]
    return {p.name: p for p in policies}


POLICIES: dict[str, SpotPolicy] = default_policies()

DEFAULT_POLICY = "skyd"
