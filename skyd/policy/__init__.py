"""Deadline-aware spot/on-demand decisions (pure): state in, decision out.

Public surface: PolicyState, ZoneMarket, Target, TargetKind, Decision, SpotPolicy,
the named policies in POLICIES (on_demand, greedy, uniform_progress,
uniform_progress_multi, skyd) and the omniscient optimum in skyd.policy.optimum.
"""

from skyd.policy.baselines import AlwaysOnDemand, Greedy, UniformProgress
from skyd.policy.registry import DEFAULT_POLICY, POLICIES
from skyd.policy.slack_reserve import SlackReserve
from skyd.policy.state import (
    IDLE,
    Decision,
    PolicyState,
    SpotPolicy,
    Target,
    TargetKind,
    ZoneMarket,
)

__all__ = [
    "DEFAULT_POLICY",
    "IDLE",
    "POLICIES",
    "AlwaysOnDemand",
    "Decision",
    "Greedy",
    "PolicyState",
    "SlackReserve",
    "SpotPolicy",
    "Target",
    "TargetKind",
    "UniformProgress",
    "ZoneMarket",
]
