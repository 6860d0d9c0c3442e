"""Placing the jobs a rounded plan left out by moving smaller ones aside (one ejection step).

Rounding an LP solution can strand a big job: its region's quota has 12 GPUs free and it needs
16, while 1-GPU jobs there could run one region over for a few cents more. For each job left
out (largest penalty first) and each of its options, the quota deficit is freed by moving the
placed jobs that are cheapest to move per unit freed to their best other option that still
fits; the move is kept only when it lowers the objective (its penalty exceeds the option's
cost plus what the moves add). Credit-only plans (no cash) are left as they are.
"""

from __future__ import annotations

from collections import defaultdict

from skyd.optimizer.prepared import Picks, PreparedOption, PreparedProblem, Usage

MAX_OPTIONS_TRIED = 8


class Mover:
    """Places left-out jobs where moving others makes room (see the module docstring).
    Updates the `picks` and `usage` it is given; indexes who uses which quota once."""

    def __init__(self, prep: PreparedProblem, picks: Picks, usage: Usage) -> None:
        self.prep, self.picks, self.usage = prep, picks, usage
        self._users: dict[int, set[int]] | None = None

    def users(self) -> dict[int, set[int]]:
        if self._users is None:
            self._users = defaultdict(set)  # quota -> placed jobs using it
            for job_id, (k, o) in self.picks.items():
                _track(self._users, job_id, self.prep.classes[k].options[o])
        return self._users

    def taken(self, job_id: int, option: PreparedOption) -> None:
        """Tell the index about a job placed by someone else."""
        if self._users is not None:
            _track(self._users, job_id, option)

    def place(self, job_id: int, k: int) -> bool:
        prep, picks, usage = self.prep, self.picks, self.usage
        if not prep.settings.allow_cash:
            return False
        users = self.users()
        best = _best_move(prep, picks, usage, users, k, prep.penalty_micros(prep.classes[k]))
        if best is None:
            return False
        o, moves = best
        job_class = prep.classes[k]
        for moved, new in moves:
            old_k, old_o = picks[moved]
            project = prep.jobs[moved].project
            _untrack(users, moved, prep.classes[old_k].options[old_o])
            usage.release(project, prep.classes[old_k].options[old_o])
            usage.take(project, prep.classes[old_k].options[new])
            picks[moved] = (old_k, new)
            _track(users, moved, prep.classes[old_k].options[new])
        usage.take(job_class.template.project, job_class.options[o])
        picks[job_id] = (k, o)
        _track(users, job_id, job_class.options[o])
        return True


def _best_move(
    prep: PreparedProblem,
    picks: Picks,
    usage: Usage,
    users: dict[int, set[int]],
    k: int,
    penalty: float,
) -> tuple[int, list[tuple[int, int]]] | None:
    job_class = prep.classes[k]
    project = job_class.template.project
    best: tuple[float, int, list[tuple[int, int]]] | None = None
    for o, option in list(enumerate(job_class.options))[:MAX_OPTIONS_TRIED]:
        trial = usage.copy()
        moves: list[tuple[int, int]] = []
        added = float(option.cost + option.objective_extra_micros)
        for q, need in option.quota_needs:
            deficit = trial.quota_used[q] + need - prep.quota_limits[q]
            if deficit <= 0:
                continue
            freed, extra = _free(prep, picks, trial, users[q], q, deficit, moves)
            if freed < deficit:
                added = float("inf")
                break
            added += extra
        if added >= penalty or not trial.fits(prep, project, option):
            continue
        if best is None or added < best[0]:
            best = (added, o, moves)
    return None if best is None else (best[1], best[2])


def _free(
    prep: PreparedProblem,
    picks: Picks,
    trial: Usage,
    holders: set[int],
    q: int,
    deficit: int,
    moves: list[tuple[int, int]],
) -> tuple[int, float]:
    """Move holders of quota `q` off it, cheapest per unit freed first, until `deficit` is
    freed; `trial` and `moves` are updated. Returns (freed, objective added)."""
    offers: list[tuple[float, int, int, int]] = []  # (added per unit, job, new option, units)
    moved = {job for job, _ in moves}
    for job_id in holders:
        if job_id in moved:
            continue
        k, o = picks[job_id]
        current = prep.classes[k].options[o]
        units = next((need for quota, need in current.quota_needs if quota == q), 0)
        if units <= 0:
            continue
        project = prep.jobs[job_id].project
        trial.release(project, current)
        choice = _cheapest_elsewhere(prep, trial, project, k, o, q)
        trial.take(project, current)
        if choice is not None:
            added = _value(prep.classes[k].options[choice]) - _value(current)
            offers.append((added / units, job_id, choice, units))
    offers.sort()
    freed, extra = 0, 0.0
    for per_unit, job_id, new, units in offers:
        if freed >= deficit:
            break
        k, o = picks[job_id]
        project = prep.jobs[job_id].project
        trial.release(project, prep.classes[k].options[o])
        if not trial.fits(prep, project, prep.classes[k].options[new]):
            trial.take(project, prep.classes[k].options[o])
            continue
        trial.take(project, prep.classes[k].options[new])
        moves.append((job_id, new))
        freed += units
        extra += per_unit * units
    return freed, extra


def _cheapest_elsewhere(
    prep: PreparedProblem, trial: Usage, project: str, k: int, o: int, q: int
) -> int | None:
    options = prep.classes[k].options
    found = None
    for other, option in enumerate(options):
        if other == o or any(quota == q for quota, _ in option.quota_needs):
            continue
        if trial.fits(prep, project, option) and (
            found is None or _value(option) < _value(options[found])
        ):
            found = other
    return found


def _value(option: PreparedOption) -> float:
    return float(option.cost + option.objective_extra_micros)


def _track(users: dict[int, set[int]], job_id: int, option: PreparedOption) -> None:
    for q, _ in option.quota_needs:
        users[q].add(job_id)


def _untrack(users: dict[int, set[int]], job_id: int, option: PreparedOption) -> None:
    for q, _ in option.quota_needs:
        users[q].discard(job_id)
