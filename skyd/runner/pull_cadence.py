"""How long a running job's checkpoint may stay on its VM before it is pulled again: the
interval that costs least in egress plus the work a lost instance would take with it."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from skyd.runner.pulls import CheckpointPull


@dataclass(frozen=True, slots=True)
class PullPrice:
    """What the interval trades: what the last pull's bytes cost (micro-dollars), what the
    instance costs an hour (the work lost is paid again at that rate), and how often an
    instance like it is lost unannounced (spot preemptions an hour; 0 on demand: a move or a
    cancel kills the job and pulls once more, so only a preemption loses work)."""

    pull_micros: int
    hourly_micros: int
    losses_per_hour: float


# The price of a pull that was just reported; None when it is not known (its instance is not
# recorded, or no cloud bills its egress).
PullPricing = Callable[[CheckpointPull], PullPrice | None]


def pull_interval_s(price: PullPrice | None, floor_s: float, ceiling_s: float) -> float:
    """Young's rule in money: pulling every T hours costs C / T an hour in egress, and a loss
    (rate L) throws away T / 2 of work on average, paid again at P an hour: L * P * T / 2.
    Their sum is least at T = sqrt(2 C / (L P)); kept within [floor_s, ceiling_s].

    A free pull (a lab host, a cloud whose egress is not billed, an unchanged directory) is
    taken as often as `floor_s` allows; a billed one on an instance that is never lost
    unannounced waits `ceiling_s`.
    """
    if price is None or price.pull_micros <= 0:
        return floor_s
    if price.hourly_micros <= 0 or price.losses_per_hour <= 0:
        return ceiling_s
    hours = math.sqrt(2.0 * price.pull_micros / (price.losses_per_hour * price.hourly_micros))
    return min(ceiling_s, max(floor_s, hours * 3600.0))


@dataclass(slots=True)
class PullClock:
    """When one attempt's checkpoint is next worth pulling, from what the looks saw.

    Young's rule assumes a pull takes the job's state as it is now; a job saves at steps
    instead, so a pull takes its last save, made some time before. Pulling a save that is
    already old when the wait is over would lose that age on top (at a wait near the time
    between saves, twice the work a pull at every save loses, for little less egress). So
    after a billed pull the runner keeps looking (one small command every
    `checkpoint_sync_s`), learns the time between saves `s` from the changes it sees, and
    pulls a save as it lands once `t` has passed since the last pull, `t` being where
    waiting one more save stops paying: C/t + L*P*t/2 = C/(t+s) + L*P*(t+s)/2, that is
    t*(t+s) = wait², t = (sqrt(s² + 4 wait²) - s) / 2 (wait - s/2 when saves are
    frequent, wait²/s, so every save, when they are rare). A save older than that, with
    no newer one in sight, is pulled `wait + s` after the last pull.
    """

    wait_s: float = 0.0  # pull_interval_s after the last pull (0: none yet)
    pulled_at: float = 0.0
    mark: str | None = None  # the checkpoint's fingerprint at the last look
    changed_at: float | None = None  # when a look last saw it change
    save_s: float | None = None  # the time between the job's saves, as the looks saw it
    pending: bool = False  # a look saw a save the last pull did not take

    def seen(self, mark: str | None, now: float) -> bool:
        """Record a look; True when it found a save newer than the previous look's."""
        if mark == self.mark:
            return False
        known = self.mark is not None
        if known and self.changed_at is not None:
            gap = now - self.changed_at
            # halfway to the newest gap: follows a job whose pace changes within a few saves
            self.save_s = gap if self.save_s is None else (self.save_s + gap) / 2.0
        self.mark = mark
        self.changed_at = now if known else None
        self.pending = self.pending or known
        return known

    def pulled(self, now: float, wait_s: float) -> None:
        """A pull took the save the last look saw; the next waits `wait_s` (0: none)."""
        self.pulled_at = now
        self.wait_s = wait_s
        self.pending = False

    def worth_pulling(self, now: float, fresh: bool) -> bool:
        """Whether to pull at this look (`fresh`: a save landed since the previous look)."""
        if self.wait_s <= 0:
            return True
        if not self.pending:
            return False  # nothing new since the last pull
        waited = now - self.pulled_at
        save = self.save_s or 0.0
        threshold = (math.sqrt(save * save + 4.0 * self.wait_s * self.wait_s) - save) / 2.0
        return (fresh and waited >= threshold) or waited >= self.wait_s + save
