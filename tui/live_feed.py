"""The connection to the daemon: load the jobs, follow the event stream, and reconnect by itself
(with backoff) whenever the daemon goes away, telling a listener about each step."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Protocol

from skyd.clock import Clock
from tui.client import ApiError, DaemonApi, DaemonUnavailableError

JsonObject = dict[str, Any]

RETRY_SECONDS = (0.25, 0.5, 1.0, 2.0, 5.0)


@dataclass(frozen=True)
class Connected:
    version: str
    reconnected: bool


@dataclass(frozen=True)
class Disconnected:
    socket_path: str
    reason: str
    attempt: int
    retry_in: float


ConnectionStatus = Connected | Disconnected


class FeedListener(Protocol):
    def connection_changed(self, status: ConnectionStatus) -> None: ...

    def jobs_loaded(self, jobs: list[JsonObject], fetched_at: float) -> None: ...

    def event_received(self, event: JsonObject) -> None: ...


class LiveFeed:
    """Runs until cancelled. Resumes the stream after the last event seen, so nothing is lost
    across a daemon restart, and reloads the jobs so rows that changed meanwhile are right."""

    def __init__(self, api: DaemonApi, listener: FeedListener, clock: Clock) -> None:
        self.api = api
        self.listener = listener
        self.clock = clock
        self.last_seq = 0
        self.include_finished = False

    async def run(self) -> None:
        attempt = 0
        ever_connected = False
        while True:
            try:
                health = await self.api.health()
                fetched_at = self.clock.now()
                jobs = await self.api.list_jobs(include_finished=self.include_finished)
                self.listener.jobs_loaded(jobs, fetched_at)
                self.listener.connection_changed(
                    Connected(str(health.get("version", "?")), ever_connected)
                )
                ever_connected = True
                attempt = 0
                async for event in self.api.events(self.last_seq):
                    seq = event.get("seq")
                    if isinstance(seq, int):
                        self.last_seq = max(self.last_seq, seq)
                    if event.get("kind") != "heartbeat":
                        self.listener.event_received(event)
            except (DaemonUnavailableError, ApiError) as exc:
                attempt += 1
                delay = RETRY_SECONDS[min(attempt, len(RETRY_SECONDS)) - 1]
                reason = exc.reason if isinstance(exc, DaemonUnavailableError) else exc.message
                self.listener.connection_changed(
                    Disconnected(self.api.socket_path, reason, attempt, delay)
                )
                # wall time, not the injected clock: the daemon restarts in real time
                await asyncio.sleep(delay)
