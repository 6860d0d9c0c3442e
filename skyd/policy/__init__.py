"""Deadline-aware spot/on-demand decisions (pure): state in, decision out.

The daemon's recovery loop and the trace simulator (bench.spot) call the same code:

    policy = POLICIES[name]                      # on_demand, greedy, up, up_multi, skyd
    decision = policy.decide(PolicyState(...))   # on every market change / preemption,
                                                 # and after decision.recheck_after_hours
    if not decision.keeps(state.current): ...    # launch decision.target (spot zone or
                                                 # on-demand region) or stop (IDLE)

ZoneMarket.history is the observed availability on a fixed grid (see
skyd.policy.availability.resample_history for turning recorded signals into one).
skyd.policy.optimum holds the omniscient optimum used for evaluation.
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
