"""Where the planner's passes run: its own process (the daemon), or a worker thread (a store
without a file, tests that hand in their own `decide`).

`ChildPlanner` keeps one long-lived `skyd.scheduler.plan_child` process, started from the
loop thread so the kernel's parent-death signal ties it to the daemon. A child that dies,
hangs past its deadline or answers garbage is killed, logged and replaced on the next
pass (`PlannerCrashed`); jobs live in the store, so none is lost — the scheduler places
unplanned jobs itself meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import sys
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any, Protocol

import skyd
from skyd.providers.base import NodeLimited, Provider
from skyd.scheduler.plan_child import HEADER, ChildRequest, PlanWorld, ProviderShape
from skyd.scheduler.plan_core import PlanCore, PlanRequest, PlanResult

log = logging.getLogger("skyd.planner")

# past the solver's own limit: reading 2,000 jobs and building the model on a busy machine
DEADLINE_SLACK_SECONDS = 60.0
MAX_ARG_STRLEN = 128 * 1024
LARGE_FRAME = 64 * 1024  # answers bigger than this are unpickled in a worker thread


class PlannerCrashed(Exception):
    """The planner's process died or hung; it was killed and the next pass starts another."""


class PlanBackend(Protocol):
    async def start(self) -> None: ...

    async def compute(self, request: PlanRequest) -> PlanResult | None: ...

    async def close(self) -> None: ...


class ThreadPlanner:
    """Passes in a worker thread, on the caller's own `PlanCore`."""

    def __init__(self, core: Callable[[], PlanCore]) -> None:
        self._make = core
        self._core: PlanCore | None = None

    async def start(self) -> None:
        return None

    async def compute(self, request: PlanRequest) -> PlanResult | None:
        if self._core is None:
            self._core = self._make()
        return await asyncio.to_thread(self._core.compute, request)

    async def close(self) -> None:
        return None


class DataSnapshots(Protocol):
    version: int

    def snapshot(self) -> tuple[int, dict[Any, Any]]: ...


class ChildPlanner:
    """Passes in the planner's own process (see the module docstring)."""

    def __init__(
        self,
        world: PlanWorld,
        *,
        container_clouds: Callable[[], frozenset[str]] = frozenset,
        data: DataSnapshots | None = None,
    ) -> None:
        self._world = world
        self._container_clouds = container_clouds
        self._data = data
        self._proc: asyncio.subprocess.Process | None = None
        self._data_version_sent: int | None = None
        self._deadline = world.limits.time_limit_seconds + DEADLINE_SLACK_SECONDS
        self._stale = False  # `new_world` was given: the running process has an old one
        self.crash_next = False  # tests: the next request makes the child exit at once
        self.started = 0  # processes started (the first, then one per crash)

    @property
    def world(self) -> PlanWorld:
        """The world the next process starts from."""
        return self._world

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    async def start(self) -> None:
        """Start the process now (else the first pass does)."""
        if self._proc is None or self._proc.returncode is not None:
            await self._spawn()

    def new_world(self, world: PlanWorld) -> None:
        """What placement sees changed (a lab cluster read again): the next pass starts a
        process on `world` (the running one ends first; never mid-pass, the loop runs this)."""
        self._world = world
        self._stale = True

    async def compute(self, request: PlanRequest) -> PlanResult | None:
        if self._stale:
            self._stale = False
            await self.close()
        await self.start()
        proc = self._proc
        assert proc is not None
        data = None
        if self._data is not None and self._data.version != self._data_version_sent:
            data = self._data.snapshot()
        message = ChildRequest(
            request,
            self._container_clouds(),
            data,
            {"crash": True} if self.crash_next else {},
        )
        self.crash_next = False
        try:
            async with asyncio.timeout(self._deadline):
                await self._send(proc, message)
                answer = await self._receive(proc)
        except (OSError, EOFError, TimeoutError, asyncio.IncompleteReadError) as exc:
            await self._kill()
            raise PlannerCrashed(f"the planner's process failed ({_why(exc, proc)})") from None
        if data is not None:
            self._data_version_sent = data[0]
        kind, body = answer
        if kind == "error":
            raise RuntimeError(f"the planner's pass failed in its process:\n{body}")
        result: PlanResult | None = body
        return result

    async def close(self) -> None:
        proc = self._proc
        self._proc = None
        if proc is None or proc.returncode is not None:
            return
        if proc.stdin is not None:
            proc.stdin.close()  # end of input: the child exits after its current pass
        try:
            async with asyncio.timeout(2.0):
                await proc.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()

    async def _spawn(self) -> None:
        self._data_version_sent = None
        root = str(Path(skyd.__file__).resolve().parent.parent)
        path = os.environ.get("PYTHONPATH")
        # the kernel refuses to exec with one string over 128 KiB (E2BIG): such a variable
        # (e.g. a test runner's own) is not ours to pass on
        env = {k: v for k, v in os.environ.items() if len(k) + len(v) < MAX_ARG_STRLEN}
        env["PYTHONPATH"] = root if not path else f"{root}{os.pathsep}{path}"
        try:
            # from the loop's thread: the parent-death signal follows the thread that forked
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "skyd.scheduler.plan_child",
                str(os.getpid()),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                env=env,
            )
        except OSError as exc:
            raise PlannerCrashed(f"the planner's process did not start ({exc})") from None
        self._proc = proc
        self.started += 1
        try:
            async with asyncio.timeout(self._deadline):
                await self._send(proc, self._world)
                hello = await self._receive(proc)
        except (OSError, EOFError, TimeoutError, asyncio.IncompleteReadError) as exc:
            await self._kill()
            raise PlannerCrashed(
                f"the planner's process did not start ({_why(exc, proc)})"
            ) from None
        log.info("planner process started", extra={"pid": hello[1]})

    async def _send(self, proc: asyncio.subprocess.Process, payload: object) -> None:
        assert proc.stdin is not None
        # a world of many offerings is pickled off the loop (it yields every switch interval)
        data = await asyncio.to_thread(pickle.dumps, payload, pickle.HIGHEST_PROTOCOL)
        proc.stdin.write(HEADER.pack(len(data)) + data)
        await proc.stdin.drain()

    async def _receive(self, proc: asyncio.subprocess.Process) -> Any:
        assert proc.stdout is not None
        (size,) = HEADER.unpack(await proc.stdout.readexactly(HEADER.size))
        data = await proc.stdout.readexactly(size)
        if size > LARGE_FRAME:
            return await asyncio.to_thread(pickle.loads, data)
        return pickle.loads(data)

    async def _kill(self) -> None:
        proc = self._proc
        self._proc = None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


def provider_shapes(
    providers: Mapping[str, Provider], catalog_clouds: Collection[str]
) -> dict[str, ProviderShape]:
    """Each provider as the planner's process needs it (see LiveMarket): its own offerings
    and, for fixed pools, the most nodes of each one job can get — as of now."""
    shapes = {}
    for name, provider in providers.items():
        if name in catalog_clouds:
            shapes[name] = ProviderShape()
            continue
        offers = tuple(provider.offers())
        limits = (
            {offer.key: provider.max_nodes(offer) for offer in offers}
            if isinstance(provider, NodeLimited)
            else None
        )
        shapes[name] = ProviderShape(offers, limits)
    return shapes


def _why(exc: BaseException, proc: asyncio.subprocess.Process) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer in time; killed"
    code = proc.returncode
    return f"exit {code}" if code is not None else type(exc).__name__
