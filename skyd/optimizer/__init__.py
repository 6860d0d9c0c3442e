"""Where jobs should run: single-job placement and the global CP-SAT assignment (pure, no I/O).

ortools is imported only inside `solve_assignment`, so importing this package stays cheap.
"""

from skyd.optimizer.assignment import SolverLimits, solve_assignment
from skyd.optimizer.describe import describe_filter
from skyd.optimizer.greedy import greedy_assignment
from skyd.optimizer.placing import place
from skyd.optimizer.plan import (
    AssignmentJob,
    AssignmentOption,
    AssignmentPlan,
    AssignmentProblem,
    AssignmentSettings,
    Blocker,
    CreditPool,
    JobAssignment,
    ProjectBudget,
    Quota,
    UnplacedJob,
    options_from_decision,
)
from skyd.optimizer.single import (
    DEFAULT_EXPECTED_HOURS,
    DEFAULT_RESTART_COST_HOURS,
    CandidateView,
    MarketSignals,
    PlacementDecision,
    PlacementRequest,
)
from skyd.optimizer.spot_risk import (
    DEFAULT_PREEMPTIONS_PER_HOUR,
    advisor_bucket_preemptions_per_hour,
    availability_preemptions_per_hour,
)

__all__ = [
    "DEFAULT_EXPECTED_HOURS",
    "DEFAULT_PREEMPTIONS_PER_HOUR",
    "DEFAULT_RESTART_COST_HOURS",
    "AssignmentJob",
    "AssignmentOption",
    "AssignmentPlan",
    "AssignmentProblem",
    "AssignmentSettings",
    "Blocker",
    "CandidateView",
    "CreditPool",
    "JobAssignment",
    "MarketSignals",
    "PlacementDecision",
    "PlacementRequest",
    "ProjectBudget",
    "Quota",
    "SolverLimits",
    "UnplacedJob",
    "advisor_bucket_preemptions_per_hour",
    "availability_preemptions_per_hour",
    "describe_filter",
    "greedy_assignment",
    "options_from_decision",
    "place",
    "solve_assignment",
]
