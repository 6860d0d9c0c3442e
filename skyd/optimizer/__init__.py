"""Where jobs should run: single-job placement and the global assignment (pure, no I/O).

Single placement (`place`): every candidate's expected cost and time, the cheapest feasible
one chosen, ties to the less risky market and the lab's home regions (`preference`). A
request answered from the catalog's columns (skyd.catalog.table) is decided on them
(`vectorized`): the same decision, without a Python loop over ~10,000 candidates.

Global assignment (`solve_assignment`): all waiting jobs at once, under quotas, credit pools
and project budgets, on one PreparedProblem (identical jobs merged into classes). How, by size:

- up to `SolverLimits.cp_sat_max_variables` (class, option) pairs: CP-SAT on the integer
  model (`assignment`). "OPTIMAL" only when CP-SAT closed the gap (gap_limit 0 asks for it);
  stopped at a gap limit or by time it is "FEASIBLE", with the gap to its bound.
- larger (1,000 distinct jobs are ~16,000 pairs; CP-SAT found no solution in 2 s and building
  its model alone took most of a second): the model's LP relaxation, solved by GLOP, gives a
  proven lower bound; a plan is rounded from it, the jobs it strands are placed by moving
  smaller ones aside (`repair`), several roundings are tried and the best kept
  (`relaxation`). The gap reported is to the LP bound, so it is proven; "OPTIMAL" only when
  the plan meets the bound.
- more than `SolverLimits.lp_sample_classes` classes (10,000 distinct jobs): decomposed by
  prices. The LP of an even sample of the classes, with every capacity scaled to the
  sample's share, prices quotas, budgets and credit; each class then decides alone at those
  prices, and Lagrangian duality turns the priced total into a bound that holds for any
  prices. The plan is rounded from the priced choices (and from plain cost order; the better
  is kept). The gap is larger (a few percent) but still proven.

What the objective is: valued spend (credit below cash) plus, per job left out, a penalty of
2 / lightest priority weight x the job's priority weight x its dearest option's cost. So when
quotas, budgets or credit bind, the plan keeps the most priority-weighted *value* (dollars of
work), not the most jobs nor strictly the highest priorities (the greedy baseline goes by
priority). On bench.optimizer's instances (`versus_greedy`): at 1,000 distinct jobs it places
988 to greedy's 981 and spends 1.8 % more in total, while the 971 jobs both place cost it
1.7 % less; at 10,000 it places 9,816 to greedy's 9,838, leaving out 44 jobs of priority 5-20
that greedy places in exchange for 159 larger low-priority ones (priority-weighted count
0.993x greedy). The jobs both place always cost less than under greedy.

The greedy cheapest-first plan (`greedy`) is the baseline and the fallback when no solver
finishes in time. ortools is imported only inside the solvers, so importing this package
stays cheap. Solves run in the planner's own process (skyd.scheduler.plan_child), off the
event loop and its GIL.
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
