"""The planner's own process: `python -m skyd.scheduler.plan_child` reads the queue from the
SQLite file (read-only, WAL), builds and solves the model, and answers with a compact
`PlanResult` — so CP-SAT, catalog scans and spec parsing never hold the daemon's GIL.

Protocol on stdin/stdout: frames of a 4-byte big-endian length and a pickle. The first
frame is a `PlanWorld` (what placement needs that does not change while the daemon runs);
each later one a `ChildRequest`, answered by ("ok", PlanResult | None) or ("error", text).
The child dies with the daemon: stdin's end (a clean stop) ends it, and the kernel kills it
when the daemon does (PR_SET_PDEATHSIG), checked against a parent that died first.
"""

from __future__ import annotations

import ctypes
import logging
import os
import pickle
import signal
import struct
import sys
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

from skyd.clock import SystemClock
from skyd.config import CloudSshSettings, DataSettings
from skyd.model import Offer
from skyd.optimizer import SolverLimits
from skyd.scheduler.changeover_log import ChangeoverLog
from skyd.scheduler.placement import PlacementContext, PlacementOutcome, Placer
from skyd.scheduler.plan_core import PlanCore, PlanRequest, PlanResult
from skyd.spec import TaskSpec

log = logging.getLogger("skyd.planner.child")

HEADER = struct.Struct(">I")
PR_SET_PDEATHSIG = 1


@dataclass(frozen=True, slots=True)
class ProviderShape:
    """One provider as placement sees it: its own offerings (none for a catalog cloud's
    provider) and, for a fixed pool of machines, how many nodes of each one job can get."""

    offers: tuple[Offer, ...] = ()
    max_nodes: dict[str, int | None] | None = None


@dataclass(frozen=True, slots=True)
class PlanWorld:
    """What the planner's process builds its market from, sent once when it starts."""

    db_path: Path
    catalog_dir: Path | None
    providers: dict[str, ProviderShape]
    limits: SolverLimits
    changeover_hours: float
    checkpoint_sync_s: float = CloudSshSettings.checkpoint_sync_s  # [cloud_ssh]
    home_regions: tuple[str, ...] = ()
    home_countries: tuple[str, ...] = ()
    data: DataSettings | None = None  # None: no data-aware pricing
    data_dirs: tuple[Path, ...] = ()


@dataclass(frozen=True, slots=True)
class ChildRequest:
    """One pass, with what changed on the loop since the world was sent."""

    request: PlanRequest
    container_clouds: frozenset[str] = frozenset()
    data: tuple[int, dict[Any, Any]] | None = None  # DataLocator.snapshot(), when it changed
    meta: dict[str, Any] = field(default_factory=dict)  # test hooks ("crash": exit at once)


def write_frame(out: IO[bytes], payload: object) -> None:
    data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
    out.write(HEADER.pack(len(data)) + data)
    out.flush()


def read_frame(inp: IO[bytes]) -> Any:
    header = inp.read(HEADER.size)
    if len(header) < HEADER.size:
        return None  # the daemon closed our stdin: stop
    (size,) = HEADER.unpack(header)
    data = inp.read(size)
    if len(data) < size:
        return None
    return pickle.loads(data)


class _Offers:
    def __init__(self, offers: Sequence[Offer]) -> None:
        self._offers = list(offers)

    def offers(self) -> list[Offer]:
        return self._offers


class _FixedNodes(_Offers):
    def __init__(self, offers: Sequence[Offer], limits: Mapping[str, int | None]) -> None:
        super().__init__(offers)
        self._limits = dict(limits)

    def max_nodes(self, offer: Offer) -> int | None:
        return self._limits.get(offer.key)


class ChildWorld:
    """The child's market, data cache and `PlanCore`, built from a `PlanWorld`."""

    def __init__(self, world: PlanWorld) -> None:
        from skyd.catalog import Catalog
        from skyd.market.live import LiveMarket
        from skyd.providers.base import Provider
        from skyd.store.db import open_reader

        stubs: dict[str, _Offers] = {
            name: _Offers(shape.offers)
            if shape.max_nodes is None
            else _FixedNodes(shape.offers, shape.max_nodes)
            for name, shape in world.providers.items()
        }
        self.market = LiveMarket(
            Catalog.load(world.catalog_dir), cast("Mapping[str, Provider]", stubs)
        )
        self.market.prefer_regions(world.home_regions, world.home_countries)
        self.data = None
        if world.data is not None:
            from skyd.market.data_location import locator_for

            self.data = locator_for(world.data, world.data_dirs, SystemClock())
        self.placer = Placer(self.market, self.data)
        self.now = 0.0
        reader = open_reader(world.db_path)
        # a running job's move is priced with the changeover the spot policy plans with:
        # measured of the launches the daemon recorded, the configured figure a floor
        self.changeovers = ChangeoverLog(
            store=reader,
            configured_hours=world.changeover_hours,
            checkpoint_sync_s=world.checkpoint_sync_s,
        )
        self.core = PlanCore(
            reader,
            self._decide,
            limits=world.limits,
            changeover_for_clouds=self.changeovers.for_clouds,
            offer_of=lambda placement: self.market.catalog.offer_by_key(
                str(placement.get("offer_key"))
            ),
        )

    def _decide(
        self, spec: TaskSpec, deadline: float | None, context: PlacementContext
    ) -> PlacementOutcome:
        hours = None if deadline is None else max(0.0, (deadline - self.now) / 3600.0)
        return self.placer.decide(spec, deadline_hours=hours, context=context)

    def compute(self, child_request: ChildRequest) -> PlanResult | None:
        self.market.container_clouds = child_request.container_clouds
        if child_request.data is not None and self.data is not None:
            self.data.restore(child_request.data)
        self.now = child_request.request.now
        return self.core.compute(child_request.request)


def _die_with_parent(parent: int) -> None:
    """Ask the kernel for SIGKILL when the daemon goes; it may have gone already."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: stdin's end still stops us once a solve is done
    if os.getppid() != parent:
        os._exit(0)


def main() -> int:
    parent = int(sys.argv[1]) if len(sys.argv) > 1 else os.getppid()
    _die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's ^C is the daemon's to handle
    # frames only on the real stdout: anything printed goes to stderr (the daemon's log)
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    inp = os.fdopen(0, "rb")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    world_spec = read_frame(inp)
    if world_spec is None:
        return 0
    world = ChildWorld(world_spec)
    write_frame(out, ("ready", os.getpid()))
    while True:
        message = read_frame(inp)
        if message is None:
            return 0
        if message.meta.get("crash"):
            os._exit(70)  # a test's injected crash: no answer, no clean-up
        try:
            answer: tuple[str, object] = ("ok", world.compute(message))
        except Exception:
            answer = ("error", traceback.format_exc())
        write_frame(out, answer)


if __name__ == "__main__":
    sys.exit(main())
